package proc

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"a.upkeep.local/shim"
)

// Privileges is what a process may do beyond its credential: the settings
// that os/exec's SysProcAttr cannot apply between fork and exec. A nil
// *Privileges (or its zero value) leaves everything as the daemon has it.
type Privileges struct {
	// Capabilities, when not nil, is the set the process keeps. A process
	// that is not root gets it as its ambient (and inheritable, permitted,
	// effective) set, and its bounding set is cut down to it; a nil set
	// is the empty one for such a process. For a root process a non-nil
	// set limits the bounding set (systemd's CapabilityBoundingSet=); nil
	// keeps root's full set. Values are CAP_* numbers.
	Capabilities []uintptr
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS; nil means true for a
	// process that is not root and false for root.
	NoNewPrivileges *bool
	// Umask, when not nil, is set before exec.
	Umask *uint32
	// Limits are set with setrlimit before exec; a resource not listed
	// is inherited (RLIMIT_NOFILE: the soft limit the daemon itself was
	// started with, not the one Go raised it to).
	Limits []Limit
}

// Limit is one resource limit (syscall.RLIMIT_*), RLIM_INFINITY as
// ^uint64(0).
type Limit struct {
	Resource int
	Soft     uint64
	Hard     uint64
}

// daemonUmask is the daemon's umask as /proc/self/status shows it (Linux
// 4.7 and later): reading it with umask(2) would mean setting it, and
// another goroutine could create a file meanwhile.
var daemonUmask = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
})

// shimPlan returns what the shim must do for a process started with cred
// and p, or nil when fork+exec alone gives the process all of it (the
// common path keeps costing one fork and one exec).
func shimPlan(name string, cred *syscall.Credential, p *Privileges) *shim.Plan {
	if p == nil {
		return nil
	}
	daemonRoot := os.Geteuid() == 0
	uid := uint32(os.Geteuid())
	if cred != nil {
		uid = cred.Uid
	}
	asRoot := uid == 0
	pl := &shim.Plan{Name: name}
	for _, l := range p.Limits {
		pl.Limits = append(pl.Limits, shim.Limit{Resource: l.Resource, Soft: l.Soft, Hard: l.Hard})
	}
	if p.Umask != nil && int(*p.Umask) != daemonUmask() {
		pl.Umask = p.Umask
	}
	switch {
	case asRoot && p.Capabilities != nil:
		pl.DropBounding, pl.Bounding = true, p.Capabilities
	case !asRoot && (daemonRoot || p.Capabilities != nil):
		// Without CAP_SETPCAP (a daemon that is not root) the bounding
		// set cannot be cut; asking for capabilities then fails the
		// start in the shim rather than silently running with more.
		pl.DropBounding, pl.Bounding, pl.Ambient = true, p.Capabilities, p.Capabilities
	}
	pl.NNP = !asRoot
	if p.NoNewPrivileges != nil {
		pl.NNP = *p.NoNewPrivileges
	}
	if pl.Umask == nil && len(pl.Limits) == 0 && !pl.DropBounding && !pl.NNP {
		return nil
	}
	if cred != nil {
		pl.Cred = &shim.Cred{Uid: cred.Uid, Gid: cred.Gid, Groups: cred.Groups}
	}
	return pl
}

// shimArgv is how Spawn starts the shim: the daemon's own binary through
// /proc/self/exe (still there if the file was replaced by an upgrade),
// with the program to run and its argv after a fixed marker, so nothing
// in them can be mistaken for a setting, and the plan in the
// environment, which the shim removes before exec.
func shimArgv(pl *shim.Plan, path string, argv, env []string) (string, []string, []string) {
	sargv := append([]string{"upkeep", shim.Arg, path}, argv...)
	senv := append(env[:len(env):len(env)], shim.Env+"="+pl.Encode())
	return "/proc/self/exe", sargv, senv
}
