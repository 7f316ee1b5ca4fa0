package compat

import (
	"path/filepath"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

// TestLogrotateDFile: the one builder of logrotate.d files, as upkeep
// logrotate and the systemd export call it.
func TestLogrotateDFile(t *testing.T) {
	const root = "/srv/root"
	def := `command = ["/bin/true"]
[log]
delaycompress = false
[[log.file]]
path = "/var/log/api-x/access.log"
method = "rename"
signal = "USR1"
[[log.file]]
path = "/var/log/api-x/never.log"
method = "copytruncate"
when = "never"
`
	s, ps := spec.Parse(root, filepath.Join(root, "var/www/api-x"), []byte(def))
	if len(ps.Errors()) > 0 {
		t.Fatal(ps)
	}
	host := func(abs string) string { rel, _ := filepath.Rel(root, abs); return "/" + rel }
	sig := func(lf spec.LogFile) string { return "send " + lf.Signal }
	for _, held := range []bool{false, true} {
		text, skipped, err := LogrotateD{HostPath: host, Signal: sig, HeldOpen: held}.File(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "/var/log/api-x/never.log: ") {
			t.Errorf("skipped %v, want never.log", skipped)
		}
		st, ps := ParseStanzas("gen", []byte(text))
		if len(ps) > 0 || len(st) != 2 {
			t.Fatalf("%s: %d stanzas, %v", text, len(st), ps)
		}
		if want := []string{"/var/log/api-x.log", "/var/log/api-x.error.log"}; strings.Join(st[0].Paths, " ") != strings.Join(want, " ") {
			t.Errorf("captured output at %q", st[0].Paths)
		}
		// compress without delaycompress is copytruncate anyway; a
		// writer holding the file open needs it in every case, tested
		// with the defaults below.
		if !st[0].CopyTruncate {
			t.Errorf("held=%v: no copytruncate:\n%s", held, text)
		}
		if st[1].Paths[0] != "/var/log/api-x/access.log" || !strings.Contains(st[1].PostRotate, "send USR1") {
			t.Errorf("declared file: %+v", st[1])
		}
	}
	s.Log, s.LogFiles = spec.DefaultLog(), nil
	for _, held := range []bool{false, true} {
		text, _, err := LogrotateD{HostPath: host, Signal: sig, HeldOpen: held}.File(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(text, "copytruncate"); got != map[bool]int{false: 0, true: 1}[held] {
			t.Errorf("held=%v: %d copytruncate in\n%s", held, got, text)
		}
	}
	s.Log = spec.Log{When: spec.Untimed}
	if _, _, err := (LogrotateD{HostPath: host, Signal: sig}).File(s); err == nil {
		t.Error("a log never rotated has a logrotate.d file")
	}
}

// TestSections: --read prints each stanza as a [log] that reads back as
// the stanza's, with what it leaves out as comments.
func TestSections(t *testing.T) {
	st, ps := ParseStanzas("g", []byte(guideStanza+"/var/log/b.log {\n  weekly\n}\n"))
	if len(ps) > 0 || len(st) != 2 {
		t.Fatal(ps)
	}
	out := Sections("g", st)
	for _, want := range []string{"# /var/log/myapp.log (g:1)\n# no equivalent, left out: line 2: su root\n# copytruncate: not needed",
		"\n\n# /var/log/b.log (g:11)\n[log]\nwhen = \"weekly\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	parts := strings.Split(out, "\n\n")
	for i, p := range parts {
		s, ps := spec.Parse("/srv/root", "/srv/root/var/www/x", []byte("command = [\"/bin/true\"]\n"+p))
		if len(ps) > 0 || s.Log != st[i].Log {
			t.Errorf("%s read back as %+v %v", p, s, ps)
		}
	}
}
