package proc

import (
	"errors"
	"syscall"

	"github.com/prometheus/procfs"
)

// procFS is opened once: procfs.NewProc would stat /proc on every call.
var procFS, procErr = procfs.NewFS(procfs.DefaultMountPoint)

func newProc(pid int) (procfs.Proc, error) {
	if procErr != nil {
		return procfs.Proc{}, procErr
	}
	return procFS.Proc(pid)
}

// StartTime returns when pid started, in clock ticks since boot. Together
// with the pid it names a process for good: pids are reused, start times of
// a reused pid differ.
func StartTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.starttime, err
}

// Parent returns the parent pid of pid.
func Parent(pid int) (int, error) {
	p, err := newProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return st.PPID, nil
}

// Same reports whether pid is still the process that started at start.
func Same(pid int, start uint64) bool {
	if pid <= 0 || start == 0 {
		return false
	}
	st, err := StartTime(pid)
	return err == nil && st == start
}

// SignalGroup signals every process in the process group pgid. A group that
// is already gone is not an error.
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return errors.New("refusing to signal process group <= 1")
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// GroupAlive reports whether any process is left in the group.
func GroupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// GroupMembers lists the live (not zombie) processes of group pgid by
// scanning /proc: kill(-pgid, 0) also finds zombies that someone else has
// yet to reap.
func GroupMembers(pgid int) []int {
	procs, err := procFS.AllProcs()
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		st, err := p.Stat()
		if err == nil && st.PGRP == pgid && st.State != "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}

// Usage is what a set of processes costs.
type Usage struct {
	CPUSeconds float64
	RSSBytes   uint64
}

// Measure adds up CPU time and resident memory of the given pids; pids that
// vanished meanwhile are skipped.
func Measure(pids []int) Usage {
	var u Usage
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		u.CPUSeconds += float64(st.utime+st.stime) / userHZ
		u.RSSBytes += st.rss * pageSize
	}
	return u
}

// OpenFiles counts the open file descriptors of the given pids. Pids that
// vanished, or whose /proc/<pid>/fd we may not read (another user's process
// when the daemon is not root), are skipped.
func OpenFiles(pids []int) int {
	n := 0
	for _, pid := range pids {
		p, err := newProc(pid)
		if err != nil {
			continue
		}
		if c, err := p.FileDescriptorsLen(); err == nil {
			n += c
		}
	}
	return n
}
