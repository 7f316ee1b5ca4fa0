package spec

import (
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"upkeep/internal/paths"

	"github.com/BurntSushi/toml"
)

// LogFile is a file that a service writes itself ([[log.file]] in
// service.toml), such as nginx's /var/log/nginx/access.log. The daemon
// rotates it on the same schedule as the service's captured output, with
// the same names, by one of logrotate's two methods for a file someone
// else holds open:
//
//   - copytruncate: copy the file, then truncate it in place. The service
//     needs no cooperation, but the lines it writes between the end of the
//     copy and the truncate are lost.
//   - rename: rename the file, then tell the service to reopen it, by a
//     signal to its main process or by a command (logrotate's postrotate).
//     Nothing is lost; the service must support it.
type LogFile struct {
	// Path is beneath the root, in a directory of its own under var/log
	// ("var/log/nginx/access.log" or "/var/log/nginx/access.log"):
	// var/log itself holds the daemon's files.
	Path string `toml:"path"`
	// Method is "copytruncate" or "rename"; the default is rename when
	// signal or postrotate is set, copytruncate otherwise.
	Method string `toml:"method"`
	// Signal (rename) is sent to the service's main process, as
	// `upkeep signal NAME USR1` does, once the file is renamed.
	Signal string `toml:"signal"`
	// PostRotate (rename) is run by /bin/sh -c as the service's user, with
	// the service's environment and the file's path as $1, once the file
	// is renamed (logrotate's postrotate).
	PostRotate string `toml:"postrotate"`

	// The [log] settings; each one left out is the service's.
	When          *string `toml:"when"`
	Size          *Size   `toml:"size"`
	MaxSize       *Size   `toml:"maxsize"`
	MinSize       *Size   `toml:"minsize"`
	Rotate        *int    `toml:"rotate"`
	Compress      *bool   `toml:"compress"`
	DelayCompress *bool   `toml:"delaycompress"`
	NotIfEmpty    *bool   `toml:"notifempty"`
	MissingOK     *bool   `toml:"missingok"`
	DateExt       *bool   `toml:"dateext"`
	DateFormat    *string `toml:"dateformat"`
	DateYesterday *bool   `toml:"dateyesterday"`
	MaxAge        *int    `toml:"maxage"`

	// Derived by validation.
	Abs     string `toml:"-"` // the file on the host, or the pattern
	Pattern bool   `toml:"-"` // the file name is a glob (*.log): every file that matches is rotated
	Log     Log    `toml:"-"` // the settings in force
}

// Methods of rotating a LogFile.
const (
	CopyTruncate = "copytruncate"
	Rename       = "rename"
)

// LogFileDir is the directory declared files live beneath, relative to
// the root.
const LogFileDir = paths.LogDir

// decodeLogFiles reads the [[log.file]] entries of a service.toml (the
// decoder of Service leaves them: Log stays a comparable value), checks
// them, resolves their paths under root and works out the settings in
// force for each, from l, the service's [log], already checked. add
// reports a problem at a key of [log] ("file[0].path", …).
func decodeLogFiles(root string, data []byte, l Log, add func(key, format string, args ...any)) []LogFile {
	var doc struct {
		Log struct {
			Files []LogFile `toml:"file"`
		} `toml:"log"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	if err != nil {
		// Parse has decoded the same text into Service: only a type
		// mismatch inside [[log.file]] gets here.
		add("file", "%v", strings.TrimPrefix(err.Error(), "toml: "))
		return nil
	}
	for _, k := range md.Undecoded() {
		if isLogFileKey(k) {
			add(strings.TrimPrefix(k.String(), "log."), "unknown key")
		}
	}
	checkLogFiles(root, doc.Log.Files, l, add)
	return doc.Log.Files
}

// checkLogFiles checks declared files, resolves their paths under root
// and works out the settings in force for each from l, the service's
// [log].
func checkLogFiles(root string, files []LogFile, l Log, add func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for i := range files {
		f := &files[i]
		at := func(key, format string, args ...any) {
			add(fmt.Sprintf("file[%d].%s", i, key), format, args...)
		}
		rel, pattern, err := LogFilePath(f.Path)
		f.Pattern = pattern
		if err != nil {
			at("path", "%v", err)
		} else if seen[rel] {
			at("path", "%q is declared twice", f.Path)
		}
		seen[rel] = true
		f.Abs = filepath.Join(root, rel)
		switch {
		case f.Method == "" && (f.Signal != "" || f.PostRotate != ""):
			f.Method = Rename
		case f.Method == "":
			f.Method = CopyTruncate
		}
		switch f.Method {
		case Rename:
			if f.Signal == "" && f.PostRotate == "" {
				at("method", "rename needs signal or postrotate, to make the service open the file again")
			}
			if f.Signal != "" && f.PostRotate != "" {
				at("signal", "set signal or postrotate, not both")
			}
		case CopyTruncate:
			if f.Signal != "" || f.PostRotate != "" {
				at("method", "copytruncate has no use for signal or postrotate (rename does)")
			}
		default:
			at("method", "%q is not one of copytruncate, rename", f.Method)
		}
		if f.Signal != "" {
			if _, err := ParseSignal(f.Signal); err != nil {
				at("signal", "%v", err)
			}
		}
		if strings.IndexByte(f.PostRotate, 0) >= 0 {
			at("postrotate", "contains a NUL byte")
		}
		f.Log = f.merged(l)
		f.Log.check(at)
		// A renamed file is written until the service has reopened
		// it: it must not be compressed before the next rotation.
		if f.Method == Rename && f.Log.Compress {
			f.Log.DelayCompress = true
		}
	}
}

// isLogFileKey reports whether k is inside a [[log.file]].
func isLogFileKey(k toml.Key) bool { return len(k) >= 2 && k[0] == "log" && k[1] == "file" }

// merged is the service's [log] with the file's own settings on top.
func (f *LogFile) merged(l Log) Log {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.When, f.When)
	set(&l.DateFormat, f.DateFormat)
	if f.Size != nil || f.MaxSize != nil {
		l.Size, l.MaxSize = 0, 0 // the file's own criterion, not half the service's
	}
	for _, s := range []struct {
		dst *Size
		v   *Size
	}{{&l.Size, f.Size}, {&l.MaxSize, f.MaxSize}, {&l.MinSize, f.MinSize}} {
		if s.v != nil {
			*s.dst = *s.v
		}
	}
	for _, b := range []struct {
		dst *bool
		v   *bool
	}{{&l.Compress, f.Compress}, {&l.DelayCompress, f.DelayCompress}, {&l.NotIfEmpty, f.NotIfEmpty},
		{&l.MissingOK, f.MissingOK}, {&l.DateExt, f.DateExt}, {&l.DateYesterday, f.DateYesterday}} {
		if b.v != nil {
			*b.dst = *b.v
		}
	}
	if f.Rotate != nil {
		l.Rotate = *f.Rotate
	}
	if f.MaxAge != nil {
		l.MaxAge = *f.MaxAge
	}
	return l
}

// LogFilePath checks a declared path and returns it relative to the root:
// beneath var/log, in a directory of its own, no "..". Its file name may
// be a glob, as in logrotate (/var/log/nginx/*.log: *, ? and [...] of
// path.Match); its directories may not.
func LogFilePath(p string) (rel string, pattern bool, err error) {
	t := strings.Trim(p, "/")
	if t == "" || strings.ContainsAny(t, "\x00\n") {
		return "", false, fmt.Errorf("%q is not a path beneath the root", p)
	}
	for _, c := range strings.Split(t, "/") {
		if c == ".." {
			return "", false, fmt.Errorf("%q has a .. component", p)
		}
	}
	t = path.Clean(t)
	rest, ok := strings.CutPrefix(t, LogFileDir+"/")
	if !ok {
		return "", false, fmt.Errorf("%q is not beneath /%s", p, LogFileDir)
	}
	if !strings.Contains(rest, "/") {
		return "", false, fmt.Errorf("%q is directly in /%s, which holds the daemon's own files: put it in a directory of its own, as /var/log/nginx/access.log", p, LogFileDir)
	}
	dir, name := path.Split(t)
	switch {
	case strings.ContainsAny(dir, "*?[\\"):
		return "", false, fmt.Errorf("%q: only the file name may be a pattern, as in /var/log/nginx/*.log", p)
	case strings.ContainsRune(name, '\\'):
		return "", false, fmt.Errorf("%q: a backslash in a file name is not supported", p)
	case !strings.ContainsAny(name, "*?["):
		return t, false, nil
	}
	if _, err := path.Match(name, ""); err != nil {
		return "", false, fmt.Errorf("%q: the file name is not a valid pattern (*, ? and [...] as in logrotate)", p)
	}
	return t, true, nil
}
