package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/paths"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// Daemon owns every service of one host (one root).
type Daemon struct {
	root     string
	runDir   string
	logDir   string
	log      *slog.Logger
	reaper   *proc.Reaper
	cgroups  *proc.Cgroups // nil where cgroups cannot be used
	lock     *os.File
	loaded   bool
	journal  *journal
	observer Observer
	// guard vets a service before each start; an error keeps it from
	// starting, as a failed start (SetStartGuard).
	guard func(*spec.Service) error
	// beforeLoad runs before the definitions are read (SetBeforeLoad).
	beforeLoad func()
	// globEvery is how often the files a [[log.file]] pattern stands for
	// are looked for again: a file that appears is rotated from then on.
	globEvery time.Duration

	// changes carries every change of the set of services (Load, Reload,
	// shutdown) to its one owner, ownChanges (changes.go); owned is closed
	// once the owner has run shutdown and ended. closed and loaded are the
	// owner's alone.
	changes chan change
	owned   chan struct{}
	closed  bool
	// shutdownErr is what the shutdown reports (ShutdownError), for Run.
	shutdownErr error
	// shuttingDown and hurried: a second signal (Hurry) kills what the
	// shutdown has not stopped yet.
	shuttingDown, hurried atomic.Bool

	// life ends at shutdown; it bounds the work the daemon does for a
	// caller that did not wait (stop --no-wait), counted in background.
	life       context.Context
	endLife    context.CancelFunc
	background sync.WaitGroup

	mu       sync.Mutex
	svcs     map[string]*service
	problems map[string]spec.Problems
	changed  chan struct{}
}

// SetStartGuard installs f, asked before every start of a service
// whether it may start (its data volume mounted, say); call before Run.
// An error counts as a failed start: the restart policy retries it.
func (d *Daemon) SetStartGuard(f func(*spec.Service) error) { d.guard = f }

// SetBeforeLoad installs f, run before every reading of the definitions
// (Load, Reload): the host's recovery of deploys killed half done, so that
// the daemon never reads, nor starts, a service from a half-laid release.
// Call before Load.
func (d *Daemon) SetBeforeLoad(f func()) { d.beforeLoad = f }

// Paths of a host, relative to its root, as package paths names them.
const (
	RunDir = paths.RunDir
	LogDir = paths.LogDir
)

// New prepares the daemon for root and takes the host's lock: a second
// daemon on the same root is refused.
func New(root string, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{
		root:     root,
		runDir:   filepath.Join(root, RunDir),
		logDir:   filepath.Join(root, LogDir),
		log:      log,
		svcs:     map[string]*service{},
		problems: map[string]spec.Problems{},
		changed:  make(chan struct{}),
		journal:  newJournal(),
		changes:  make(chan change),
		owned:    make(chan struct{}),

		globEvery: time.Minute,
	}
	d.life, d.endLife = context.WithCancel(context.Background())
	for _, dir := range []string{d.runDir, d.logDir, filepath.Join(root, paths.WWW)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	lock, err := Lock(d.runDir)
	if err != nil {
		return nil, err
	}
	d.lock = lock
	d.reaper = proc.NewReaper()
	if cg, err := proc.OpenCgroups(root); err == nil {
		d.cgroups = cg
	} else {
		log.Info("no cgroups; using process groups", "reason", err.Error())
	}
	go d.ownChanges()
	return d, nil
}

// Lock takes the exclusive lock of a host's run directory.
func Lock(runDir string) (*os.File, error) {
	path := filepath.Join(runDir, "upkeep.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "?"
		}
		return nil, fmt.Errorf("another upkeep daemon (pid %s) is running on root %s", holder, filepath.Dir(filepath.Dir(runDir)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// Load reclaims what a dead daemon left behind and reads the host's
// services, starting none. Run calls it if nobody did; the daemon command
// calls it before opening the control socket, so no request ever sees a
// half-loaded host.
func (d *Daemon) Load() error {
	var err error
	if e := d.change(context.Background(), func() { err = d.load() }); e != nil {
		return e
	}
	return err
}

func (d *Daemon) load() error {
	if d.loaded {
		return nil
	}
	d.loaded = true
	d.reclaim()
	if d.beforeLoad != nil {
		d.beforeLoad()
	}
	host, err := spec.LoadHost(d.root)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.problems = host.Problems
	d.mu.Unlock()
	for name, ps := range host.Problems {
		d.log.Error("bad definition", "service", name, "problems", ps.Error())
	}
	for _, name := range host.Names() {
		d.add(host.Services[name])
	}
	return nil
}

// Run starts the services marked autostart and keeps them up until ctx
// ends; then it stops all of them, dependents first.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Load(); err != nil {
		return err
	}
	var auto []string
	for _, sv := range d.all() {
		if sv.specSnapshot().Autostart {
			auto = append(auto, sv.name)
		}
	}
	d.startAll(d.withDependencies(auto))
	settle()
	go d.sample(ctx.Done())
	<-ctx.Done()
	d.shutdown()
	return d.shutdownErr
}

// settle hands the memory of a burst of work (parsing every definition,
// starting every service) back to the kernel a second later. The daemon
// lives for months at a fraction of that peak; without this the Go runtime
// returns it only slowly, and the daemon looks bigger than it is.
func settle() {
	time.AfterFunc(time.Second, debug.FreeOSMemory)
}

// add makes and runs the service of s; only the owner calls it.
func (d *Daemon) add(s *spec.Service) *service {
	var cg *proc.Cgroup
	if d.cgroups != nil {
		var err error
		if cg, err = d.cgroups.Service(s.Name); err != nil {
			d.log.Warn("no cgroup", "service", s.Name, "err", err.Error())
		}
	}
	sv := newService(d, s, cg)
	d.mu.Lock()
	d.svcs[s.Name] = sv
	d.mu.Unlock()
	go sv.run()
	return sv
}

// shutdown stops every service, dependents first, and ends the owner.
func (d *Daemon) shutdown() {
	_ = d.change(context.Background(), d.closeAll)
}

func (d *Daemon) closeAll() {
	d.closed = true
	d.endLife()
	d.background.Wait()
	d.mu.Lock()
	names := make([]string, 0, len(d.svcs))
	for n := range d.svcs {
		names = append(names, n)
	}
	d.mu.Unlock()
	d.shutdownErr = d.stopAll(names)
	for _, sv := range d.all() {
		_ = sv.send(request{kind: reqRemove})
		<-sv.done
	}
	if d.cgroups != nil {
		d.cgroups.Remove()
	}
	d.lock.Close()
}

// watch returns a channel closed at the next state change of any service.
func (d *Daemon) watch() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

func (d *Daemon) notify() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *Daemon) get(name string) (*service, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if sv, ok := d.svcs[name]; ok {
		return sv, nil
	}
	if ps, ok := d.problems[name]; ok {
		// One line, as every CLI error is: the problems joined.
		return nil, fmt.Errorf("%s: definition is broken, so it is kept stopped: %s", name, strings.ReplaceAll(ps.Error(), "\n", "; "))
	}
	return nil, fmt.Errorf("%w %q", api.ErrUnknown, name)
}

func (d *Daemon) all() []*service {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*service, 0, len(d.svcs))
	for _, sv := range d.svcs {
		out = append(out, sv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// unreadyDependency names a dependency of s that is not running, or "".
func (d *Daemon) unreadyDependency(s *spec.Service) string {
	for _, dep := range s.DependsOn {
		d.mu.Lock()
		sv := d.svcs[dep]
		d.mu.Unlock()
		if sv == nil || sv.snapshot().State != api.Running {
			return dep
		}
	}
	return ""
}

// dependents returns the services that depend on name, directly.
func (d *Daemon) dependents(name string) []string {
	var out []string
	for _, sv := range d.all() {
		for _, dep := range sv.specSnapshot().DependsOn {
			if dep == name {
				out = append(out, sv.name)
			}
		}
	}
	return out
}

func (d *Daemon) rememberPid(name string, r proc.Record) {
	if err := proc.WriteRecord(paths.StateRecord(d.root, name), r); err != nil {
		d.log.Warn("state file", "service", name, "err", err.Error())
	}
	if err := proc.WritePID(paths.PidFile(d.root, name), r.Pid); err != nil {
		d.log.Warn("pid file", "service", name, "err", err.Error())
	}
}

func (d *Daemon) forgetPid(name string) {
	os.Remove(paths.PidFile(d.root, name))
	os.Remove(paths.StateRecord(d.root, name))
}

// adopt checks that pid, read from a service's own pid file, is a process
// the service started: in its cgroup, or reparented to us (the subreaper)
// when its launcher exited. Anything else is refused, never signalled.
func (d *Daemon) adopt(s *service, pid int) (*proc.Process, error) {
	ours := false
	if s.cg != nil {
		for _, p := range s.cg.Procs() {
			ours = ours || p == pid
		}
	} else if ppid, err := proc.Parent(pid); err == nil && ppid == os.Getpid() {
		ours = true
	}
	if !ours {
		return nil, fmt.Errorf("pid %d is not a process of this service", pid)
	}
	st, err := proc.StartTime(pid)
	if err != nil {
		return nil, err
	}
	return d.reaper.Watch(pid, st)
}

// reclaim deals with what a daemon that died (SIGKILL, OOM) left running.
// Its services lost the pipes to their logs with it, so they are not
// re-adopted but stopped — gracefully for half a second, then killed — and
// started afresh by this daemon, each exactly once. Only processes proven to
// be ours are touched: a pid whose start time differs from the record is
// someone else's now.
func (d *Daemon) reclaim() {
	var groups []int
	var cgs []*proc.Cgroup
	records, _ := filepath.Glob(filepath.Join(d.runDir, "*.state"))
	for _, path := range records {
		r, err := proc.ReadRecord(path)
		if err == nil && proc.Same(r.Pid, r.StartTime) && r.Pgid > 1 {
			d.log.Warn("stopping a dead daemon's leftover", "record", path, "pid", r.Pid)
			_ = proc.SignalGroup(r.Pgid, syscall.SIGTERM)
			groups = append(groups, r.Pgid)
		}
		base := strings.TrimSuffix(path, ".state")
		os.Remove(path)
		os.Remove(base + ".pid")
	}
	if d.cgroups != nil {
		for _, cg := range d.cgroups.Existing() {
			if !cg.Empty() {
				d.log.Warn("stopping a dead daemon's leftover cgroup", "cgroup", cg.Path)
				cg.Signal(syscall.SIGTERM)
				cgs = append(cgs, cg)
			}
		}
	}
	// The dead daemon's orphans went to init, which may be slow to reap
	// them: zombies count as gone.
	gone := func() bool {
		for _, g := range groups {
			if len(proc.GroupMembers(g)) > 0 {
				return false
			}
		}
		for _, cg := range cgs {
			if !cg.Empty() {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(500 * time.Millisecond); !gone() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for _, g := range groups {
		_ = proc.SignalGroup(g, syscall.SIGKILL)
	}
	for _, cg := range cgs {
		cg.Kill()
	}
	for deadline := time.Now().Add(time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for _, cg := range cgs {
		_ = cg.Fresh()
	}
}

// sameSpec reports whether a reload leaves a service's definition alone.
func sameSpec(a, b *spec.Service) bool { return reflect.DeepEqual(a, b) }
