package supervise

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/proc"
)

// TestOwner: Owner names the service of its main process, of a child in
// its process group, and of a child that left for a session of its own
// (setsid); nobody else's process, the daemon's included, has an owner.
// Once with the daemon's cgroups (as root where cgroup2 is writable) and
// once without, on process groups, sessions and ancestry alone.
func TestOwner(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		name := map[bool]string{true: "cgroups", false: "process groups"}[cgroups]
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			pids := filepath.Join(h.root, "pids")
			h.write("service-a", `script = "sleep 1000 & echo $! > `+pids+`; setsid sleep 1000 & echo $! >> `+pids+`; (setsid sleep 1000 & echo $! >> `+pids+`); wait"`+fast)
			h.write("service-b", `command = ["/bin/sleep", "1000"]`+fast)
			h.startWith(func(d *Daemon) {
				if !cgroups {
					if d.cgroups != nil {
						cg := d.cgroups
						t.Cleanup(cg.Remove)
					}
					d.cgroups = nil
				}
			})
			if cgroups && h.d.cgroups == nil {
				if os.Geteuid() == 0 {
					t.Fatal("no cgroups as root: a writable cgroup2 hierarchy is a given on CI (.ci/run)")
				}
				t.Skip("cgroups unavailable here (needs root and a writable cgroup2 hierarchy)")
			}
			if err := h.d.Start(context.Background(), []string{"service-a", "service-b"}, true); err != nil {
				t.Fatal(err)
			}
			var kids []int
			h.eventually(5*time.Second, "both children's pids", func() bool {
				b, _ := os.ReadFile(pids)
				kids = kids[:0]
				for _, f := range strings.Fields(string(b)) {
					n, _ := strconv.Atoi(f)
					kids = append(kids, n)
				}
				return len(kids) == 3
			})
			// Without cgroups a stop does not reach the orphan: kill them all.
			t.Cleanup(func() {
				for _, k := range kids {
					_ = syscall.Kill(k, syscall.SIGKILL)
				}
			})
			h.eventually(5*time.Second, "the setsid child in a session of its own", func() bool {
				_, sid, err := proc.GroupAndSession(kids[1])
				return err == nil && sid == kids[1]
			})
			// The third left its session and lost its parent (reparented to
			// the daemon, the subreaper): only its cgroup still tells.
			// Both: its subshell can exit (reparenting it) before its
			// setsid has run, while it is still in the service's session.
			h.eventually(5*time.Second, "the orphan reparented to the daemon, in a session of its own", func() bool {
				ppid, err := proc.Parent(kids[2])
				_, sid, serr := proc.GroupAndSession(kids[2])
				return err == nil && ppid == os.Getpid() && serr == nil && sid == kids[2]
			})
			orphan, err := h.d.Owner(kids[2])
			if cgroups && orphan != "service-a" {
				t.Errorf("Owner(orphan %d) = %q %v, want service-a (its cgroup)", kids[2], orphan, err)
			}
			if !cgroups && (orphan != "" || err != nil) {
				t.Errorf("Owner(orphan %d) = %q %v: without cgroups nothing should tell (the documented limit)", kids[2], orphan, err)
			}
			for _, pid := range append([]int{h.status("service-a").Pid}, kids[:2]...) {
				if got, err := h.d.Owner(pid); err != nil || got != "service-a" {
					t.Errorf("Owner(%d) = %q %v, want service-a", pid, got, err)
				}
			}
			if got, err := h.d.Owner(h.status("service-b").Pid); got != "service-b" || err != nil {
				t.Errorf("Owner(service-b's pid) = %q %v", got, err)
			}
			other, err := proc.NewReaper().Spawn(proc.Attr{Argv: []string{"/bin/sleep", "1000"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = proc.SignalGroup(other.Pid, syscall.SIGKILL); <-other.Done() }()
			for _, pid := range []int{os.Getpid(), other.Pid, 1} {
				if got, err := h.d.Owner(pid); got != "" || err != nil {
					t.Errorf("Owner(%d) = %q %v, want none", pid, got, err)
				}
			}
			// Not knowing is an error, never "none": a caller must refuse.
			gone, err := proc.NewReaper().Spawn(proc.Attr{Argv: []string{"/bin/true"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
			if err != nil {
				t.Fatal(err)
			}
			<-gone.Done()
			for _, pid := range []int{gone.Pid, 0, -1} {
				if got, err := h.d.Owner(pid); err == nil {
					t.Errorf("Owner(%d) = %q, nil; want an error (no such process)", pid, got)
				}
			}
		})
	}
}

// startWith is start with a chance to change the daemon before it loads.
func (h *host) startWith(f func(*Daemon)) {
	h.t.Helper()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	d, err := New(h.root, slog.New(slog.NewTextHandler(out, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	f(d)
	if err := d.Load(); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.stop, h.done = d, cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		_ = d.Run(ctx)
	}()
	h.t.Cleanup(h.shutdown)
}
