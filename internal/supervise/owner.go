package supervise

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"upkeep/internal/proc"
)

// Owner reports which service, if any, pid belongs to, so that the control
// API can keep a service's own processes to that service. With cgroups the
// answer is the cgroup pid is in (a service's children are cloned into it
// and cannot leave it without privileges); without, the process group or
// session the service was started in (services start as session leaders),
// or a service's main process among pid's ancestors. It fails closed: when
// /proc cannot be read (the process is gone, no descriptor is free) the
// answer is an error, never "no service", which would grant the peer what
// its uid alone allows.
func (d *Daemon) Owner(pid int) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("owner of pid %d: no such process", pid)
	}
	svcs := d.all()
	if d.cgroups != nil {
		path, err := proc.CgroupOf(pid)
		if err != nil {
			return "", fmt.Errorf("owner of pid %d: %w", pid, err)
		}
		for _, sv := range svcs {
			if sv.cg != nil && (path == sv.cg.Path || strings.HasPrefix(path, sv.cg.Path+"/")) {
				return sv.name, nil
			}
		}
	}
	type ids struct{ pid, pgid int }
	running := make([]ids, 0, len(svcs))
	for _, sv := range svcs {
		sv.mu.Lock()
		id := ids{sv.snap.Pid, sv.snapPgid}
		sv.mu.Unlock()
		running = append(running, id)
	}
	pgid, sid, err := proc.GroupAndSession(pid)
	if err != nil {
		return "", fmt.Errorf("owner of pid %d: %w", pid, err)
	}
	for i, id := range running {
		if id.pgid > 1 && (pgid == id.pgid || sid == id.pgid) {
			return svcs[i].name, nil
		}
	}
	// A process that made its own session (setsid) still descends from
	// the service, unless its parents died and it was reparented to us.
	self := os.Getpid()
	for p, n := pid, 0; p > 1 && p != self && n < 64; n++ {
		for i, id := range running {
			if p == id.pid || p == id.pgid {
				return svcs[i].name, nil
			}
		}
		if p, err = proc.Parent(p); errors.Is(err, fs.ErrNotExist) {
			break // an ancestor gone: the chain is cut there
		} else if err != nil {
			return "", fmt.Errorf("owner of pid %d: %w", pid, err)
		}
	}
	return "", nil
}
