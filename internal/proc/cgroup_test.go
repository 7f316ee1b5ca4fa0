package proc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A service's cgroup: created beneath the daemon's, a process started into
// it from its first instruction (and its child, which left the process
// group) are members, Kill takes them all, Fresh makes it usable again, and
// removing it and the subtree leaves nothing behind.
func TestCgroupLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	cgs, err := OpenCgroups(t.TempDir())
	if err != nil {
		t.Fatalf("no writable cgroup2 as root: %v", err)
	}
	t.Cleanup(func() {
		for _, g := range cgs.Existing() {
			g.Kill()
			waitFor(t, "the cgroup to empty", g.Empty)
			g.Remove()
		}
		cgs.Remove()
	})
	g, err := cgs.Service("www-test")
	if err != nil {
		t.Fatal(err)
	}
	if ex := cgs.Existing(); len(ex) != 1 || ex[0].Name() != "www-test" {
		t.Fatalf("Existing = %v", ex)
	}
	if !g.Empty() {
		t.Fatal("a new cgroup is not empty")
	}
	r := NewReaper()
	// setsid: the child leaves the process group, not the cgroup.
	p, err := r.Start(Cmd{Argv: []string{"sh", "-c", "setsid sleep 100 & exec sleep 100"}, Cgroup: g})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both processes in the cgroup", func() bool { return len(g.Procs()) == 2 })
	if !slices.Contains(g.Procs(), p.Pid) || g.Empty() {
		t.Errorf("procs %v lack the started pid %d", g.Procs(), p.Pid)
	}
	got, err := CgroupOf(p.Pid)
	if err != nil || filepath.Base(got) != "www-test" {
		t.Errorf("CgroupOf(%d) = %q, %v", p.Pid, got, err)
	}
	g.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ex, err := p.Wait(ctx); err != nil || ex.String() != "signal KILL" {
		t.Errorf("after Kill: %s, %v", ex, err)
	}
	waitFor(t, "the cgroup to empty", g.Empty)
	// Killed once, the cgroup is replaced before the next start, which
	// then lives (this kernel SIGKILLs what is cloned into a killed one).
	if err := g.Fresh(); err != nil {
		t.Fatal(err)
	}
	ex, err := r.Run(ctx, Cmd{Argv: []string{"true"}, Cgroup: g})
	if err != nil || !ex.Success() {
		t.Errorf("start after Fresh: %s, %v", ex, err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	cgs.Remove()
	if _, err := os.Stat(cgs.Base); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", cgs.Base, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
