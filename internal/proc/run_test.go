package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Start gives the command its directory, environment and files (nil ones
// on /dev/null); Run returns its exit.
func TestStartAndRun(t *testing.T) {
	r := NewReaper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ex, err := r.Run(context.Background(), Cmd{
		Argv:   []string{"sh", "-c", `pwd; echo "$X"; cat; ls -l /proc/self/fd/2 >&2; exit 3`},
		Dir:    dir,
		Env:    []string{"X=from-env", "PATH=" + DefaultPath},
		Stdout: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Known || ex.String() != "exit 3" {
		t.Errorf("exit = %s", ex)
	}
	b, _ := os.ReadFile(out.Name())
	if got, want := string(b), dir+"\nfrom-env\n"; got != want {
		t.Errorf("stdout %q, want %q (stdin and stderr on /dev/null)", got, want)
	}
	if _, err := r.Run(context.Background(), Cmd{Argv: []string{"true"}, As: Identity{User: "no-such-user-here"}}); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("unknown user: %v", err)
	}
}

// At the end of its context Run kills the whole process group, a child
// that outlives the shell included, and returns the context's error.
func TestRunKillsItsGroupAtTheDeadline(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := NewReaper().Run(ctx, Cmd{Argv: []string{"sh", "-c", `echo $$ > "$1"; sleep 100 & sleep 100`, "run", pidFile}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want the deadline's error", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the command did not start: %v", err)
	}
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for GroupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("group %d still has %v after the kill", pgid, GroupMembers(pgid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A started process gets PATH, the locale and TZ of the daemon, and nothing
// else of it; without a PATH, DefaultPath.
func TestBaseEnv(t *testing.T) {
	t.Setenv("PATH", "/opt/x/bin:/usr/bin")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("UPKEEP_TEST_SECRET", "leak")
	env := strings.Join(BaseEnv(), "\n") + "\n"
	if !strings.Contains(env, "PATH=/opt/x/bin:/usr/bin\n") || !strings.Contains(env, "LANG=C.UTF-8\n") || strings.Contains(env, "SECRET") {
		t.Errorf("BaseEnv:\n%s", env)
	}
	os.Unsetenv("PATH")
	if got := BaseEnv()[0]; got != "PATH="+DefaultPath {
		t.Errorf("without PATH: %s", got)
	}
}
