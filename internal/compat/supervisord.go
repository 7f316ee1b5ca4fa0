package compat

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// iniLine is one key of an INI section, continuation lines included.
type iniKey struct {
	line  int
	key   string // lower case, as Python's ConfigParser has it
	value string
}

type iniSection struct {
	line int
	name string
	keys []iniKey
}

// readINI reads supervisord's dialect of INI: `key = value` or `key:
// value`, ; and # comments (inline ones after a blank), indented lines
// continuing the value above.
func readINI(file string, data []byte) ([]iniSection, []Note) {
	var secs []iniSection
	var notes []Note
	var cur *iniSection
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i, raw := range lines {
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == ';' || t[0] == '#' {
			continue
		}
		t = stripINIComment(t)
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur != nil && len(cur.keys) > 0 {
				k := &cur.keys[len(cur.keys)-1]
				k.value = strings.TrimSpace(k.value + "\n" + t)
				continue
			}
		}
		if strings.HasPrefix(t, "[") {
			end := strings.IndexByte(t, ']')
			if end < 0 {
				notes = append(notes, Note{Pos: Pos{File: file, Line: i + 1, Text: shorten(t)}, Msg: "not a section header; dropped"})
				continue
			}
			secs = append(secs, iniSection{line: i + 1, name: strings.TrimSpace(t[1:end])})
			cur = &secs[len(secs)-1]
			continue
		}
		at := strings.IndexAny(t, "=:")
		if at <= 0 {
			notes = append(notes, Note{Pos: Pos{File: file, Line: i + 1, Text: shorten(t)}, Msg: "not a key = value line; dropped"})
			continue
		}
		if cur == nil {
			notes = append(notes, Note{Pos: Pos{File: file, Line: i + 1, Text: shorten(t)}, Msg: "outside a section; dropped"})
			continue
		}
		cur.keys = append(cur.keys, iniKey{line: i + 1, key: strings.ToLower(strings.TrimSpace(t[:at])), value: strings.TrimSpace(t[at+1:])})
	}
	return secs, notes
}

func stripINIComment(t string) string {
	for i := 1; i < len(t); i++ {
		if (t[i] == ';' || t[i] == '#') && (t[i-1] == ' ' || t[i-1] == '\t') {
			return strings.TrimSpace(t[:i])
		}
	}
	return t
}

var supervisordSelf = map[string]bool{"supervisord": true, "supervisorctl": true, "unix_http_server": true, "inet_http_server": true}

// ParseSupervisord reads a supervisord configuration: one draft per
// [program:x] section; [include] files are read through opt.
func ParseSupervisord(file string, data []byte, opt Options) ([]*Draft, []Note) {
	st := &supervisordState{opt: opt, seen: map[string]bool{file: true}}
	st.parse(file, data)
	return st.drafts, st.notes
}

type supervisordState struct {
	opt    Options
	drafts []*Draft
	notes  []Note
	depth  int
	seen   map[string]bool
}

func (st *supervisordState) parse(file string, data []byte) {
	secs, notes := readINI(file, data)
	st.notes = append(st.notes, notes...)
	for i := range secs {
		s := &secs[i]
		at := Pos{File: file, Line: s.line, Text: "[" + shorten(s.name) + "]"}
		kind, name, _ := strings.Cut(s.name, ":")
		switch {
		case kind == "program" && name != "":
			st.program(file, s, name)
		case kind == "include":
			st.include(file, s)
		case supervisordSelf[kind] || kind == "rpcinterface":
			st.notes = append(st.notes, Note{Pos: at, Msg: dropped("configures supervisord itself")})
		case kind == "group":
			st.notes = append(st.notes, Note{Pos: at, Msg: dropped("upkeep has no service groups")})
		case kind == "eventlistener" || kind == "fcgi-program":
			st.notes = append(st.notes, Note{Pos: at, Msg: dropped("upkeep has no " + kind + " processes")})
		default:
			st.notes = append(st.notes, Note{Pos: at, Msg: "unknown section; dropped"})
		}
	}
}

func (st *supervisordState) include(file string, s *iniSection) {
	for _, k := range s.keys {
		at := Pos{File: file, Line: k.line, Text: shorten(k.key + " = " + k.value)}
		if k.key != "files" {
			st.notes = append(st.notes, Note{Pos: at, Msg: "unknown key; dropped"})
			continue
		}
		if st.opt.Glob == nil || st.opt.ReadFile == nil {
			st.notes = append(st.notes, Note{Pos: at, Msg: "not followed (read the included files on their own)"})
			continue
		}
		if st.depth >= 8 {
			st.notes = append(st.notes, Note{Pos: at, Msg: "includes nested more than 8 deep; not followed"})
			continue
		}
		for _, pattern := range strings.Fields(k.value) {
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(file), pattern)
			}
			files, err := st.opt.Glob(pattern)
			if err != nil || len(files) == 0 {
				st.notes = append(st.notes, Note{Pos: at, Msg: "matches no file: " + pattern})
				continue
			}
			for _, f := range files {
				if st.seen[f] {
					continue
				}
				st.seen[f] = true
				data, err := st.opt.ReadFile(f)
				if err != nil {
					st.notes = append(st.notes, Note{Pos: at, Msg: "cannot read " + f + ": " + err.Error()})
					continue
				}
				st.depth++
				st.parse(f, data)
				st.depth--
			}
		}
	}
}

var supervisordVar = regexp.MustCompile(`%\(([A-Za-z0-9_]+)\)[-#0 +]*[0-9]*[sd]`)

// expand replaces supervisord's %(name)s expressions that have one value
// for the service; ENV_ ones depend on supervisord's environment and stay.
func expand(v, program, here string) (string, []string) {
	var unknown []string
	out := supervisordVar.ReplaceAllStringFunc(v, func(m string) string {
		name := supervisordVar.FindStringSubmatch(m)[1]
		switch name {
		case "program_name", "group_name":
			return program
		case "process_num":
			return "0"
		case "here":
			return here
		}
		unknown = append(unknown, m)
		return m
	})
	return strings.ReplaceAll(out, "%%", "%"), unknown
}

type logSettings struct {
	maxbytes, backups string
	at                Pos
}

func (st *supervisordState) program(file string, s *iniSection, raw string) {
	hdr := Pos{File: file, Line: s.line, Text: "[program:" + shorten(raw) + "]"}
	name, err := serviceName(raw)
	if err != nil {
		st.notes = append(st.notes, Note{Pos: hdr, Msg: "program " + err.Error(), Err: true})
		return
	}
	d := newDraft(name, file+" (supervisord)")
	st.drafts = append(st.drafts, d)
	if name != raw {
		d.Note(hdr, "program %q is written %q, as service names are", raw, name)
	}
	autorestart := false
	var logs [2]*logSettings // stdout, stderr
	for _, k := range s.keys {
		at := Pos{File: file, Line: k.line, Text: shorten(k.key + " = " + k.value)}
		v, unknown := expand(k.value, raw, filepath.Dir(file))
		if len(unknown) > 0 {
			d.Note(at, "%s: supervisord's environment is not known here; kept as written", strings.Join(unknown, ", "))
		}
		switch k.key {
		case "command":
			argv, err := shlexSplit(v)
			if err != nil || len(argv) == 0 {
				d.Note(at, "command not understood; dropped")
				continue
			}
			d.Svc.Command = argv
			d.Set("command", at)
		case "directory":
			d.Svc.Directory = v
			d.Set("directory", at)
		case "user":
			d.Svc.User = v
			d.Set("user", at)
		case "environment":
			env, err := supervisordEnv(v)
			if err != nil {
				d.Note(at, "%v; dropped", err)
				continue
			}
			for _, kv := range env {
				d.SetEnv(kv[0], kv[1], at)
			}
		case "autostart":
			b, ok := iniBool(v)
			if !ok {
				d.Note(at, "not true or false; dropped")
				continue
			}
			d.Svc.Autostart = b
			d.Set("autostart", at)
		case "autorestart":
			autorestart = true
			switch strings.ToLower(v) {
			case "true":
				d.Svc.Restart.Policy = spec.Always
			case "unexpected":
				d.Svc.Restart.Policy = spec.OnFailure
			case "false":
				d.Svc.Restart.Policy = spec.Never
			default:
				d.Note(at, "not true, false or unexpected; dropped")
				continue
			}
			d.Set("restart.policy", at)
		case "exitcodes":
			if strings.ReplaceAll(v, " ", "") != "0" {
				d.Drop(at, "upkeep counts exit status 0 as the only expected exit")
			}
		case "startsecs":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1e6 {
				d.Note(at, "not a number of seconds; dropped")
				continue
			}
			d.Svc.ReadyAfter = spec.Duration(time.Duration(n) * time.Second)
			d.Set("ready_after", at)
		case "startretries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1e6 {
				d.Note(at, "not a number; dropped")
				continue
			}
			d.Svc.Restart.Limit = n + 1
			d.Set("restart.limit", at)
			d.Note(at, "imported as restart.limit = %d starts within restart.window; supervisord counts only starts that fail within startsecs", n+1)
		case "stopsignal":
			d.Svc.Stop.Signal = strings.TrimPrefix(strings.ToUpper(v), "SIG")
			d.Set("stop.signal", at)
		case "stopwaitsecs":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1e6 {
				d.Note(at, "not a number of seconds; dropped")
				continue
			}
			d.Svc.Stop.Timeout = spec.Duration(time.Duration(n) * time.Second)
			d.Set("stop.timeout", at)
		case "stopasgroup", "killasgroup":
			if b, ok := iniBool(v); !ok || !b {
				d.Note(at, "upkeep always signals the whole process group and cgroup")
			}
		case "redirect_stderr":
			if b, _ := iniBool(v); b {
				d.Note(at, "upkeep keeps errors apart, in %s", paths.ErrorLogRel(name))
			}
		case "stdout_logfile", "stderr_logfile":
			want := "/" + paths.LogRel(name)
			if k.key == "stderr_logfile" {
				want = "/" + paths.ErrorLogRel(name)
			}
			switch {
			case v == want || strings.EqualFold(v, "AUTO"):
			case strings.EqualFold(v, "NONE"):
				d.Note(at, "upkeep always keeps the output, in %s; dropped", want)
			default:
				d.Note(at, "upkeep writes to %s; dropped", want)
			}
		case "stdout_logfile_maxbytes", "stdout_logfile_backups", "stderr_logfile_maxbytes", "stderr_logfile_backups":
			i := 0
			if strings.HasPrefix(k.key, "stderr") {
				i = 1
			}
			if logs[i] == nil {
				logs[i] = &logSettings{at: at}
			}
			if strings.HasSuffix(k.key, "maxbytes") {
				logs[i].maxbytes = v
			} else {
				logs[i].backups = v
			}
		case "priority":
			d.Drop(at, "it orders starts only; use depends_on for what must run first")
		case "numprocs":
			if v != "1" {
				d.Drop(at, "upkeep runs one process per service")
			}
		case "process_name", "numprocs_start":
			d.Drop(at, "upkeep names the process after the service")
		case "umask":
			u, ok := importUmask(v)
			if !ok {
				d.Note(at, "not an octal umask; dropped")
				continue
			}
			d.Svc.Umask = u
			d.Set("umask", at)
		case "serverurl", "stdout_capture_maxbytes", "stderr_capture_maxbytes", "stdout_events_enabled",
			"stderr_events_enabled", "stdout_syslog", "stderr_syslog", "nice":
			d.Drop(at, "")
		default:
			d.Note(at, "unknown key; dropped")
		}
	}
	if !autorestart {
		// supervisord's default: restart after an exit status not in exitcodes.
		d.Svc.Restart.Policy = spec.OnFailure
		d.Set("restart.policy", hdr)
	}
	st.logs(d, logs)
}

// logs maps supervisord's size-based rotation (maxbytes, backups) onto
// [log]; stdout's settings win when the two differ, as upkeep has one.
func (st *supervisordState) logs(d *Draft, logs [2]*logSettings) {
	l := logs[0]
	if l == nil {
		l = logs[1]
	} else if logs[1] != nil && (logs[1].maxbytes != l.maxbytes || logs[1].backups != l.backups) {
		d.Note(logs[1].at, "upkeep rotates both logs alike; the stdout settings are kept")
	}
	if l == nil {
		return
	}
	if l.maxbytes != "" {
		size, err := spec.ParseSize(strings.TrimSuffix(strings.ToUpper(l.maxbytes), "B"))
		if err != nil || size > 1<<50 {
			d.Note(l.at, "maxbytes not understood; dropped")
		} else {
			d.Svc.Log.When, d.Svc.Log.Size = spec.Untimed, spec.Size(size)
			d.Set("log.when", l.at)
			d.Set("log.size", l.at)
		}
	}
	if l.backups != "" {
		n, err := strconv.Atoi(l.backups)
		if err != nil || n < 0 {
			d.Note(l.at, "backups not understood; dropped")
		} else {
			d.Svc.Log.Rotate = n
			d.Set("log.rotate", l.at)
		}
	}
}

func iniBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// shlexSplit splits like Python's shlex.split, which supervisord uses for
// command: quotes and backslashes, and no expansion at all.
func shlexSplit(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("no closing quotation")
			}
			part := s[i+1 : i+1+j]
			if c == '"' {
				part = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(part)
			}
			cur.WriteString(part)
			i += j + 1
			in = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// supervisordEnv reads `KEY="value",KEY2=value2`.
func supervisordEnv(v string) ([][2]string, error) {
	var out [][2]string
	for len(strings.TrimSpace(v)) > 0 {
		v = strings.TrimLeft(v, " \t\n,")
		eq := strings.IndexByte(v, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("%q is not KEY=value", shorten(v))
		}
		k := strings.TrimSpace(v[:eq])
		v = strings.TrimLeft(v[eq+1:], " \t")
		val := ""
		if v != "" && (v[0] == '"' || v[0] == '\'') {
			end := strings.IndexByte(v[1:], v[0])
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %s", k)
			}
			val, v = v[1:1+end], v[2+end:]
		} else {
			end := strings.IndexByte(v, ',')
			if end < 0 {
				end = len(v)
			}
			val, v = strings.TrimSpace(v[:end]), v[end:]
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}
