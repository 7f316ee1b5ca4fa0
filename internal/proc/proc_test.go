package proc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestPIDFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := WritePID(path, 4242); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "4242\n" {
		t.Errorf("pid file %q, want killproc's format", b)
	}
	if pid, err := ReadPID(path); err != nil || pid != 4242 {
		t.Errorf("ReadPID = %d, %v", pid, err)
	}
	for _, bad := range []string{"", "abc\n", "-3\n", "0"} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := ReadPID(path); err == nil {
			t.Errorf("ReadPID(%q) accepted", bad)
		}
	}
}

func TestSpawnReapAndStartTime(t *testing.T) {
	p, err := NewReaper().Spawn(Attr{Argv: []string{"sh", "-c", "exit 7"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	ex := p.Exit()
	if !ex.Known || ex.Status.ExitStatus() != 7 || ex.String() != "exit 7" || ex.Success() {
		t.Errorf("exit = %+v (%s)", ex, ex)
	}
	q, err := NewReaper().Spawn(Attr{Argv: []string{"/bin/sleep", "100"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !Same(q.Pid, q.StartTime) || Same(q.Pid, q.StartTime+1) {
		t.Error("Same does not tell the process by its start time")
	}
	if pg, _ := syscall.Getpgid(q.Pid); pg != q.Pid || !GroupAlive(q.Pid) {
		t.Errorf("child not leading its own group: pgid %d", pg)
	}
	SignalGroup(q.Pid, syscall.SIGKILL)
	if ex := q.Exit(); ex.String() != "signal KILL" {
		t.Errorf("exit %s", ex)
	}
	if Same(q.Pid, q.StartTime) {
		t.Error("a reaped process is still the same")
	}
	if _, err := NewReaper().Spawn(Attr{Argv: []string{"no-such-program-anywhere"}, CgroupFD: -1}); err == nil {
		t.Error("spawned a program that does not exist")
	}
}

func TestLookPathUsesTheChildsPATH(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	got, err := LookPath("tool", "/", []string{"PATH=/nonexistent:" + dir})
	if err != nil || got != exe {
		t.Errorf("LookPath = %q, %v", got, err)
	}
	if _, err := LookPath("tool", "/", []string{"PATH=/nonexistent"}); err == nil {
		t.Error("found tool outside PATH")
	}
}

func TestWatchFollowsANonChild(t *testing.T) {
	p, err := NewReaper().Spawn(Attr{Argv: []string{"/bin/sleep", "100"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReaper().Watch(p.Pid, p.StartTime+1); err == nil {
		t.Error("Watch accepted a wrong start time")
	}
	w, err := NewReaper().Watch(p.Pid, p.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(p.Pid, syscall.SIGTERM)
	// A broken Watch would block here for ever: a deadline instead.
	deadline := time.After(10 * time.Second)
	for _, q := range []*Process{w, p} {
		select {
		case <-q.Done():
		case <-deadline:
			t.Fatalf("pid %d killed, but not seen to exit within 10s", q.Pid)
		}
	}
	// Our own child: both the watcher and the spawner learn the real status.
	for _, q := range []*Process{w, p} {
		if ex := q.Exit(); !ex.Known || ex.String() != "signal TERM" {
			t.Errorf("exit of pid %d = %s, want signal TERM", q.Pid, ex)
		}
	}
}
