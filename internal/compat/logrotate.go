package compat

import (
	"path"
	"regexp"
	"strconv"
	"strings"

	"upkeep/internal/spec"
)

var (
	lrIgnoredRE = regexp.MustCompile(`^line (\d+): (.*)$`)
	logPathRE   = regexp.MustCompile(`^/var/log/([^/]+?)(\.error)?\.log$`)
)

// ParseLogrotate reads a logrotate file (/etc/logrotate.d/NAME) with
// spec.ParseLogrotate: a stanza for /var/log/NAME.log or NAME.error.log
// becomes service NAME's [log]. It only adds to a service another file
// defines; alone it has nothing to run.
func ParseLogrotate(file string, data []byte) ([]*Draft, []Note) {
	stanzas, problems := spec.ParseLogrotate(file, data)
	var notes []Note
	for _, p := range problems {
		notes = append(notes, Note{Pos: Pos{File: file, Line: p.Line, Text: p.Key}, Msg: p.Msg + "; dropped"})
	}
	byName := map[string]*Draft{}
	var drafts []*Draft
	for _, st := range stanzas {
		at := Pos{File: file, Line: st.Line, Text: shorten(strings.Join(st.Paths, " ") + " {")}
		var names []string
		for _, p := range st.Paths {
			m := logPathRE.FindStringSubmatch(path.Clean(p))
			name := ""
			if m != nil {
				name, _ = serviceName(m[1])
			}
			if name == "" || name != m[1] {
				notes = append(notes, Note{Pos: at, Msg: "path " + p + " is no service's var/log/<name>.log; dropped"})
				continue
			}
			if !contains(names, name) {
				names = append(names, name)
			}
		}
		for _, name := range names {
			d := byName[name]
			if d == nil {
				d = newDraft(name, file+" (logrotate)")
				byName[name] = d
				drafts = append(drafts, d)
			}
			d.Svc.Log = st.Log
			setLog(d, st.Log, at)
			if st.CopyTruncate {
				d.Note(at, "copytruncate: upkeep rotates its own files between two writes; not needed")
			}
			for _, ig := range st.Ignored {
				p := Pos{File: file, Line: st.Line, Text: ig}
				if m := lrIgnoredRE.FindStringSubmatch(ig); m != nil {
					n, _ := strconv.Atoi(m[1])
					p = Pos{File: file, Line: n, Text: shorten(m[2])}
				}
				d.Drop(p, "upkeep rotates the files itself")
			}
		}
	}
	return drafts, notes
}

// setLog marks the [log] keys whose value differs from upkeep's default.
func setLog(d *Draft, l spec.Log, at Pos) {
	def := spec.Service{Log: spec.DefaultLog()}
	for _, f := range logFields {
		if f.toml(&d.Svc) != f.toml(&def) {
			d.Set(f.key, at)
		} else {
			d.Unset(f.key)
		}
	}
}
