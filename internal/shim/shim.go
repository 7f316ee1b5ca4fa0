// Package shim is the child's side of upkeep's privilege shim,
// chain-loading the way s6's and daemontools' small exec programs do.
// The daemon (upkeep/internal/proc) starts its own binary as
// `upkeep __exec PATH ARGV...` with a Plan in the environment when a
// process needs what fork+exec cannot give it (umask, rlimits, a cut
// bounding set, ambient capabilities, no_new_privs). This package's init
// applies the plan and execs PATH in place, so the service keeps the pid
// (and the start time) the daemon saw.
//
// It is a module of its own only for its import path. Since Go 1.21 the
// runtime initialises packages by taking, again and again, the one with
// the lexically smallest import path among those whose imports are all
// initialised. "a.upkeep.local/shim" sorts before every other package
// of the binary ("archive/…", "bufio", "github.com/…", "upkeep/…"), and
// it imports only errors, runtime, syscall and unsafe, so its init runs
// as soon as syscall's has: 14 packages in, all of them the runtime's and
// the standard library's, before the binary's other packages (cobra,
// prometheus, protobuf, procfs…) cost anything. Run from
// upkeep/internal/proc's init, after 112 packages, the shim took 4.4 ms of
// CPU; from here it takes 2.6 ms, about what an empty static Go program
// takes to start and exec (2.5 ms; /bin/true takes 0.7). The rest is the
// Go runtime's start: docs/reliability.md ("Process privileges") has the figures.
//
// Keep it that way: no fmt, os, strconv or x/sys/unix here (each would
// let a part of the rest of the binary initialise first). The few
// x/sys/unix calls the shim needs are syscall.RawSyscall in caps.go.
// upkeep/internal/proc imports it, so the upkeep binary and every test
// binary that links proc is also the shim.
package shim

import (
	"runtime"
	"syscall"
	"unsafe"
)

func init() {
	settings, ok := syscall.Getenv(Env)
	if !ok {
		return
	}
	argv, err := cmdline()
	if err != nil {
		fail("upkeep", "read /proc/self/cmdline", err)
	}
	if len(argv) < 3 || argv[1] != Arg {
		// The variable, but not started by the daemon: whatever the
		// program makes of it.
		return
	}
	run(settings, argv[2], argv[3:])
}

// run never returns: it execs the program or exits Failed, after one line
// on stderr (the service's error log) saying which setting failed.
func run(settings, path string, argv []string) {
	pl, err := Decode(settings)
	if err != nil {
		fail("upkeep", "read settings", err)
	}
	all := syscall.Environ()
	env := make([]string, 0, len(all))
	for _, kv := range all {
		if len(kv) <= len(Env) || kv[:len(Env)+1] != Env+"=" {
			env = append(env, kv)
		}
	}
	// Capabilities, keep-caps and no_new_privs belong to a thread, and
	// execve keeps the calling thread's: all of it happens on this one.
	// (Package inits run on the main thread, locked to it; this keeps it
	// so.)
	runtime.LockOSThread()
	if err := pl.apply(); err != nil {
		fail(pl.Name, "", err)
	}
	// syscall.Exec puts back the RLIMIT_NOFILE soft limit this process was
	// started with (syscall's init raised it), unless the plan set the
	// limit itself.
	err = syscall.Exec(path, argv, env)
	fail(pl.Name, "exec "+path, err)
}

func fail(name, step string, err error) {
	if step != "" {
		err = wrap(step, err)
	}
	msg := "upkeep: " + name + ": not started: " + err.Error() + "\n"
	for len(msg) > 0 {
		n, err := syscall.Write(2, []byte(msg))
		if n <= 0 || err != nil && err != syscall.EINTR {
			break
		}
		msg = msg[n:]
	}
	syscall.Exit(Failed)
}

// cmdline is this process's argv, which package os would only have after
// its own init.
func cmdline() ([]string, error) {
	b, err := readFile("/proc/self/cmdline")
	if err != nil {
		return nil, err
	}
	var argv []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		argv = append(argv, string(b[:i]))
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return argv, nil
}

func readFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("open "+path, err)
	}
	defer syscall.Close(fd)
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, wrap("read "+path, err)
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// apply sets up the calling thread (and the process) as the plan says.
// The order matters: umask and limits first, as root, so a hard limit
// can be raised; the bounding set while CAP_SETPCAP is still held; the
// user switch with PR_SET_KEEPCAPS when capabilities must survive it;
// then the ambient set, which needs them permitted and inheritable; and
// no_new_privs last, since nothing after it should gain anything.
func (pl *Plan) apply() error {
	if pl.Umask != nil {
		syscall.Umask(int(*pl.Umask))
	}
	for _, l := range pl.Limits {
		// syscall's Setrlimit also tells syscall.Exec to leave the
		// RLIMIT_NOFILE set here alone.
		if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			return wrap("limit "+limitName(l.Resource), err)
		}
	}
	switchUser := pl.Cred != nil && pl.Cred.Uid != 0
	if switchUser && len(pl.Ambient) > 0 {
		if err := prctl(prSetKeepcaps, 1, 0); err != nil {
			return wrap("keep capabilities", err)
		}
	}
	if pl.DropBounding {
		if err := dropBounding(pl.Bounding); err != nil {
			return err
		}
	}
	if pl.Cred != nil {
		if err := switchThread(pl.Cred.Uid, pl.Cred.Gid, pl.Cred.Groups); err != nil {
			return err
		}
	}
	if pl.DropBounding {
		if err := setAmbient(pl.Ambient, syscall.Geteuid() == 0, pl.Bounding); err != nil {
			return err
		}
	}
	if pl.Dir != "" {
		if err := syscall.Chdir(pl.Dir); err != nil {
			return wrap("directory", wrap("chdir "+pl.Dir, err))
		}
	}
	if pl.NNP {
		if err := prctl(prSetNoNewPrivs, 1, 0); err != nil {
			return wrap("no_new_privileges", err)
		}
	}
	return nil
}

// switchThread sets the groups, gid and uid of the calling thread alone,
// with the raw system calls: the kernel keeps credentials per thread, and
// syscall.Setuid and friends stop every thread of the runtime with a signal
// to change them all (three times, about a millisecond here). Only this
// thread matters: it execs next, and execve ends the others, which run no
// code but the runtime's. The saved ids are set too, so nothing can switch
// back.
func switchThread(uid, gid uint32, groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return wrap("setgroups", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return wrap("setgid "+itoa(uint64(gid)), e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return wrap("setuid "+itoa(uint64(uid)), e)
	}
	return nil
}

func limitName(r int) string {
	switch r {
	case syscall.RLIMIT_NOFILE:
		return "nofile"
	case rlimitNproc:
		return "nproc"
	case syscall.RLIMIT_CORE:
		return "core"
	}
	return itoa(uint64(r))
}
