package proc

import (
	"context"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH a process gets when the daemon has none to pass
// on, and where LookPath looks when the environment sets none: the one of
// Debian's login.defs for root (ENV_SUPATH).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BaseEnv is all a process the daemon starts gets of the daemon's own
// environment, as systemd gives its units a clean one: PATH (DefaultPath
// when the daemon has none), the locale (LANG, LC_ALL) and TZ.
func BaseEnv() []string {
	env := []string{"PATH=" + DefaultPath}
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			if k == "PATH" {
				env[0] = "PATH=" + v
			} else {
				env = append(env, k+"="+v)
			}
		}
	}
	return env
}

// Identity is who a process runs as and what it may do: a user, group and
// supplementary groups (resolved as Credential says, when the process
// starts) and the privileges fork+exec cannot set. The zero value is the
// daemon's own identity.
type Identity struct {
	User   string
	Group  string
	Groups []string
	Privs  *Privileges
}

// Cmd is a command to start with everything it runs with. A nil Stdin,
// Stdout or Stderr is /dev/null; the caller keeps its files and closes
// them after Start (a pipe's write end must be closed for its reader to
// see the end). A nil Cgroup leaves the process in the daemon's cgroup.
type Cmd struct {
	Argv   []string
	Dir    string
	Env    []string
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
	As     Identity
	Cgroup *Cgroup
	// Files are the descriptors from 3 on; a nil entry is closed in the
	// child (s6's notification-fd N is Files[N-3]).
	Files []*os.File
}

// Start starts c in a session and process group of its own (Spawn), as
// c.As, in c.Cgroup from its first instruction.
func (r *Reaper) Start(c Cmd) (*Process, error) {
	cred, err := Credential(c.As.User, c.As.Group, c.As.Groups)
	if err != nil {
		return nil, err
	}
	var null *os.File
	files := make([]uintptr, 3)
	for i, f := range []*os.File{c.Stdin, c.Stdout, c.Stderr} {
		if f == nil {
			if null == nil {
				if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, err
				}
				defer null.Close()
			}
			f = null
		}
		// Fd() puts the file back in blocking mode, which is what the
		// child expects of its standard descriptors.
		files[i] = f.Fd()
	}
	for _, f := range c.Files {
		fd := ^uintptr(0) // -1: ForkExec closes it
		if f != nil {
			fd = f.Fd()
		}
		files = append(files, fd)
	}
	cgfd := -1
	if c.Cgroup != nil {
		// Without a descriptor the process starts in the daemon's cgroup:
		// its process group still reaches it.
		if fd, err := c.Cgroup.Open(); err == nil {
			cgfd = fd
			defer unix.Close(fd)
		}
	}
	return r.Spawn(Attr{Argv: c.Argv, Env: c.Env, Dir: c.Dir, Files: files, Cred: cred, Privs: c.As.Privs, CgroupFD: cgfd})
}

// Run starts c and waits for it as Wait does.
func (r *Reaper) Run(ctx context.Context, c Cmd) (Exit, error) {
	p, err := r.Start(c)
	if err != nil {
		return Exit{}, err
	}
	return p.Wait(ctx)
}

// killWait is how long Wait waits for a killed group's leader to be
// reaped: long enough for the usual case, so the caller leaves no process
// behind, and not for ever, since a process in uninterruptible sleep dies
// only when it can.
const killWait = time.Second

// Wait waits for p to exit. When ctx ends first it SIGKILLs p's process
// group (p leads it: Spawn made it a session leader), waits a little for
// the reaper to see the death, and returns ctx's error.
func (p *Process) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-p.done:
		return p.exit, nil
	case <-ctx.Done():
	}
	p.KillGroup()
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
	return Exit{}, ctx.Err()
}

// KillGroup SIGKILLs p's process group.
func (p *Process) KillGroup() { _ = SignalGroup(p.Pid, syscall.SIGKILL) }
