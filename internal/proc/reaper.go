package proc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended.
type Exit struct {
	Status  syscall.WaitStatus
	Known   bool  // false when the process was not our child (status unseen)
	Err     error // set when the process could not be started at all
	Reaped  time.Time
	Process int
}

// Success reports a clean exit with status 0.
func (e Exit) Success() bool {
	return e.Err == nil && e.Known && e.Status.Exited() && e.Status.ExitStatus() == 0
}

func (e Exit) String() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case !e.Known:
		return "exited (status unknown)"
	case e.Status.Signaled():
		return "signal " + strings.TrimPrefix(unix.SignalName(e.Status.Signal()), "SIG")
	default:
		return fmt.Sprintf("exit %d", e.Status.ExitStatus())
	}
}

// Process is a started process that the reaper watches.
type Process struct {
	Pid       int
	StartTime uint64 // clock ticks since boot, from /proc/<pid>/stat
	done      chan struct{}
	once      sync.Once
	exit      Exit
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit is valid once Done is closed.
func (p *Process) Exit() Exit { <-p.done; return p.exit }

func (p *Process) finish(e Exit) {
	p.once.Do(func() {
		e.Process = p.Pid
		p.exit = e
		close(p.done)
	})
}

// Reaper starts processes and learns how they ended. Because the process
// has one set of children and wait4(-1) reaps all of them, every Reaper of
// a process shares one table of the processes waited for and one SIGCHLD
// loop; nothing else in the process may use os/exec's Wait: start
// processes through Start (or Spawn) instead.
type Reaper struct{ *children }

type children struct {
	mu      sync.Mutex
	waiting map[int][]*Process
}

// processChildren is the process's one table, with its SIGCHLD loop
// started on first use: it makes the process a child subreaper, so
// orphaned descendants of services come back to us and are reaped (and we
// can run as PID 1).
var processChildren = sync.OnceValue(func() *children {
	c := &children{waiting: map[int][]*Process{}}
	// Best effort: without it, orphans go to init, which reaps them.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	closeInheritedOnExec()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	go func() {
		for range ch {
			c.reapAll()
		}
	}()
	return c
})

// NewReaper returns a reaper for the process. The daemon makes one and
// hands it to whatever spawns on its behalf; a test makes its own.
func NewReaper() *Reaper { return &Reaper{processChildren()} }

func (r *children) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ps := r.waiting[pid]
		delete(r.waiting, pid)
		r.mu.Unlock()
		for _, p := range ps {
			p.finish(Exit{Status: ws, Known: true, Reaped: time.Now()})
		}
	}
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec:
// whatever the daemon inherited from whoever started it must not leak into
// every service it spawns. Go's own descriptors are close-on-exec already.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// Attr describes a process to start.
type Attr struct {
	Argv  []string
	Env   []string
	Dir   string
	Files []uintptr // stdin, stdout, stderr (and more)
	Cred  *syscall.Credential
	// Privs are the settings fork+exec cannot apply; when a process needs
	// any, it is started through the shim (shim.go), which execs it in
	// place: same pid, same start time.
	Privs *Privileges
	// CgroupFD, when >= 0, places the child into that cgroup v2 directory
	// atomically at clone time (CLONE_INTO_CGROUP), so not even its first
	// fork can escape.
	CgroupFD int
}

// Spawn starts a process in a session (and process group) of its own.
func (r *Reaper) Spawn(a Attr) (*Process, error) {
	if len(a.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	path, err := LookPath(a.Argv[0], a.Dir, a.Env)
	if err != nil {
		return nil, err
	}
	argv, env, cred, dir := a.Argv, a.Env, a.Cred, a.Dir
	if pl := shimPlan(a.Argv[0], a.Cred, a.Privs); pl != nil {
		// The shim switches the user and directory itself, after what
		// needs root.
		pl.Dir = a.Dir
		path, argv, env = shimArgv(pl, path, a.Argv, a.Env)
		cred, dir = nil, ""
	}
	sys := &syscall.SysProcAttr{Setsid: true, Credential: cred}
	if a.CgroupFD >= 0 {
		sys.UseCgroupFD, sys.CgroupFD = true, a.CgroupFD
	}
	// The lock spans fork and registration so a child that exits at once is
	// still found by reapAll, which takes the lock before looking it up.
	r.mu.Lock()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: dir, Env: env, Files: a.Files, Sys: sys})
	if err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", a.Argv[0], err)
	}
	p := &Process{Pid: pid, done: make(chan struct{})}
	r.waiting[pid] = append(r.waiting[pid], p)
	r.mu.Unlock()
	// Outside the lock: forks are one at a time (Go's ForkLock), and
	// reading /proc/<pid>/stat of a child that has just exec'd took a
	// quarter of each spawn's turn, 100 services starting at once.
	p.StartTime, _ = StartTime(pid)
	return p, nil
}

// Watch follows a process that is not (or not only) known as our child,
// such as the daemon a start command leaves behind. If it is our child its
// exit status is reported; otherwise the exit is reported as unknown.
func (r *Reaper) Watch(pid int, start uint64) (*Process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("watch pid %d: %w", pid, err)
	}
	if st, err := StartTime(pid); err != nil || st != start {
		unix.Close(fd)
		return nil, fmt.Errorf("watch pid %d: not the process it was", pid)
	}
	p := &Process{Pid: pid, StartTime: start, done: make(chan struct{})}
	r.mu.Lock()
	r.waiting[pid] = append(r.waiting[pid], p)
	r.mu.Unlock()
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		// Our own child: the reaper delivers the real status. Give it a moment.
		select {
		case <-p.done:
			return
		case <-time.After(100 * time.Millisecond):
		}
		r.mu.Lock()
		r.waiting[pid] = slices.DeleteFunc(r.waiting[pid], func(q *Process) bool { return q == p })
		if len(r.waiting[pid]) == 0 {
			delete(r.waiting, pid)
		}
		r.mu.Unlock()
		p.finish(Exit{Reaped: time.Now()})
	}()
	return p, nil
}

// LookPath finds a program the way execvp does, using the PATH of the
// environment the program will get, not the daemon's.
func LookPath(file, dir string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", file)
}
