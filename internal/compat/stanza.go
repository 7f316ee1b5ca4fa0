package compat

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"upkeep/internal/spec"
)

// Stanza is one block of a logrotate configuration: the files it names and
// the settings that apply to them, as a [log] section.
type Stanza struct {
	Line  int // where the block's paths are
	Paths []string
	Log   spec.Log
	// CopyTruncate is set when the stanza truncates in place: needed by
	// logrotate for a writer that keeps its file open, pointless for the
	// output upkeep captures, which it rotates by rename between writes.
	CopyTruncate bool
	// Ignored lists the directives that have no [log] equivalent (su,
	// create, postrotate scripts, …), as "line N: directive".
	Ignored []string
	// PostRotate is the stanza's postrotate script, its lines as written
	// less their common indentation, and PostRotateLine where it starts;
	// a file a service writes itself ([[log.file]]) has a use for it.
	PostRotate     string
	PostRotateLine int
}

// logrotateDefaults are logrotate's own, for what a stanza leaves out: no
// time criterion (size 1M), rotate 0, nocompress, ifempty, nomissingok.
func logrotateDefaults() spec.Log { return spec.Log{When: spec.Untimed, Size: 1 << 20} }

// lrState is a stanza being read, or the global settings that later blocks
// start from. logrotate keeps one criterion, the last one written: `size`
// replaces `daily` and the other way round; maxsize stays aside.
type lrState struct {
	log          spec.Log
	crit         string    // hourly…yearly, or "size"
	threshold    spec.Size // of the size criterion
	maxsize      spec.Size
	copytruncate bool
}

func newLRState() lrState {
	return lrState{log: logrotateDefaults(), crit: "size", threshold: 1 << 20}
}

// result applies the criterion: a time criterion takes maxsize as Size, the
// size criterion is when = "never" with its threshold.
func (st lrState) result() spec.Log {
	l := st.log
	if st.crit == "size" {
		l.When, l.Size = spec.Untimed, st.threshold
	} else {
		l.When, l.Size = st.crit, st.maxsize
	}
	l.MaxSize = 0
	if l.DateFormat == spec.DefaultDateFormat(l.When) {
		l.DateFormat = ""
	}
	return l
}

// lrIgnored are directives logrotate knows that have no [log] equivalent:
// accepted and reported, not refused.
var lrIgnored = map[string]bool{
	"su": true, "create": true, "nocreate": true, "createolddir": true, "nocreateolddir": true,
	"sharedscripts": true, "nosharedscripts": true, "mail": true, "nomail": true, "mailfirst": true,
	"maillast": true, "compresscmd": true, "uncompresscmd": true, "compressoptions": true,
	"olddir": true, "noolddir": true, "extension": true, "start": true, "tabooext": true,
	"taboopat": true, "shred": true, "noshred": true, "shredcycles": true, "copy": true, "nocopy": true,
	"renamecopy": true, "allowhardlink": true, "noallowhardlink": true, "ignoreduplicates": true,
	"include": true, "minage": true, "addextension": true, "errors": true,
}

// lrScripts open a script that runs up to a line "endscript".
var lrScripts = map[string]bool{"prerotate": true, "postrotate": true, "firstaction": true, "lastaction": true, "preremove": true}

// ParseStanzas reads a logrotate configuration (a file of
// /etc/logrotate.d) into one Stanza per block; settings outside a block
// apply to the blocks after them, as in logrotate. file names the input
// in problems.
func ParseStanzas(file string, data []byte) ([]Stanza, spec.Problems) {
	var (
		out     []Stanza
		ps      spec.Problems
		global  = newLRState()
		cur     *lrState // inside a block
		block   Stanza
		pending []string // paths whose "{" is on the next line
		pendAt  int
		script  string   // the directive whose script is being read
		body    []string // its lines
	)
	add := func(line, col int, key, format string, args ...any) {
		ps = append(ps, spec.Problem{File: file, Line: line, Col: col, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimLeft(raw, " \t")
		col := len(raw) - len(trimmed) + 1
		if script != "" {
			if strings.TrimSpace(raw) == "endscript" {
				if script == "postrotate" && cur != nil {
					block.PostRotate = scriptBody(body)
				}
				script, body = "", nil
				continue
			}
			body = append(body, raw)
			continue
		}
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		words, err := lrWords(trimmed)
		if err != nil {
			add(n, col, "", "%v", err)
			continue
		}
		// A block opens with its paths and "{" (alone on the next line
		// too), and closes with "}" alone.
		last := words[len(words)-1]
		switch {
		case cur == nil && last == "{":
			paths := words[:len(words)-1]
			line := n
			if len(paths) == 0 && pending != nil {
				paths, line = pending, pendAt
			} else if pending != nil {
				add(pendAt, 1, "", "paths without a block")
			}
			pending = nil
			if len(paths) == 0 {
				add(n, col, "", "a block needs the paths of its logs before \"{\"")
			}
			st := global
			cur = &st
			block = Stanza{Line: line, Paths: paths}
			continue
		case cur == nil && isLRPathLine(words):
			if pending != nil {
				add(pendAt, 1, "", "paths without a block")
			}
			pending, pendAt = words, n
			continue
		case words[0] == "}":
			if cur == nil {
				add(n, col, "", "\"}\" without a block")
				continue
			}
			if len(words) > 1 {
				add(n, col, "", "text after \"}\"")
			}
			block.Log, block.CopyTruncate = cur.result(), cur.copytruncate
			out = append(out, block)
			cur = nil
			continue
		case last == "{" || words[0] == "{":
			add(n, col, "", "a block inside a block")
			continue
		}
		if pending != nil {
			add(pendAt, 1, "", "paths without a block")
			pending = nil
		}
		st := &global
		if cur != nil {
			st = cur
		}
		key := words[0]
		if lrScripts[key] {
			script = key
			if cur == nil {
				add(n, col, key, "a script outside a block")
			} else {
				block.Ignored = append(block.Ignored, fmt.Sprintf("line %d: %s", n, key))
				if key == "postrotate" {
					block.PostRotateLine = n
				}
			}
			continue
		}
		if msg := st.apply(words); msg != "" {
			add(n, col, key, "%s", msg)
		} else if lrIgnored[key] && cur != nil {
			block.Ignored = append(block.Ignored, fmt.Sprintf("line %d: %s", n, strings.Join(words, " ")))
		}
	}
	if err := sc.Err(); err != nil {
		add(n+1, 1, "", "%v", err)
	}
	if pending != nil {
		add(pendAt, 1, "", "paths without a block")
	}
	if script != "" {
		add(n, 1, script, "no endscript before the end")
	}
	if cur != nil {
		add(block.Line, 1, "", "block not closed with \"}\"")
	}
	return out, ps
}

// scriptBody joins a script's lines, less the blanks all of them start
// with (upstart's dedent keeps a final newline and trims line ends).
func scriptBody(lines []string) string {
	prefix := ""
	first := true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = lead, false
			continue
		}
		for !strings.HasPrefix(lead, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// isLRPathLine: a line of paths waiting for its "{" on the next line.
func isLRPathLine(words []string) bool {
	for _, w := range words {
		if !strings.HasPrefix(w, "/") && !strings.HasPrefix(w, "~") {
			return false
		}
	}
	return true
}

// apply reads one directive into the state; it returns what is wrong, or "".
func (st *lrState) apply(words []string) string {
	key, args := words[0], words[1:]
	nargs := func(n int) string {
		if len(args) != n {
			return fmt.Sprintf("takes %d argument(s), got %d", n, len(args))
		}
		return ""
	}
	flag := func(p *bool, v bool) string {
		if m := nargs(0); m != "" {
			return m
		}
		*p = v
		return ""
	}
	l := &st.log
	switch key {
	case spec.Hourly, spec.Daily, spec.Monthly, spec.Yearly:
		if m := nargs(0); m != "" {
			return m
		}
		st.crit = key
	case spec.Weekly:
		if len(args) > 1 {
			return "takes at most one argument, the weekday"
		}
		// logrotate's weekly: on the first day of the week, Sunday. Other
		// weekdays have no [log] equivalent.
		if len(args) == 1 && args[0] != "0" && args[0] != "7" {
			return fmt.Sprintf("weekly %s: only Sunday (0 or 7) is supported", args[0])
		}
		st.crit = key
	case "size", "maxsize", "minsize":
		if m := nargs(1); m != "" {
			return m
		}
		var v spec.Size
		if err := v.UnmarshalText([]byte(args[0])); err != nil {
			return err.Error()
		}
		switch key {
		case "size":
			st.crit, st.threshold = "size", v
		case "maxsize":
			st.maxsize = v
		default:
			l.MinSize = v
		}
	case "rotate", "maxage":
		if m := nargs(1); m != "" {
			return m
		}
		v, err := strconv.Atoi(args[0])
		if err != nil || v < -1 || (key == "maxage" && v < 0) {
			return fmt.Sprintf("want a count, got %q", args[0])
		}
		if key == "rotate" {
			l.Rotate = v
		} else {
			l.MaxAge = v
		}
	case "compress", "nocompress":
		return flag(&l.Compress, key == "compress")
	case "delaycompress", "nodelaycompress":
		return flag(&l.DelayCompress, key == "delaycompress")
	case "notifempty", "ifempty":
		return flag(&l.NotIfEmpty, key == "notifempty")
	case "missingok", "nomissingok":
		return flag(&l.MissingOK, key == "missingok")
	case "dateext", "nodateext":
		return flag(&l.DateExt, key == "dateext")
	case "dateyesterday":
		return flag(&l.DateYesterday, true)
	case "copytruncate", "nocopytruncate":
		return flag(&st.copytruncate, key == "copytruncate")
	case "dateformat":
		if m := nargs(1); m != "" {
			return m
		}
		if err := spec.CheckDateFormat(args[0]); err != nil {
			return err.Error()
		}
		l.DateFormat = args[0]
	case "compressext":
		if m := nargs(1); m != "" {
			return m
		}
		if args[0] != ".gz" {
			return "only .gz (gzip) is supported"
		}
	default:
		if !lrIgnored[key] {
			return "unknown directive"
		}
	}
	return ""
}

// lrWords splits a line into words; logrotate paths may be quoted with "
// or '.
func lrWords(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		if q := s[0]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unbalanced %c", q)
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		w := s[:end]
		// "path{" and "}" glued to a word are split the way logrotate does.
		if len(w) > 1 && strings.HasSuffix(w, "{") {
			out = append(out, w[:len(w)-1], "{")
		} else {
			out = append(out, w)
		}
		s = s[end:]
	}
}

// WriteStanza writes the logrotate stanza equivalent to l for the given
// paths: every setting spelled out, so that reading it back (by logrotate
// or ParseStanzas) gives l again. A log that is never rotated (when =
// "never", no size) has no equivalent: logrotate always has a criterion.
func WriteStanza(l spec.Log, paths []string) (string, error) {
	if l.When == spec.Untimed && l.Size == 0 {
		return "", fmt.Errorf("when = \"never\" and no size: upkeep never rotates this log, and a logrotate stanza always does")
	}
	var b strings.Builder
	for i, p := range paths {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(p, " \t\"{}") {
			p = "'" + p + "'"
		}
		b.WriteString(p)
	}
	b.WriteString(" {\n")
	line := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }
	on := func(v bool, yes, no string) {
		if v {
			line("%s", yes)
		} else {
			line("%s", no)
		}
	}
	if l.When == spec.Untimed {
		line("size %s", l.Size)
	} else {
		line("%s", l.When)
		if l.Size > 0 {
			line("maxsize %s", l.Size)
		}
	}
	if l.MinSize > 0 {
		line("minsize %s", l.MinSize)
	}
	line("rotate %d", l.Rotate)
	on(l.Compress, "compress", "nocompress")
	on(l.DelayCompress, "delaycompress", "nodelaycompress")
	on(l.NotIfEmpty, "notifempty", "ifempty")
	on(l.MissingOK, "missingok", "nomissingok")
	on(l.DateExt, "dateext", "nodateext")
	if l.DateExt || l.DateFormat != "" {
		line("dateformat %s", l.DateFormatOf())
	}
	if l.DateYesterday {
		line("dateyesterday")
	}
	if l.MaxAge > 0 {
		line("maxage %d", l.MaxAge)
	}
	// upkeep holds the file open; it notices a rename within a second
	// and reopens, so a renamed file keeps its last lines, but one that
	// logrotate compresses at once would lose them: copytruncate there.
	if l.Compress && !l.DelayCompress {
		line("copytruncate")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// WriteFileStanza is the stanza for the file at path (a host path, or its
// pattern) that rotates it as upkeep does: its settings, copytruncate, or
// postrotate with its command; signalCmd is the command that sends its
// signal to the service's main process ("upkeep signal NAME USR1").
func WriteFileStanza(f spec.LogFile, path, signalCmd string) (string, error) {
	st, err := WriteStanza(f.Log, []string{path})
	if err != nil {
		return "", err
	}
	var extra string
	switch {
	case f.Method == spec.CopyTruncate:
		if !strings.Contains(st, "\n  copytruncate\n") {
			extra = "  copytruncate\n"
		}
	case f.Signal != "":
		extra = "  postrotate\n    " + signalCmd + "\n  endscript\n"
	default:
		extra = "  postrotate\n    " + strings.ReplaceAll(f.PostRotate, "\n", "\n    ") + "\n  endscript\n"
	}
	return strings.TrimSuffix(st, "}\n") + extra + "}\n", nil
}
