package compat

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// upstartLine is one stanza: its words' text and where it starts. A
// block (script … end script) carries its body.
type upstartLine struct {
	line  int
	text  string // the stanza, continuation lines joined
	block string // the body of a script block
	end   int    // the line of "end script"
}

// readUpstart splits a job file into stanzas: comments go, lines ending in
// a backslash continue, a `start on (…` continues until its parentheses
// close, and `… script` runs to `end script`.
func readUpstart(data []byte) ([]upstartLine, []int) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var out []upstartLine
	var unterminated []int
	for i := 0; i < len(lines); i++ {
		raw := strings.TrimSpace(lines[i])
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		st := upstartLine{line: i + 1}
		text := stripComment(raw)
		for (strings.HasSuffix(text, "\\") || strings.Count(text, "(") > strings.Count(text, ")")) && i+1 < len(lines) {
			text = strings.TrimSuffix(text, "\\") + " "
			i++
			text += stripComment(strings.TrimSpace(lines[i]))
		}
		st.text = strings.TrimSpace(text)
		if st.text == "" { // a lone backslash
			continue
		}
		if f := strings.Fields(st.text); len(f) == 1 && f[0] == "script" || len(f) == 2 && f[1] == "script" && upstartHooks[f[0]] {
			var body []string
			j := i + 1
			for ; j < len(lines); j++ {
				if t := strings.Fields(lines[j]); len(t) == 2 && t[0] == "end" && t[1] == "script" {
					break
				}
				body = append(body, lines[j])
			}
			if j >= len(lines) {
				unterminated = append(unterminated, st.line)
			}
			st.block, st.end = dedent(body), j+1
			i = j
		}
		out = append(out, st)
	}
	return out, unterminated
}

// stripComment drops a # comment that is not inside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// dedent removes the indentation common to a block's lines.
func dedent(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	prefix := ""
	first := true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ind, false
			continue
		}
		for !strings.HasPrefix(ind, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(strings.TrimPrefix(l, prefix), " \t\r"))
		b.WriteByte('\n')
	}
	return b.String()
}

// upstartJob collects a job's stanzas until the whole file is read.
type upstartJob struct {
	d                    *Draft
	file                 string
	respawn, normalExit0 bool
	respawnAt, startOnAt Pos
	startOn, manual      bool
	stopOn               []string // jobs named by `stop on stopping X`
	stopOnAt             Pos
	preStart             *upstartLine
	main                 Pos
}

// ParseUpstart reads an upstart job file (/etc/init/NAME.conf); the job is
// named by the file.
func ParseUpstart(file string, data []byte) ([]*Draft, []Note) {
	raw := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".conf"), ".override")
	name, err := serviceName(raw)
	if err != nil {
		return nil, []Note{{Pos: Pos{File: file}, Msg: "job " + err.Error(), Err: true}}
	}
	d := newDraft(name, file+" (upstart)")
	if name != raw {
		d.Note(Pos{File: file}, "job %q is written %q, as service names are", raw, name)
	}
	j := &upstartJob{d: d, file: file}
	stanzas, open := readUpstart(data)
	for _, l := range open {
		d.Note(Pos{File: file, Line: l}, "script without `end script`; read to the end of the file")
	}
	for i := range stanzas {
		j.stanza(&stanzas[i])
	}
	j.finish()
	return []*Draft{d}, nil
}

func (j *upstartJob) pos(l *upstartLine) Pos {
	return Pos{File: j.file, Line: l.line, Text: shorten(l.text)}
}

func (j *upstartJob) stanza(l *upstartLine) {
	d := j.d
	at := j.pos(l)
	f := strings.Fields(l.text)
	if len(f) == 0 {
		return
	}
	key := f[0]
	arg := strings.TrimSpace(strings.TrimPrefix(l.text, key))
	if len(f) > 1 && (key == "kill" || key == "respawn" && f[1] == "limit" || key == "normal" || key == "start" || key == "stop" || key == "reload") {
		key += " " + f[1]
		arg = strings.TrimSpace(strings.TrimPrefix(arg, f[1]))
	}
	switch key {
	case "description", "author", "usage":
		d.Comments = append(d.Comments, key+": "+unquote(arg))
	case "version":
		d.Svc.Version = unquote(arg)
		d.Set("version", at)
	case "start on":
		j.startOn, j.startOnAt = true, at
		j.startEvents(at, arg)
	case "stop on":
		j.stopOnAt = at
		j.stopEvents(arg)
	case "manual":
		j.manual = true
		d.Svc.Autostart = false
		d.Set("autostart", at)
	case "env":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			d.Drop(at, "upkeep passes no variables from the daemon's environment")
			return
		}
		d.SetEnv(strings.TrimSpace(k), unquote(strings.TrimSpace(v)), at)
	case "export":
		d.Drop(at, "upkeep has no events to export variables to")
	case "setuid":
		d.Svc.User = unquote(arg)
		d.Set("user", at)
	case "setgid":
		d.Svc.Group = unquote(arg)
		d.Set("group", at)
	case "chdir":
		d.Svc.Directory = unquote(arg)
		d.Set("directory", at)
	case "respawn":
		if arg != "" {
			d.Note(at, "not understood; dropped")
			return
		}
		j.respawn, j.respawnAt = true, at
	case "respawn limit":
		a := strings.Fields(arg)
		if len(a) == 1 && a[0] == "unlimited" {
			d.Note(at, "upkeep always has a limit: kept restart.limit = 10 in 60s")
			return
		}
		n, err1 := strconv.Atoi(firstOf(a, 0))
		t, err2 := strconv.Atoi(firstOf(a, 1))
		if len(a) != 2 || err1 != nil || err2 != nil || n < 1 || t < 1 || t > 1e6 {
			d.Note(at, "not understood; dropped")
			return
		}
		// upstart counts respawns within the interval; upkeep counts starts.
		d.Svc.Restart.Limit, d.Svc.Restart.Window = n, spec.Duration(time.Duration(t)*time.Second)
		d.Set("restart.limit", at)
		d.Set("restart.window", at)
	case "normal exit":
		for _, w := range strings.Fields(arg) {
			if w == "0" {
				j.normalExit0 = true
			}
		}
		if arg != "0" {
			d.Drop(at, "upkeep counts exit status 0 as the only normal exit")
		}
	case "kill signal":
		d.Svc.Stop.Signal = strings.TrimPrefix(strings.ToUpper(arg), "SIG")
		d.Set("stop.signal", at)
	case "kill timeout":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 || n > 1e6 {
			d.Note(at, "not understood; dropped")
			return
		}
		d.Svc.Stop.Timeout = spec.Duration(time.Duration(n) * time.Second)
		d.Set("stop.timeout", at)
	case "exec":
		j.main = at
		j.command(at, arg, false)
	case "script":
		j.main = at
		j.command(at, l.block, true)
	case "pre-start":
		j.preStart = l
	case "pre-stop":
		body, ok := hookBody(f, l)
		if !ok {
			d.Note(at, "not understood; dropped")
			return
		}
		if argv, plain := plainWords(body); plain && len(argv) > 0 && !l.isScript() {
			d.Svc.StopCommand = argv
		} else {
			d.Svc.StopCommand = []string{"/bin/sh", "-e", "-c", body}
		}
		d.Set("stop_command", at)
		d.Note(at, "imported as stop_command, which replaces the stop signal (upstart sends it after pre-stop)")
	case "post-start", "post-stop":
		d.Drop(at, "upkeep runs no hooks around a start or stop")
	case "expect":
		d.Drop(at, "upkeep follows the process it starts; run the program in the foreground, or give start_command and pidfile")
	case "task":
		d.Svc.Restart.Policy = spec.Never
		d.Set("restart.policy", at)
		d.Note(at, "a task runs once: imported as restart.policy = \"never\"")
	case "console":
		if arg == "log" || arg == "output" || arg == "none" {
			d.Note(at, "upkeep writes the output to %s and %s", paths.LogRel(d.Name), paths.ErrorLogRel(d.Name))
			return
		}
		d.Drop(at, "")
	case "instance":
		d.Drop(at, "upkeep runs one instance of a service")
	case "emits", "reload signal":
		d.Drop(at, "upkeep has no events")
	case "umask":
		u, ok := importUmask(arg)
		if !ok {
			d.Note(at, "not an octal umask; dropped")
			return
		}
		d.Svc.Umask = u
		d.Set("umask", at)
	case "limit":
		a := strings.Fields(arg)
		if len(a) != 3 {
			d.Note(at, "want limit RESOURCE SOFT HARD; dropped")
			return
		}
		key := map[string]string{"nofile": "limits.nofile", "nproc": "limits.nproc", "core": "limits.core"}[a[0]]
		if key == "" {
			d.Drop(at, "upkeep sets the limits nofile, nproc and core only")
			return
		}
		l, ok := importLimit(a[1], a[2])
		if !ok {
			d.Note(at, "not a soft and a hard limit (integers or unlimited, soft ≤ hard); dropped")
			return
		}
		switch a[0] {
		case "nofile":
			d.Svc.Limits.Nofile = l
		case "nproc":
			d.Svc.Limits.Nproc = l
		case "core":
			d.Svc.Limits.Core = l
		}
		d.Set(key, at)
	case "nice", "oom", "chroot", "apparmor", "cgroup":
		d.Drop(at, "")
	default:
		d.Note(at, "not understood; dropped")
	}
}

func (l *upstartLine) isScript() bool { return strings.HasSuffix(l.text, "script") }

// hookBody is the command of `pre-stop exec CMD` or the body of
// `pre-stop script`.
func hookBody(f []string, l *upstartLine) (string, bool) {
	switch {
	case len(f) >= 3 && f[1] == "exec":
		return strings.TrimSpace(strings.SplitN(l.text, "exec", 2)[1]), true
	case len(f) == 2 && f[1] == "script":
		return l.block, strings.TrimSpace(l.block) != ""
	}
	return "", false
}

func firstOf(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// command reads the job's exec or script: the guide's `export HOME=…` and
// `exec sudo -u nodejs … 2>> x.error.log >> x.log` become env, user,
// command and upkeep's own log files; anything subtler stays a script.
func (j *upstartJob) command(at Pos, body string, script bool) {
	d := j.d
	if s, ok := simpleScript(body); ok {
		d.Comments = append(d.Comments, s.comments...)
		for _, kv := range s.env {
			d.SetEnv(kv[0], kv[1], at)
		}
		if s.dir != "" {
			d.Svc.Directory = s.dir
			d.Set("directory", at)
		}
		applyCommandLine(d, s.cmd, at)
		return
	}
	if !script {
		body = "exec " + body
	}
	d.Svc.Script = body
	d.Set("script", at)
}

// applyCommandLine sets what a reduced command line says.
func applyCommandLine(d *Draft, cl commandLine, at Pos) {
	d.Svc.Command = cl.argv
	d.Set("command", at)
	for _, kv := range cl.env {
		d.SetEnv(kv[0], kv[1], at)
	}
	if cl.user != "" {
		if d.IsSet("user") && d.Svc.User != cl.user {
			d.Note(at, "%s: user %s replaces %s", cl.wrapper, cl.user, d.Svc.User)
		}
		d.Svc.User = cl.user
		d.Set("user", at)
	}
	if cl.group != "" {
		d.Svc.Group = cl.group
		d.Set("group", at)
	}
	for _, fl := range cl.wrapperFlags {
		d.Note(at, "%s: upkeep sets HOME to the service directory and passes env; dropped", fl)
	}
	out, errLog := "/"+paths.LogRel(d.Name), "/"+paths.ErrorLogRel(d.Name)
	switch cl.stdout {
	case "", out:
	default:
		d.Note(at, "output to %s: upkeep writes it to %s; redirection dropped", cl.stdout, out)
	}
	switch cl.stderr {
	case "", errLog:
	case "&1":
		if cl.stdout != "/dev/null" {
			d.Note(at, "2>&1: upkeep keeps errors apart, in %s", errLog)
		}
	default:
		d.Note(at, "errors to %s: upkeep writes them to %s; redirection dropped", cl.stderr, errLog)
	}
	if cl.stdin != "" && cl.stdin != "/dev/null" {
		d.Note(at, "input from %s: upkeep's services read /dev/null; dropped", cl.stdin)
	}
}

// script is a shell script reduced to assignments, a cd and one command.
type script struct {
	env      [][2]string
	dir      string
	cmd      commandLine
	comments []string
}

// simpleScript reduces a script when nothing in it needs a shell: comment
// lines, `export K=V` or `K=V`, `cd DIR`, then one (exec) command line.
func simpleScript(body string) (script, bool) {
	var s script
	var lines []string
	cur := ""
	for _, l := range strings.Split(body, "\n") {
		t := strings.TrimSpace(l)
		if cur == "" && strings.HasPrefix(t, "#") {
			s.comments = append(s.comments, strings.TrimSpace(strings.TrimPrefix(t, "#")))
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		cur += t
		if strings.TrimSpace(cur) != "" {
			lines = append(lines, strings.TrimSpace(cur))
		}
		cur = ""
	}
	if strings.TrimSpace(cur) != "" {
		lines = append(lines, strings.TrimSpace(cur))
	}
	if len(lines) == 0 {
		return s, false
	}
	assigned := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		ws, ok := plainWords(l)
		if !ok || len(ws) == 0 {
			return s, false
		}
		switch {
		case ws[0] == "export":
			for _, w := range ws[1:] {
				if k, v, ok := strings.Cut(w, "="); ok && isAssignment(w) {
					s.env = append(s.env, [2]string{k, v})
					assigned[k] = true
				} else if !assigned[w] {
					return s, false
				}
			}
		case ws[0] == "cd" && len(ws) == 2 && s.dir == "":
			s.dir = ws[1]
		default:
			for _, w := range ws {
				k, v, ok := strings.Cut(w, "=")
				if !ok || !isAssignment(w) {
					return s, false
				}
				s.env = append(s.env, [2]string{k, v})
				assigned[k] = true
			}
		}
	}
	cl, ok := parseCommandLine(lines[len(lines)-1])
	if !ok {
		return s, false
	}
	s.cmd = cl
	return s, true
}

var bootEvents = map[string]bool{"startup": true, "runlevel": true, "filesystem": true, "local-filesystems": true,
	"remote-filesystems": true, "virtual-filesystems": true, "all-swaps": true, "net-device-up": true,
	"static-network-up": true, "mounted": true, "network-interface": true, "network-services": true}

// startEvents reads `start on`: boot events mean autostart (the default),
// `started X` a dependency.
func (j *upstartJob) startEvents(at Pos, expr string) {
	ws := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(expr))
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		switch {
		case w == "and" || w == "or" || strings.Contains(w, "=") || strings.HasPrefix(w, "["):
		case bootEvents[w]:
		case (w == "started" || w == "stopped" || w == "starting" || w == "stopping") && i+1 < len(ws):
			i++
			job := ws[i]
			switch w {
			case "started":
				name, err := serviceName(job)
				if err != nil || name == j.d.Name {
					j.d.Note(at, "started %s: not a service name; dropped", job)
					continue
				}
				j.d.AddDependency(name, at)
			case "starting":
				j.d.Note(at, "starting %s: %s would have to depend on this service; dropped", job, job)
			default:
				j.d.Note(at, "%s %s: upkeep starts a service when its dependencies run, not on their exit; dropped", w, job)
			}
		default:
			j.d.Note(at, "event %s: upkeep has no events; dropped", w)
		}
	}
}

// stopEvents reads `stop on`: shutdown and runlevel changes are what the
// daemon does anyway; `stopping X` follows from depends_on.
func (j *upstartJob) stopEvents(expr string) {
	ws := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(expr))
	for i := 0; i < len(ws); i++ {
		switch w := ws[i]; {
		case w == "and" || w == "or" || strings.Contains(w, "=") || strings.HasPrefix(w, "["):
		case w == "shutdown" || w == "runlevel" || w == "deconfiguring-networking" || w == "unmounted-remote-filesystems":
		case (w == "stopping" || w == "stopped") && i+1 < len(ws):
			i++
			j.stopOn = append(j.stopOn, ws[i])
		default:
			j.d.Note(j.stopOnAt, "event %s: upkeep has no events; dropped", w)
		}
	}
}

func (j *upstartJob) finish() {
	d := j.d
	first := Pos{File: j.file, Line: j.main.Line}
	if !j.startOn && !j.manual {
		d.Svc.Autostart = false
		d.SetWeak("autostart", Pos{File: j.file, Text: "no start on"})
		d.Note(Pos{File: j.file}, "no `start on`: the job starts only by hand; imported as autostart = false")
	}
	if j.startOn && j.manual {
		d.Note(j.startOnAt, "`manual` wins: imported as autostart = false")
	}
	switch {
	case d.IsSet("restart.policy"): // a task
	case !j.respawn:
		d.Svc.Restart.Policy = spec.Never
		d.SetWeak("restart.policy", Pos{File: j.file, Line: first.Line, Text: "no respawn"})
	case j.normalExit0:
		d.Svc.Restart.Policy = spec.OnFailure
		d.Set("restart.policy", j.respawnAt)
	}
	for _, x := range j.stopOn {
		name, err := serviceName(x)
		if err != nil || !contains(d.Svc.DependsOn, name) {
			d.Note(j.stopOnAt, "stopping %s: upkeep stops a service with its dependencies only (depends_on); dropped", x)
		}
	}
	if l := j.preStart; l != nil {
		at := j.pos(l)
		f := strings.Fields(l.text)
		body, ok := hookBody(f, l)
		switch {
		case !ok:
			d.Note(at, "not understood; dropped")
		case d.IsSet("user"):
			d.Drop(at, "it runs as root before setuid; upkeep runs everything as the service's user")
		case d.IsSet("command"):
			d.Svc.Script = strings.TrimRight(body, "\n") + "\nexec " + shellQuote(d.Svc.Command) + "\n"
			d.Svc.Command = nil
			d.Set("script", d.At("command"))
			d.Unset("command")
			d.Note(at, "folded into script, before the main command")
		case d.IsSet("script"):
			d.Svc.Script = strings.TrimRight(body, "\n") + "\n" + d.Svc.Script
			d.Note(at, "folded into script, before the main command")
		default:
			d.Drop(at, "no main command to run it before")
		}
	}
}

// shellQuote writes argv as one sh command line.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

var upstartHooks = map[string]bool{"pre-start": true, "post-start": true, "pre-stop": true, "post-stop": true}
