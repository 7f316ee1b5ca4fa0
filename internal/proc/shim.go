package proc

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The shim, chain-loading the way s6's and daemontools' small exec
// programs do: Spawn starts the daemon's own binary as
// `upkeep __exec PATH ARGV...` with a plan in the environment when a
// process needs what fork+exec cannot give it (umask, rlimits, a cut
// bounding set, ambient capabilities, no_new_privs). The shim applies the
// plan and execs PATH in place, so the service keeps the pid (and the
// start time) Spawn saw. It runs from this package's init, so every
// binary that spawns through proc, tests included, is also the shim. It
// runs before the packages that import proc initialise, but after every
// package whose import path sorts before "upkeep/internal/proc" (Go
// 1.21's init order): some 40% of the shim's cost, measured in
// docs/reliability/privs.md.
func init() {
	if len(os.Args) >= 3 && os.Args[1] == execArg {
		if settings, ok := os.LookupEnv(execEnv); ok {
			shim(settings, os.Args[2], os.Args[3:])
		}
		// Not started by Spawn: whatever the program makes of it.
	}
	// The daemon's umask as it started, before anything (the control
	// socket's bind) tightens it for a moment.
	daemonUmask()
}

// shimFailed is the shim's exit status when it could not apply a setting
// or exec the program: the shell's "command not found or not runnable",
// which the supervisor sees as a failed start.
const shimFailed = 127

// shim never returns: it execs the program or exits shimFailed, after one
// line on stderr (the service's error log) saying which setting failed.
func shim(settings, path string, argv []string) {
	var pl plan
	if err := json.Unmarshal([]byte(settings), &pl); err != nil {
		fail("upkeep", "read settings", err)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, execEnv+"=") {
			env = append(env, kv)
		}
	}
	// Capabilities, keep-caps and no_new_privs belong to a thread, and
	// execve keeps the calling thread's: all of it happens on this one.
	runtime.LockOSThread()
	if err := pl.apply(); err != nil {
		fail(pl.Name, "", err)
	}
	// syscall.Exec (which unix.Exec calls) puts back the RLIMIT_NOFILE soft
	// limit this process was started with (Go raised it at init), unless
	// the plan set the limit itself.
	err := syscall.Exec(path, argv, env)
	fail(pl.Name, "exec "+path, err)
}

func fail(name, step string, err error) {
	if step != "" {
		err = fmt.Errorf("%s: %w", step, err)
	}
	fmt.Fprintf(os.Stderr, "upkeep: %s: not started: %v\n", name, err)
	os.Exit(shimFailed)
}

// apply sets up the calling thread (and the process) as the plan says.
// The order matters: umask and limits first, as root, so a hard limit
// can be raised; the bounding set while CAP_SETPCAP is still held; the
// user switch with PR_SET_KEEPCAPS when capabilities must survive it;
// then the ambient set, which needs them permitted and inheritable; and
// no_new_privs last, since nothing after it should gain anything.
func (pl *plan) apply() error {
	if pl.Umask != nil {
		unix.Umask(int(*pl.Umask))
	}
	for _, l := range pl.Limits {
		if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			return fmt.Errorf("limit %s: %w", limitName(l.Resource), err)
		}
	}
	switchUser := pl.Cred != nil && pl.Cred.Uid != 0
	if switchUser && len(pl.Ambient) > 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keep capabilities: %w", err)
		}
	}
	if pl.DropBnd {
		if err := dropBounding(pl.Bounding); err != nil {
			return err
		}
	}
	if pl.Cred != nil {
		groups := make([]int, len(pl.Cred.Groups))
		for i, g := range pl.Cred.Groups {
			groups[i] = int(g)
		}
		// syscall's, not unix's: they change every thread of the process.
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(int(pl.Cred.Gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", pl.Cred.Gid, err)
		}
		if err := syscall.Setuid(int(pl.Cred.Uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", pl.Cred.Uid, err)
		}
	}
	if pl.DropBnd {
		if err := setAmbient(pl.Ambient, os.Geteuid() == 0, pl.Bounding); err != nil {
			return err
		}
	}
	if pl.Dir != "" {
		if err := os.Chdir(pl.Dir); err != nil {
			return fmt.Errorf("directory: %w", err)
		}
	}
	if pl.NNP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privileges: %w", err)
		}
	}
	return nil
}

// lastCap is the highest capability the running kernel knows.
func lastCap() (uintptr, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("capabilities: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("capabilities: cap_last_cap: %w", err)
	}
	return uintptr(n), nil
}

// dropBounding removes from the bounding set every capability not kept.
func dropBounding(keep []uintptr) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for _, c := range keep {
		if c > last {
			return fmt.Errorf("capability %d: not known to this kernel (last is %d)", c, last)
		}
	}
	for c := uintptr(0); c <= last; c++ {
		if has(keep, c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

func has(set []uintptr, c uintptr) bool {
	for _, x := range set {
		if x == c {
			return true
		}
	}
	return false
}

// setAmbient leaves a process that is not root with exactly caps as its
// permitted, effective, inheritable and ambient sets (the ambient set is
// what survives the exec of an ordinary file). For root it only trims the
// inheritable set to the bounding set kept: the bounding set does not
// reach into inheritable capabilities the daemon already had.
func setAmbient(caps []uintptr, root bool, bounding []uintptr) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if root {
		var keep [2]uint32
		for _, c := range bounding {
			keep[c/32] |= 1 << (c % 32)
		}
		for i := range data {
			data[i].Inheritable &= keep[i]
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
		return nil
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if len(caps) == 0 {
		return nil
	}
	data = [2]unix.CapUserData{}
	for _, c := range caps {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
		data[c/32].Inheritable |= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset %s: %w", capList(caps), err)
	}
	for _, c := range caps {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return nil
}

func capList(caps []uintptr) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = strconv.Itoa(int(c))
	}
	return strings.Join(s, ",")
}

func limitName(r int) string {
	switch r {
	case unix.RLIMIT_NOFILE:
		return "nofile"
	case unix.RLIMIT_NPROC:
		return "nproc"
	case unix.RLIMIT_CORE:
		return "core"
	}
	return strconv.Itoa(r)
}
