package compat

import (
	"strings"
	"testing"

	"upkeep/internal/spec"
)

// importOne imports one file and returns the one service's definition as
// spec.Parse reads the written service.toml back, and the notes.
func importOne(t *testing.T, name, text string) (*spec.Service, string) {
	t.Helper()
	r := Import([]Input{{Path: "/etc/" + name, Data: []byte(text)}}, osOptions)
	if len(r.Services) != 1 {
		t.Fatalf("%d services from %s", len(r.Services), name)
	}
	checkValid(t, r)
	d := r.Services[0]
	s, ps := spec.Parse("/", "/var/www/"+d.Name, d.TOML())
	if ps != nil {
		t.Fatalf("the written service.toml does not parse: %v\n%s", ps, d.TOML())
	}
	var notes []string
	for _, n := range append(r.Notes, d.Notes()...) {
		notes = append(notes, n.String())
	}
	return s, strings.Join(notes, "\n")
}

func TestImportUpstartUmaskAndLimits(t *testing.T) {
	s, notes := importOne(t, "init/api-x.conf", `exec /bin/sleep 1000
umask 027
limit nofile 4096 8192
limit core unlimited unlimited
limit nproc 10 5
limit as 1 2
`)
	if s.Umask != "0027" {
		t.Errorf("umask %q, want 0027", s.Umask)
	}
	if l := s.Limits.Nofile; l == nil || l.Soft != 4096 || l.Hard != 8192 {
		t.Errorf("limits.nofile %+v, want 4096:8192", l)
	}
	if l := s.Limits.Core; l == nil || l.Soft != spec.Infinity || l.Hard != spec.Infinity {
		t.Errorf("limits.core %+v, want infinity", l)
	}
	if s.Limits.Nproc != nil {
		t.Errorf("limits.nproc %+v from a soft limit above the hard one", s.Limits.Nproc)
	}
	for _, want := range []string{":5: ", "soft ≤ hard", ":6: ", "nofile, nproc and core only"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	_, notes = importOne(t, "init/api-y.conf", "exec /bin/sleep 1000\numask 999\nlimit nofile 10\n")
	for _, want := range []string{":2: ", "not an octal umask", ":3: ", "want limit RESOURCE SOFT HARD"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestImportSupervisordUmask(t *testing.T) {
	s, _ := importOne(t, "supervisor/conf.d/x.conf", "[program:api-x]\ncommand=/bin/sleep 1000\numask=022\n")
	if s.Umask != "0022" {
		t.Errorf("umask %q, want 0022", s.Umask)
	}
	s, notes := importOne(t, "supervisor/conf.d/y.conf", "[program:api-y]\ncommand=/bin/sleep 1000\numask=0077\n")
	if s.Umask != "0077" || notes != "" && strings.Contains(notes, "umask") {
		t.Errorf("umask %q, notes %q", s.Umask, notes)
	}
	s, notes = importOne(t, "supervisor/conf.d/z.conf", "[program:api-z]\ncommand=/bin/sleep 1000\numask=0o22\n")
	if s.Umask != "0022" && !strings.Contains(notes, "not an octal umask") {
		t.Errorf("a bad umask: %q, notes %q", s.Umask, notes)
	}
	if !strings.Contains(notes, ":3: ") || !strings.Contains(notes, "not an octal umask") {
		t.Errorf("notes for umask=0o22 lack the line and the reason:\n%s", notes)
	}
}
