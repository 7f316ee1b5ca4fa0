package proc

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroups is the daemon's own cgroup v2 subtree: one child cgroup per
// service, so a stop reaches processes that left the process group (setsid,
// double fork) — the lesson of systemd's KillMode=control-group.
type Cgroups struct {
	Base string
}

// OpenCgroups creates (or finds) the subtree for the host at root under the
// daemon's own cgroup. It fails where cgroup2 is absent or not writable; the
// daemon then falls back to process groups.
func OpenCgroups(root string) (*Cgroups, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(root))
	base := filepath.Join(mount, own, "upkeep-"+hex.EncodeToString(sum[:4]))
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("cgroups: %s is not a cgroup2 directory", base)
	}
	return &Cgroups{Base: base}, nil
}

// Service returns the cgroup of one service, creating it.
func (c *Cgroups) Service(name string) (*Cgroup, error) {
	p := filepath.Join(c.Base, name)
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	return &Cgroup{Path: p}, nil
}

// Existing lists the service cgroups present, such as those a dead daemon
// left behind.
func (c *Cgroups) Existing() []*Cgroup {
	entries, _ := os.ReadDir(c.Base)
	var out []*Cgroup
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, &Cgroup{Path: filepath.Join(c.Base, e.Name())})
		}
	}
	return out
}

// Remove removes the subtree if it is empty.
func (c *Cgroups) Remove() { _ = os.Remove(c.Base) }

// Cgroup is one service's cgroup.
type Cgroup struct {
	Path   string
	killed bool
}

// Open returns a descriptor for CLONE_INTO_CGROUP; the caller closes it.
func (g *Cgroup) Open() (int, error) {
	return unix.Open(g.Path, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
}

// Procs lists the pids in the cgroup.
func (g *Cgroup) Procs() []int {
	pids, _ := readPids(filepath.Join(g.Path, "cgroup.procs"))
	return pids
}

// Empty reports whether no process is left in the cgroup.
func (g *Cgroup) Empty() bool {
	f, err := os.Open(filepath.Join(g.Path, "cgroup.events"))
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "populated "); ok {
			return v == "0"
		}
	}
	return len(g.Procs()) == 0
}

// Signal sends sig to every process in the cgroup.
func (g *Cgroup) Signal(sig syscall.Signal) {
	for _, pid := range g.Procs() {
		_ = syscall.Kill(pid, sig)
	}
}

// Kill SIGKILLs everything in the cgroup. cgroup.kill (Linux 5.14) does it
// atomically, racing no fork; older kernels get a loop of SIGKILLs.
func (g *Cgroup) Kill() {
	g.killed = true
	if os.WriteFile(filepath.Join(g.Path, "cgroup.kill"), []byte("1"), 0) == nil {
		return
	}
	for i := 0; i < 100 && !g.Empty(); i++ {
		g.Signal(syscall.SIGKILL)
		time.Sleep(time.Millisecond)
	}
}

// Fresh makes sure the cgroup can take new processes. Once cgroup.kill has
// been used on a cgroup, this kernel (6.x, kill_seq) SIGKILLs children
// cloned into it with CLONE_INTO_CGROUP, so a killed cgroup is replaced by a
// new one of the same name before the next start.
func (g *Cgroup) Fresh() error {
	if !g.killed {
		return nil
	}
	for i := 0; i < 100 && !g.Empty(); i++ {
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(g.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroup %s: %w", g.Name(), err)
	}
	if err := os.Mkdir(g.Path, 0o755); err != nil {
		return fmt.Errorf("cgroup %s: %w", g.Name(), err)
	}
	g.killed = false
	return nil
}

// Remove removes the (empty) cgroup.
func (g *Cgroup) Remove() error { return os.Remove(g.Path) }

// Name is the service's name the cgroup belongs to.
func (g *Cgroup) Name() string { return filepath.Base(g.Path) }

func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo: ... mountpoint ... - fstype source options
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", errors.New("cgroups: no cgroup2 file system mounted")
}

func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("cgroups: not in a cgroup2 hierarchy")
}
