package supervise

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// host is a temp root with a daemon that tests drive in-process. Nothing
// here may use os/exec: the daemon's reaper owns wait4 for the test binary.
type host struct {
	t     *testing.T
	root  string
	guard func(*spec.Service) error // the daemon's start guard, if set before start
	glob  time.Duration             // the daemon's globEvery, if set before start
	d     *Daemon
	stop  context.CancelFunc
	done  chan struct{}
	// runErr is what Run returned; a ShutdownError (a service killed at
	// the end of the test) is left to the tests that look for it.
	runErr error
}

func newHost(t *testing.T) *host {
	t.Helper()
	root := t.TempDir()
	// Let services that run as another user into the tree: t.TempDir makes
	// root and its parent 0700 (the parent of those is /tmp; leave it be).
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Dir(root), 0o755)
	return &host{t: t, root: root}
}

func (h *host) write(name, body string) {
	h.t.Helper()
	dir := filepath.Join(h.root, "var", "www", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "service.toml"), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) start() {
	h.t.Helper()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	d, err := New(h.root, slog.New(slog.NewTextHandler(out, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	if h.guard != nil {
		d.SetStartGuard(h.guard)
	}
	if h.glob > 0 {
		d.globEvery = h.glob
	}
	if err := d.Load(); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.stop, h.done = d, cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.runErr = d.Run(ctx)
		if err := h.runErr; err != nil && !errors.As(err, new(*ShutdownError)) {
			h.t.Error(err)
		}
	}()
	h.t.Cleanup(h.shutdown)
}

func (h *host) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.t.Error("daemon did not shut down")
	}
	h.stop = nil
}

func (h *host) status(name string) api.Status {
	h.t.Helper()
	st, err := h.d.Status([]string{name})
	if err != nil {
		h.t.Fatal(err)
	}
	return st[0]
}

// eventually polls cond until it holds or the deadline passes.
func (h *host) eventually(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *host) waitState(name string, want api.State) api.Status {
	h.t.Helper()
	var st api.Status
	h.eventually(10*time.Second, name+" to be "+want.String(), func() bool {
		st = h.status(name)
		return st.State == want
	})
	return st
}

func (h *host) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(h.root, "var", "log", name))
	return string(b)
}

// groupMembers lists live (non-zombie) processes in process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// spawnVictim starts a process that is not a service, through the reaper.
func spawnVictim(t *testing.T) *proc.Process {
	t.Helper()
	p, err := proc.NewReaper().Spawn(proc.Attr{Argv: []string{"/bin/sleep", "1000"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(p.Pid, syscall.SIGKILL); <-p.Done() })
	return p
}
