package proc

// What the control API asks about a peer process: its cgroup, group and session.

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// mountOnce finds the cgroup2 mount once: it does not move under a running
// daemon, and CgroupOf is asked on every control request.
var mountOnce = sync.OnceValues(cgroup2Mount)

// CgroupOf returns the cgroup2 directory pid is in, as an absolute path
// under the cgroup2 mount (comparable with Cgroup.Path). /proc/PID/cgroup
// names it relative to our cgroup namespace, which is the one the daemon
// made its cgroups in.
func CgroupOf(pid int) (string, error) {
	mount, err := mountOnce()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(mount, p), nil
		}
	}
	return "", errors.New("cgroups: not in a cgroup2 hierarchy")
}

// GroupAndSession returns the process group and session of pid.
func GroupAndSession(pid int) (pgid, sid int, err error) {
	p, err := newProc(pid)
	if err != nil {
		return 0, 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, 0, err
	}
	return st.PGRP, st.Session, nil
}
