package health

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// An exec check and a hook run as the identity they are given (the
// service's), not as the daemon: read from inside, as root running them as
// nobody, with the privileges a service of nobody gets (no_new_privs, no
// capabilities).
func TestExecRunsAsTheServicesUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a check as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody (the tests run as root on Debian, which has it): %v", err)
	}
	dir := t.TempDir()
	// nobody may write here, and only here (t.TempDir's parent is 0700).
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ex := Exec{Reaper: proc.NewReaper(), As: proc.Identity{User: "nobody", Privs: &proc.Privileges{}}, Dir: dir}
	report := `id -u > "$1/$2.uid"; grep -E '^(NoNewPrivs|CapEff):' /proc/self/status > "$1/$2.status"; pwd > "$1/$2.pwd"`
	c := spec.Check{Name: "who", Type: "exec", Command: []string{"/bin/sh", "-c", report, "check", dir, "check"}}
	if r := probe(c, nil, NewProbeState("www-test", ex)); !r.OK {
		t.Fatalf("check: %+v", r)
	}
	ev := Event{Kind: Failed, Check: &c, Result: Result{Check: "who", Message: "failed"}}
	if err := RunHook(context.Background(), ex, []string{"/bin/sh", "-c", report, "hook", dir, "hook"}, "www-test", ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"check", "hook"} {
		uid, err := os.ReadFile(filepath.Join(dir, who+".uid"))
		if err != nil {
			t.Fatalf("%s wrote no uid: %v", who, err)
		}
		if got := strings.TrimSpace(string(uid)); got != nobody.Uid {
			t.Errorf("%s ran as uid %s, want nobody's %s", who, got, nobody.Uid)
		}
		status, _ := os.ReadFile(filepath.Join(dir, who+".status"))
		if !strings.Contains(string(status), "NoNewPrivs:\t1") || !strings.Contains(string(status), "CapEff:\t0000000000000000") {
			t.Errorf("%s did not get a service's privileges:\n%s", who, status)
		}
		if pwd, _ := os.ReadFile(filepath.Join(dir, who+".pwd")); strings.TrimSpace(string(pwd)) != dir {
			t.Errorf("%s ran in %q, want %s", who, pwd, dir)
		}
	}
	// An unknown user fails the check with the lookup's error, running nothing.
	bad := Exec{Reaper: ex.Reaper, As: proc.Identity{User: "no-such-user-here"}}
	if r := probe(c, nil, NewProbeState("www-test", bad)); r.OK || !strings.Contains(r.Message, "no such user") {
		t.Errorf("unknown user: %+v", r)
	}
}
