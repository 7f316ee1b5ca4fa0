package compat

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"upkeep/internal/spec"
)

// TOML writes the draft as a person would write its service.toml: a
// header naming the files it came from, only the keys those files set,
// tables in the order of docs/service.toml.md, and at the end, as
// comments, what could not be translated.
func (d *Draft) TOML() []byte {
	if d.rendered != nil {
		return d.rendered
	}
	return d.render()
}

// render writes the TOML.
func (d *Draft) render() []byte {
	// Written in a buffer that is used again, and copied out at its size:
	// an import renders thousands.
	b := renderBufs.Get().(*bytes.Buffer)
	defer renderBufs.Put(b)
	b.Reset()
	line := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteByte('\n')
	}
	line("# Imported by `upkeep import` from:")
	for _, s := range d.Sources {
		line("#   ", oneLine(s))
	}
	for _, c := range d.Comments {
		line("# ", oneLine(c))
	}
	b.WriteString("\n")
	for _, f := range topFields {
		if d.IsSet(f.key) {
			line(f.key, " = ", f.toml(&d.Svc))
		}
		if f.key == "env_file" { // env and depends_on sit with the other environment keys
			if env := d.envKeys(); len(env) > 0 {
				parts := make([]string, len(env))
				for i, k := range env {
					parts[i] = tomlKey(k) + " = " + tomlString(d.Svc.Env[k])
				}
				line("env = { ", strings.Join(parts, ", "), " }")
			}
		}
		if f.key == "autostart" && d.IsSet("depends_on") && len(d.Svc.DependsOn) > 0 {
			line("depends_on = ", tomlArray(d.Svc.DependsOn))
		}
	}
	table := func(name string, fs []field) {
		first := true
		for _, f := range fs {
			if !d.IsSet(f.key) {
				continue
			}
			if first {
				line("\n[", name, "]")
				first = false
			}
			line(f.key[len(name)+1:], " = ", f.toml(&d.Svc))
		}
	}
	table("restart", restartFields)
	table("stop", stopFields)
	for _, c := range d.Svc.Checks {
		b.WriteString("\n[[check]]\n")
		writeCheck(b, &c)
	}
	table("log", logFields)
	table("limits", limitsFields)
	if d.IsSet("log.file") {
		for i := range d.Svc.LogFiles {
			writeLogFile(b, &d.Svc.LogFiles[i])
		}
	}
	if len(d.notes) > 0 {
		b.WriteString("\n# Import notes (what did not translate as written):\n")
		type placed struct {
			src int // which source file
			n   Note
		}
		notes := make([]placed, len(d.notes))
		for i, n := range d.notes {
			notes[i] = placed{len(d.Sources), n}
			for j, s := range d.Sources {
				if len(s) > len(n.File) && s[:len(n.File)] == n.File && strings.HasPrefix(s[len(n.File):], " (") {
					notes[i].src = j
					break
				}
			}
		}
		sort.SliceStable(notes, func(i, j int) bool {
			if notes[i].src != notes[j].src {
				return notes[i].src < notes[j].src
			}
			return notes[i].n.Line < notes[j].n.Line
		})
		for _, p := range notes {
			n := p.n
			line("#   ", oneLine(n.String()))
		}
	}
	return bytes.Clone(b.Bytes())
}

var renderBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// service is what spec.Parse makes of the rendered TOML, built without
// it: upkeep's defaults and the keys render writes, with their values.
// checkValid holds the two to the same result for every test and fuzz
// input. The checks are copied into checks (spec fills in their
// defaults in place).
func (d *Draft) service(checks []spec.Check) spec.Service {
	s := spec.Defaults()
	for _, group := range allFields() {
		for _, f := range group {
			if d.IsSet(f.key) {
				f.copy(&s, &d.Svc)
			}
		}
	}
	if env := d.envKeys(); len(env) > 0 {
		s.Env = make(map[string]string, len(env))
		for _, k := range env {
			s.Env[k] = d.Svc.Env[k]
		}
	}
	if d.IsSet("depends_on") && len(d.Svc.DependsOn) > 0 {
		s.DependsOn = d.Svc.DependsOn
	}
	s.Checks = append(checks, d.Svc.Checks...)
	if d.IsSet("log.file") && len(d.Svc.LogFiles) > 0 {
		s.LogFiles = append([]spec.LogFile(nil), d.Svc.LogFiles...) // spec fills in each one's derived fields
	}
	return s
}

// envKeys are the variables set by a file, sorted.
func (d *Draft) envKeys() []string {
	var ks []string
	for _, k := range sortedKeys(d.Svc.Env) {
		if d.IsSet("env." + k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// writeCheck writes the keys of a [[check]] that differ from their zero
// value; spec fills in the defaults.
func writeCheck(b *bytes.Buffer, c *spec.Check) {
	kv := func(k, v string) {
		b.WriteString(k)
		b.WriteString("         "[:max(0, 8-len(k))])
		b.WriteString(" = " + v + "\n")
	}
	str := func(k, v string) {
		if v != "" {
			kv(k, tomlString(v))
		}
	}
	str("name", c.Name)
	str("type", c.Type)
	str("url", c.URL)
	str("method", c.Method)
	str("status", c.Status)
	str("body", c.Body)
	str("host", c.Host)
	str("address", c.Address)
	str("send", c.Send)
	str("expect", c.Expect)
	if len(c.Command) > 0 {
		kv("command", tomlArray(c.Command))
	}
	str("max", c.Max)
	for _, x := range []struct {
		k string
		v spec.Duration
	}{{"timeout", c.Timeout}, {"interval", c.Interval}, {"grace", c.Grace}} {
		if x.v != 0 {
			kv(x.k, encDur(x.v))
		}
	}
	for _, x := range []struct {
		k string
		v int
	}{{"cycles", c.Cycles}, {"within", c.Within}, {"recover", c.Recover}} {
		if x.v != 0 {
			kv(x.k, strconv.Itoa(x.v))
		}
	}
	str("then", c.Then)
	if len(c.Exec) > 0 {
		kv("exec", tomlArray(c.Exec))
	}
}

// writeLogFile writes a [[log.file]]: the keys that are set.
func writeLogFile(b *bytes.Buffer, f *spec.LogFile) {
	kv := func(k, v string) {
		b.WriteString(k + " = " + v + "\n")
	}
	b.WriteString("\n[[log.file]]\n")
	kv("path", tomlString(f.Path))
	if f.Method != "" {
		kv("method", tomlString(f.Method))
	}
	if f.Signal != "" {
		kv("signal", tomlString(f.Signal))
	}
	if f.PostRotate != "" {
		kv("postrotate", tomlMultiline(f.PostRotate))
	}
	setting(b, "when", f.When, tomlString)
	setting(b, "size", f.Size, encSize)
	setting(b, "maxsize", f.MaxSize, encSize)
	setting(b, "minsize", f.MinSize, encSize)
	setting(b, "rotate", f.Rotate, encInt)
	setting(b, "compress", f.Compress, encBool)
	setting(b, "delaycompress", f.DelayCompress, encBool)
	setting(b, "notifempty", f.NotIfEmpty, encBool)
	setting(b, "missingok", f.MissingOK, encBool)
	setting(b, "dateext", f.DateExt, encBool)
	setting(b, "dateformat", f.DateFormat, tomlString)
	setting(b, "dateyesterday", f.DateYesterday, encBool)
	setting(b, "maxage", f.MaxAge, encInt)
}

// setting writes a [[log.file]]'s own setting, when it has one.
func setting[T any](b *bytes.Buffer, k string, v *T, enc func(T) string) {
	if v != nil {
		b.WriteString(k + " = " + enc(*v) + "\n")
	}
}

// oneLine makes s fit in a comment: one line, UTF-8, no control
// characters (TOML allows none but tab in a comment).
func oneLine(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = s[i] >= 0x20 && s[i] < 0x7f || s[i] == '\t'
	}
	if clean {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r':
			return ' '
		case r < 0x20 && r != '\t' || r == 0x7f:
			return '\uFFFD'
		}
		return r
	}, s)
}

// tomlString writes a basic string. TOML has no \x escapes, so Go's
// strconv.Quote will not do; bytes that are not UTF-8 cannot be written
// at all and become U+FFFD.
func tomlString(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		return `"` + s + `"`
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlMultiline writes a script as a literal multi-line string, verbatim
// (backslashes and all), when it can; a basic string otherwise.
func tomlMultiline(s string) string {
	if !literalScript(s) {
		return tomlString(s)
	}
	return "'''\n" + scriptAsWritten(s) + "'''"
}

// literalScript reports whether a script can be a literal multi-line
// string: it has lines, and nothing a literal string cannot hold.
func literalScript(s string) bool {
	if !strings.Contains(s, "\n") || !utf8.ValidString(s) || strings.Contains(s, "'''") || strings.HasSuffix(s, "'") {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// scriptAsWritten is the script TOML reads back: a literal one ends with
// a newline.
func scriptAsWritten(s string) string {
	if literalScript(s) && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func tomlArray(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = tomlString(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func tomlKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}
