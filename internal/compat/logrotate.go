package compat

import (
	"path"
	"regexp"
	"strconv"
	"strings"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

var (
	lrIgnoredRE = regexp.MustCompile(`^line (\d+): (.*)$`)
	logPathRE   = regexp.MustCompile(`^/` + regexp.QuoteMeta(paths.LogDir) + `/([^/]+?)(\.error)?\.log$`)
	ownPathRE   = regexp.MustCompile(`^/` + regexp.QuoteMeta(paths.LogDir) + `/([^/]+)/[^/]+$`)
)

// ParseLogrotate reads a logrotate file (/etc/logrotate.d/NAME) with
// ParseStanzas: a stanza for /var/log/NAME.log or NAME.error.log
// becomes service NAME's [log]; one for a file in /var/log/NAME/ (a
// pattern too: /var/log/nginx/*.log) becomes a [[log.file]] of service
// NAME, a file it writes itself. It only adds to a service another file
// defines; alone it has nothing to run.
func ParseLogrotate(file string, data []byte) ([]*Draft, []Note) {
	stanzas, problems := ParseStanzas(file, data)
	var notes []Note
	for _, p := range problems {
		notes = append(notes, Note{Pos: Pos{File: file, Line: p.Line, Text: p.Key}, Msg: p.Msg + "; dropped"})
	}
	byName := map[string]*Draft{}
	var drafts []*Draft
	draft := func(name string) *Draft {
		d := byName[name]
		if d == nil {
			d = newDraft(name, file+" (logrotate)")
			byName[name] = d
			drafts = append(drafts, d)
		}
		return d
	}
	for _, st := range stanzas {
		at := Pos{File: file, Line: st.Line, Text: shorten(strings.Join(st.Paths, " ") + " {")}
		var names []string
		for _, p := range st.Paths {
			clean := path.Clean(p)
			if m := ownPathRE.FindStringSubmatch(clean); m != nil && spec.CheckName(m[1]) == nil {
				if _, _, err := spec.LogFilePath(clean); err != nil {
					notes = append(notes, Note{Pos: at, Msg: "path " + p + ": " + err.Error() + "; dropped"})
				} else {
					ownFile(draft(m[1]), st, clean, file, at)
				}
				continue
			}
			m := logPathRE.FindStringSubmatch(clean)
			name := ""
			if m != nil {
				name, _ = serviceName(m[1])
			}
			if name == "" || name != m[1] {
				notes = append(notes, Note{Pos: at, Msg: "path " + p + " is no service's var/log/<name>.log or file in var/log/<name>/; dropped"})
				continue
			}
			if !contains(names, name) {
				names = append(names, name)
			}
		}
		for _, name := range names {
			d := draft(name)
			d.Svc.Log = st.Log
			setLog(d, st.Log, at)
			if st.CopyTruncate {
				d.Note(at, "copytruncate: upkeep rotates its own files between two writes; not needed")
			}
			for _, ig := range st.Ignored {
				d.Drop(ignoredAt(file, st, ig), "upkeep rotates the files itself")
			}
		}
	}
	return drafts, notes
}

// ownFile adds the file at p, which st rotates, to the files d writes
// itself, with every setting of the stanza: the stanza stands alone, the
// service's [log] may come from another. Without copytruncate logrotate
// renames the file and runs postrotate to have the service reopen it, as
// upkeep's method rename does; without either, the service would go on
// writing to the renamed file, so it becomes copytruncate.
func ownFile(d *Draft, st Stanza, p, file string, at Pos) {
	for _, f := range d.Svc.LogFiles {
		if path.Clean("/"+strings.TrimPrefix(f.Path, "/")) == p {
			d.Note(at, "%s is rotated by an earlier stanza; this one is dropped", p)
			return
		}
	}
	// Every setting, for now: finish leaves out those the service's
	// [log] has anyway (sameAsService), once it is known.
	l := st.Log
	lf := spec.LogFile{Path: p, When: &l.When, Size: &l.Size, MinSize: &l.MinSize, Rotate: &l.Rotate,
		Compress: &l.Compress, DelayCompress: &l.DelayCompress, NotIfEmpty: &l.NotIfEmpty, MissingOK: &l.MissingOK,
		DateExt: &l.DateExt, DateFormat: &l.DateFormat, DateYesterday: &l.DateYesterday, MaxAge: &l.MaxAge}
	script := Pos{File: file, Line: st.PostRotateLine, Text: "postrotate"}
	switch {
	case st.CopyTruncate:
		lf.Method = spec.CopyTruncate
		if st.PostRotate != "" {
			d.Note(script, "copytruncate needs no reopening; the script is dropped")
		}
	case st.PostRotate != "":
		lf.Method, lf.PostRotate = spec.Rename, st.PostRotate
		d.Note(script, "run after each file's rotation, with the file as $1, as the service's user (sharedscripts does not apply)")
	default:
		lf.Method = spec.CopyTruncate
		d.Note(at, "no copytruncate and no postrotate to make the service reopen %s: imported as method = \"copytruncate\"", p)
	}
	d.Svc.LogFiles = append(d.Svc.LogFiles, lf)
	d.Set("log.file", at)
	for _, ig := range st.Ignored {
		if st.PostRotateLine > 0 && strings.HasPrefix(ig, "line "+strconv.Itoa(st.PostRotateLine)+": ") {
			continue
		}
		d.Drop(ignoredAt(file, st, ig), "")
	}
}

// ignoredAt places one of a stanza's ignored directives ("line N:
// directive") at its own line.
func ignoredAt(file string, st Stanza, ig string) Pos {
	if m := lrIgnoredRE.FindStringSubmatch(ig); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Pos{File: file, Line: n, Text: shorten(m[2])}
	}
	return Pos{File: file, Line: st.Line, Text: ig}
}

// sameAsService leaves out of each [[log.file]] the settings that are the
// same as the service's [log], which a file's settings default to, as a
// person would write it.
func sameAsService(d *Draft) {
	if !d.IsSet("log.file") {
		return
	}
	l := d.service(nil).Log
	for i := range d.Svc.LogFiles {
		f := &d.Svc.LogFiles[i]
		dropSame(&f.When, l.When)
		dropSame(&f.DateFormat, l.DateFormat)
		dropSame(&f.MinSize, l.MinSize)
		dropSame(&f.Rotate, l.Rotate)
		dropSame(&f.MaxAge, l.MaxAge)
		dropSame(&f.Compress, l.Compress)
		dropSame(&f.DelayCompress, l.DelayCompress)
		dropSame(&f.NotIfEmpty, l.NotIfEmpty)
		dropSame(&f.MissingOK, l.MissingOK)
		dropSame(&f.DateExt, l.DateExt)
		dropSame(&f.DateYesterday, l.DateYesterday)
		// A file with a size (or maxsize) of its own has only that
		// criterion: a size like the service's may go, none at all may
		// not if the service has one.
		if f.MaxSize == nil {
			dropSame(&f.Size, l.Size)
		}
	}
}

// dropSame unsets *p when it holds v.
func dropSame[T comparable](p **T, v T) {
	if *p != nil && **p == v {
		*p = nil
	}
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
