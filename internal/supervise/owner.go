package supervise

import (
	"os"
	"strings"

	"upkeep/internal/proc"
)

// Owner reports which service, if any, pid belongs to, so that the control
// API can keep a service's own processes to that service. With cgroups the
// answer is the cgroup pid is in (a service's children are cloned into it
// and cannot leave it without privileges); without, the process group or
// session the service was started in (services start as session leaders),
// or a service's main process among pid's ancestors.
func (d *Daemon) Owner(pid int) (string, bool) {
	if pid <= 0 {
		return "", false
	}
	svcs := d.all()
	if d.cgroups != nil {
		if path, err := proc.CgroupOf(pid); err == nil {
			for _, sv := range svcs {
				if sv.cg != nil && (path == sv.cg.Path || strings.HasPrefix(path, sv.cg.Path+"/")) {
					return sv.name, true
				}
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
		return "", false
	}
	for i, id := range running {
		if id.pgid > 1 && (pgid == id.pgid || sid == id.pgid) {
			return svcs[i].name, true
		}
	}
	// A process that made its own session (setsid) still descends from
	// the service, unless its parents died and it was reparented to us.
	self := os.Getpid()
	for p, n := pid, 0; p > 1 && p != self && n < 64; n++ {
		for i, id := range running {
			if p == id.pid || p == id.pgid {
				return svcs[i].name, true
			}
		}
		if p, err = proc.Parent(p); err != nil {
			break
		}
	}
	return "", false
}
