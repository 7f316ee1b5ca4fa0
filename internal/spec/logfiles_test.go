package spec

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseLogFiles(t *testing.T) {
	s, ps := parse(`command = ["/usr/sbin/nginx"]
[log]
when = "daily"
rotate = 14

[[log.file]]
path = "var/log/nginx/access.log"
signal = "USR1"

[[log.file]]
path = "/var/log/nginx/error.log"
method = "copytruncate"
when = "weekly"
size = "10M"
rotate = 4
compress = false

[[log.file]]
path = "var/log/app/x.log"
postrotate = "kill -HUP $(cat /run/app.pid)"
`)
	if s == nil || len(ps) > 0 {
		t.Fatalf("Parse: %v", ps)
	}
	f := s.LogFiles
	if len(f) != 3 {
		t.Fatalf("%d files", len(f))
	}
	service := s.Log
	access := service // signal: rename, and the service's settings
	if f[0].Method != Rename || f[0].Abs != testRoot+"/var/log/nginx/access.log" || !reflect.DeepEqual(f[0].Log, access) {
		t.Errorf("access.log: %+v", f[0])
	}
	errLog := service
	errLog.When, errLog.Size, errLog.Rotate, errLog.Compress = Weekly, 10<<20, 4, false
	if f[1].Method != CopyTruncate || f[1].Abs != testRoot+"/var/log/nginx/error.log" || !reflect.DeepEqual(f[1].Log, errLog) {
		t.Errorf("error.log: %+v\nwant %+v", f[1].Log, errLog)
	}
	if f[2].Method != Rename || f[2].PostRotate == "" {
		t.Errorf("x.log: %+v", f[2])
	}
	if s.Log.When != Daily || s.Log.Rotate != 14 {
		t.Errorf("the service's own [log] changed: %+v", s.Log)
	}

	// rename keeps the newest rotated file plain, whatever the service's
	// delaycompress: the service writes to it until it has reopened.
	s, ps = parse("command = [\"/bin/true\"]\n[log]\ndelaycompress = false\n[[log.file]]\npath = \"var/log/a/b.log\"\nsignal = \"HUP\"\n[[log.file]]\npath = \"var/log/a/c.log\"\n")
	if s == nil || len(ps) > 0 {
		t.Fatalf("Parse: %v", ps)
	}
	if !s.LogFiles[0].Log.DelayCompress || s.LogFiles[1].Log.DelayCompress {
		t.Errorf("delaycompress: rename %v, copytruncate %v", s.LogFiles[0].Log.DelayCompress, s.LogFiles[1].Log.DelayCompress)
	}
}

// A file name may be a pattern, as logrotate's (/var/log/nginx/*.log).
func TestParseLogFilePattern(t *testing.T) {
	s, ps := parse("command = [\"/bin/true\"]\n[[log.file]]\npath = \"/var/log/nginx/*.log\"\n[[log.file]]\npath = \"var/log/nginx/error.log\"\n")
	if s == nil {
		t.Fatal(ps)
	}
	if f := s.LogFiles[0]; !f.Pattern || f.Abs != filepath.Join(testRoot, "var/log/nginx/*.log") {
		t.Errorf("pattern: %+v", f)
	}
	if s.LogFiles[1].Pattern {
		t.Error("a plain path taken for a pattern")
	}
}

func TestParseLogFileProblems(t *testing.T) {
	const head = "command = [\"/bin/true\"]\n[[log.file]]\n"
	for _, c := range []struct{ body, want string }{
		{`path = "etc/passwd"`, `3:1: log.file[0].path: "etc/passwd" is not beneath /var/log`},
		{`path = "var/log/../../etc/shadow"`, `3:1: log.file[0].path: "var/log/../../etc/shadow" has a .. component`},
		{`path = "/var/log/app.log"`, `3:1: log.file[0].path: "/var/log/app.log" is directly in /var/log, which holds the daemon's own files: put it in a directory of its own, as /var/log/nginx/access.log`},
		{`path = ""`, `3:1: log.file[0].path: "" is not a path beneath the root`},
		{"path = \"var/log/a/b.log\"\nmethod = \"rename\"", `4:1: log.file[0].method: rename needs signal or postrotate, to make the service open the file again`},
		{"path = \"var/log/a/b.log\"\nmethod = \"move\"", `4:1: log.file[0].method: "move" is not one of copytruncate, rename`},
		{"path = \"var/log/a/b.log\"\nmethod = \"copytruncate\"\nsignal = \"USR1\"", `4:1: log.file[0].method: copytruncate has no use for signal or postrotate (rename does)`},
		{"path = \"var/log/a/b.log\"\nsignal = \"USR1\"\npostrotate = \"true\"", `4:1: log.file[0].signal: set signal or postrotate, not both`},
		{"path = \"var/log/a/b.log\"\nsignal = \"BOGUS\"", `4:1: log.file[0].signal: unknown signal "BOGUS"`},
		{"path = \"var/log/a/b.log\"\nwhen = \"often\"", `4:1: log.file[0].when: "often" is not one of hourly, daily, weekly, monthly, yearly, never`},
		{"path = \"var/log/a/b.log\"\nrotate = -3", `4:1: log.file[0].rotate: must be -1 (keep all), 0 (keep none) or a count`},
		{"path = \"var/log/a/b.log\"\nfrequency = 1", `4:1: log.file.frequency: unknown key`},
		{"path = \"var/log/a/b.log\"\n[[log.file]]\npath = \"/var/log/a/b.log\"", `5:1: log.file[1].path: "/var/log/a/b.log" is declared twice`},
		{`path = "/var/log/*/access.log"`, `3:1: log.file[0].path: "/var/log/*/access.log": only the file name may be a pattern, as in /var/log/nginx/*.log`},
		{`path = "/var/log/web/[a.log"`, `3:1: log.file[0].path: "/var/log/web/[a.log": the file name is not a valid pattern (*, ? and [...] as in logrotate)`},
		{`path = '/var/log/web/a\*.log'`, `3:1: log.file[0].path: "/var/log/web/a\\*.log": a backslash in a file name is not supported`},
	} {
		_, ps := parse(head + c.body)
		got := strings.Join(positions(t, testFile, ps), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("%q:\ngot  %s\nwant %s", c.body, got, c.want)
		}
	}
}
