package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

// guideStanza is the guide's /etc/logrotate.d/<service_name>.
const guideStanza = `/var/log/myapp.log {
  su root
  daily
  rotate 7
  delaycompress
  compress
  notifempty
  missingok
  copytruncate
}
`

func TestGuideStanzaIsTheDefault(t *testing.T) {
	st, ps := ParseStanzas("myapp", []byte(guideStanza))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if len(st) != 1 {
		t.Fatalf("%d stanzas, want 1", len(st))
	}
	s := st[0]
	if !reflect.DeepEqual(s.Paths, []string{"/var/log/myapp.log"}) || s.Line != 1 {
		t.Errorf("paths %q at line %d", s.Paths, s.Line)
	}
	if want := spec.Defaults().Log; s.Log != want {
		t.Errorf("log\n%+v\nwant the defaults\n%+v", s.Log, want)
	}
	if !s.CopyTruncate {
		t.Error("copytruncate not seen")
	}
	if want := []string{"line 2: su root"}; !reflect.DeepEqual(s.Ignored, want) {
		t.Errorf("ignored %q, want %q", s.Ignored, want)
	}
}

func TestParseStanzas(t *testing.T) {
	def := logrotateDefaults()
	with := func(f func(*spec.Log)) spec.Log { l := def; f(&l); return l }
	for _, c := range []struct {
		name, text string
		want       []spec.Log
		paths      [][]string
	}{
		{"empty block takes logrotate's defaults", "/a {\n}\n", []spec.Log{def}, [][]string{{"/a"}}},
		{"brace on the next line, two paths, quoted", "\"/var/log/a b.log\" /b\n{\n daily\n}\n",
			[]spec.Log{with(func(l *spec.Log) { l.When, l.Size = spec.Daily, 0 })}, [][]string{{"/var/log/a b.log", "/b"}}},
		{"globals apply to later blocks only", "/a {\n}\ncompress\nrotate 4\n/b {\n weekly\n}\n",
			[]spec.Log{def, with(func(l *spec.Log) { l.When, l.Size, l.Compress, l.Rotate = spec.Weekly, 0, true, 4 })}, nil},
		{"size alone", "/a {\n size 100M\n}", []spec.Log{with(func(l *spec.Log) { l.Size = 100 << 20 })}, nil},
		{"size replaces daily", "/a {\n daily\n size 10k\n}", []spec.Log{with(func(l *spec.Log) { l.Size = 10 << 10 })}, nil},
		{"daily replaces size", "/a {\n size 10k\n daily\n}", []spec.Log{with(func(l *spec.Log) { l.When, l.Size = spec.Daily, 0 })}, nil},
		{"daily with maxsize", "/a {\n maxsize 1G\n daily\n minsize 1\n}",
			[]spec.Log{with(func(l *spec.Log) { l.When, l.Size, l.MinSize = spec.Daily, 1<<30, 1 })}, nil},
		{"scripts are skipped", "/a {\n postrotate\n   kill -HUP `cat /run/x.pid` { }\n endscript\n hourly\n}",
			[]spec.Log{with(func(l *spec.Log) { l.When, l.Size = spec.Hourly, 0 })}, nil},
		{"dateext", "/a {\n dateext\n dateformat -%Y-%m-%d\n dateyesterday\n maxage 30\n}",
			[]spec.Log{with(func(l *spec.Log) { l.DateExt, l.DateFormat, l.DateYesterday, l.MaxAge = true, "-%Y-%m-%d", true, 30 })}, nil},
		{"default dateformat reads as empty", "/a {\n daily\n dateext\n dateformat -%Y%m%d\n}",
			[]spec.Log{with(func(l *spec.Log) { l.When, l.Size, l.DateExt = spec.Daily, 0, true })}, nil},
		{"comments, CRLF, rotate -1", "# c\r\n/a {\r\n  # d\r\n  rotate -1\r\n}\r\n",
			[]spec.Log{with(func(l *spec.Log) { l.Rotate = -1 })}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, ps := ParseStanzas("x", []byte(c.text))
			if len(ps) > 0 {
				t.Fatal(ps)
			}
			if len(st) != len(c.want) {
				t.Fatalf("%d stanzas, want %d", len(st), len(c.want))
			}
			for i := range st {
				if st[i].Log != c.want[i] {
					t.Errorf("stanza %d\n%+v\nwant\n%+v", i, st[i].Log, c.want[i])
				}
				if c.paths != nil && !reflect.DeepEqual(st[i].Paths, c.paths[i]) {
					t.Errorf("stanza %d paths %q, want %q", i, st[i].Paths, c.paths[i])
				}
			}
		})
	}
}

func TestParseStanzasProblems(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"/a {\n rotate x\n}", `x:2:2: rotate: want a count, got "x"`},
		{"/a {\n frobnicate\n}", "x:2:2: frobnicate: unknown directive"},
		{"/a {\n daily 3\n}", "x:2:2: daily: takes 0 argument(s), got 1"},
		{"/a {\n size 12Q\n}", `x:2:2: size: want a size like "200M", got "12Q"`},
		{"/a {\n weekly 3\n}", "x:2:2: weekly: weekly 3: only Sunday (0 or 7) is supported"},
		{"/a {\n compressext .bz2\n}", "x:2:2: compressext: only .gz (gzip) is supported"},
		{"/a {\n dateformat -%Y/%m\n}", `x:2:2: dateformat: dateformat "-%Y/%m" must not hold '/', NUL or a newline`},
		{"/a {\n dateformat -%F\n}", `x:2:2: dateformat: dateformat "-%F": only %Y %m %d %H %M %S %V %s are allowed`},
		{"/a {\n daily\n", `x:1:1: block not closed with "}"`},
		{"}\n", `x:1:1: "}" without a block`},
		{"/a {\n /b {\n}", `x:2:2: a block inside a block`},
		{"/a\ndaily\n", "x:1:1: paths without a block"},
		{"/a {\n postrotate\n  true\n", "x:3:1: postrotate: no endscript before the end"},
		{"/a {\n} x\n", `x:2:1: text after "}"`},
		{"/a {\n su 'root\n}", `x:2:2: unbalanced '`},
	} {
		_, ps := ParseStanzas("x", []byte(c.text))
		if len(ps) == 0 || ps[0].String() != c.want {
			t.Errorf("%q: got %v, want %s", c.text, ps, c.want)
		}
	}
}

// roundTrips are [log] sections that must survive WriteStanza →
// ParseStanzas unchanged.
var roundTrips = []spec.Log{
	spec.DefaultLog(),
	{When: spec.Hourly, Size: 64 << 20, MinSize: 1, Rotate: 24, Compress: true, DateExt: true},
	{When: spec.Weekly, Rotate: 0, NotIfEmpty: true, MaxAge: 30},
	{When: spec.Monthly, Rotate: -1, MissingOK: true, DateExt: true, DateFormat: "-%Y%m%d-%s", DateYesterday: true},
	{When: spec.Yearly, Rotate: 3, Compress: true, DelayCompress: true},
	{When: spec.Untimed, Size: 100 << 20, Rotate: 5, Compress: true},
	{When: spec.Untimed, Size: 12345, Rotate: 1, DateFormat: "-%s"},
}

func TestLogrotateRoundTrip(t *testing.T) {
	for _, l := range roundTrips {
		text, err := WriteStanza(l, []string{"/var/log/api-x.log", "/var/log/api-x.error.log"})
		if err != nil {
			t.Fatal(err)
		}
		st, ps := ParseStanzas("gen", []byte(text))
		if len(ps) > 0 || len(st) != 1 {
			t.Fatalf("%s: %v", text, ps)
		}
		if st[0].Log != l {
			t.Errorf("%s read back as\n%+v\nwant\n%+v", text, st[0].Log, l)
		}
		if st[0].CopyTruncate != (l.Compress && !l.DelayCompress) {
			t.Errorf("%s: copytruncate %v", text, st[0].CopyTruncate)
		}
	}
	if _, err := WriteStanza(spec.Log{When: spec.Untimed}, []string{"/a"}); err == nil {
		t.Error("a log never rotated has a stanza")
	}
}

// TestLogrotateAcceptsGenerated runs Debian's logrotate in debug mode (it
// only prints what it would do) on every generated stanza.
func TestLogrotateAcceptsGenerated(t *testing.T) {
	bin, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate is not installed (apt-get install logrotate)")
	}
	dir := t.TempDir()
	for i, l := range roundTrips {
		log := filepath.Join(dir, "api-x.log")
		if err := os.WriteFile(log, []byte("a line\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		text, err := WriteStanza(l, []string{log})
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "api-x")
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-d", "-f", "-s", filepath.Join(dir, "state"), conf).CombinedOutput()
		if err != nil || strings.Contains(string(out), "error:") {
			t.Errorf("case %d: logrotate -d: %v\n%s\n%s", i, err, text, out)
		}
	}
}

// FuzzStanzas feeds ParseStanzas arbitrary configurations. Problems are
// placed inside the text; what it accepts writes back to a stanza that
// reads the same. Seeds: testdata/fuzz/FuzzStanzas, the guide's first.
func FuzzStanzas(f *testing.F) {
	f.Add([]byte(guideStanza))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ps := ParseStanzas("f", data)
		lines := strings.Split(string(data), "\n")
		for _, p := range ps {
			if p.Line < 0 || p.Line > len(lines) || p.Msg == "" {
				t.Fatalf("problem %q outside the text", p)
			}
			if p.Line > 0 && (p.Col < 1 || p.Col > len(lines[p.Line-1])+1) {
				t.Fatalf("problem %q: column outside line %q", p, lines[p.Line-1])
			}
		}
		for _, s := range st {
			// What a stanza reads as must be a valid [log]: service.toml
			// reads its section back unchanged, with no problem.
			l := s.Log
			got, bad := spec.Parse("/srv/root", "/srv/root/var/www/f", []byte("command = [\"/bin/true\"]\n"+l.Section()))
			if len(bad) > 0 || got.Log != l {
				t.Fatalf("stanza %+v does not validate: %v", s.Log, bad)
			}
			if l.When == spec.Untimed && l.Size == 0 {
				continue // size 0: logrotate rotates on every run; [log] never
			}
			text, err := WriteStanza(l, []string{"/var/log/f.log"})
			if err != nil {
				t.Fatal(err)
			}
			again, ps := ParseStanzas("again", []byte(text))
			if len(ps) > 0 || len(again) != 1 || again[0].Log != l {
				t.Fatalf("%+v wrote\n%s\nread back %+v %v", l, text, again, ps)
			}
		}
	})
}
