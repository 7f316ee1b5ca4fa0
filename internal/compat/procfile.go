package compat

import (
	"regexp"
	"strconv"
	"strings"
)

var portRE = regexp.MustCompile(`\$(\{PORT\}|PORT\b)`)

// ParseProcfile reads a Procfile: `name: command` lines, each a service.
// foreman runs each command with sh -c and hands out PORT (5000 for the
// first process type, 5100 for the next, …); a command that uses $PORT
// gets that value in env.
func ParseProcfile(file string, data []byte) ([]*Draft, []Note) {
	var drafts []*Draft
	var notes []Note
	seen := map[string]bool{}
	for i, raw := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		at := Pos{File: file, Line: i + 1, Text: shorten(t)}
		k, cmd, ok := strings.Cut(t, ":")
		cmd = strings.TrimSpace(cmd)
		if !ok || !procfileRE.MatchString(t) || cmd == "" {
			notes = append(notes, Note{Pos: at, Msg: "not a `name: command` line; dropped"})
			continue
		}
		name, err := serviceName(k)
		if err != nil {
			notes = append(notes, Note{Pos: at, Msg: "process type " + err.Error(), Err: true})
			continue
		}
		if seen[name] {
			notes = append(notes, Note{Pos: at, Msg: "a second process type " + name + "; dropped"})
			continue
		}
		seen[name] = true
		d := newDraft(name, file+" (Procfile)")
		if name != k {
			d.Note(at, "process type %q is written %q, as service names are", k, name)
		}
		if portRE.MatchString(cmd) {
			port := strconv.Itoa(5000 + 100*len(drafts))
			d.SetEnv("PORT", port, at)
			d.Note(at, "PORT = %s, as foreman would hand it out", port)
		}
		if argv, ok := plainWords(cmd); ok && len(argv) > 0 && argv[0] != "" {
			d.Svc.Command = argv
			d.Set("command", at)
		} else {
			d.Svc.Script = execPrefix(cmd)
			d.Set("script", at)
		}
		drafts = append(drafts, d)
	}
	return drafts, notes
}

// execPrefix puts exec before a lone command, so that the service's
// process is the program rather than a shell waiting for it; a list or
// pipeline stays as it is.
func execPrefix(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 || f[0] == "exec" || isAssignment(f[0]) || strings.ContainsAny(cmd, ";&|\n()`") {
		return cmd
	}
	return "exec " + cmd
}
