package supervise

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/health"
	"upkeep/internal/logsink"
	"upkeep/internal/notify"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

type eventKind int

const (
	evStart       eventKind = iota // start asked for
	evStop                         // stop asked for
	evRestart                      // restart asked for
	evUpdate                       // a reload changed the definition (event.spec)
	evRemove                       // a reload removed the service: stop it, then end the loop
	evExit                         // the main process is gone
	evLaunched                     // a daemonizing start command has exited
	evTimer                        // the one timer fired: ready_after, backoff or stop timeout
	evPoll                         // time to look again: leftovers, pid file
	evDeps                         // some service changed state; dependencies may be up
	evReady                        // the checks passed: the service is up
	evCheckFailed                  // a check crossed its threshold with then = restart or stop (event.check)
	evAnnounced                    // a newline on fd N, or a log line matched: the run says it is up (event.run)
	evNotify                       // a datagram on the notification socket (event.note, event.from)
	evWatchdog                     // no WATCHDOG=1 within watchdog
)

// event is one input of the state machine, with the data it brings.
type event struct {
	kind  eventKind
	spec  *spec.Service // evUpdate
	check checkFailure  // evCheckFailed
	run   int           // evAnnounced
	note  *notify.Datagram
	from  sender // evNotify
}

// checkFailure is a check's action, as the monitor's verdict asks for it.
type checkFailure struct {
	name   string
	then   string // "restart" or "stop"
	reason string // the failing probe's message
}

// after is what a service does once its process group is gone.
type after int

const (
	thenStopped after = iota
	thenStart
	thenPolicy // the main process ended on its own: the restart policy decides
	thenCheck  // a check failed with then = "restart": restart, through backoff and the start limit
)

type requestKind int

const (
	reqStart requestKind = iota
	reqStop
	reqRestart
	reqSignal
	reqUpdate
	reqRemove
	reqKill // a hurried shutdown: SIGKILL now to a service that is stopping
)

type request struct {
	kind  requestKind
	sig   syscall.Signal
	group bool
	spec  *spec.Service
	reply chan error
}

// pidfileWait bounds how long a daemonizing service may take to write its
// pid file after its start command exits.
const pidfileWait = 10 * time.Second

// service is one service's state machine. Every field below mu is owned by
// the run goroutine; others send requests and read snapshots.
type service struct {
	d    *Daemon
	name string
	reqs chan request
	done chan struct{}

	mu       sync.Mutex
	snap     api.Status
	snapSpec *spec.Service
	sinks    []*logsink.Sink
	files    *declared    // the files it writes itself (logfiles.go)
	cg       *proc.Cgroup // set once, before run starts
	snapPgid int          // pgid as of the last publish, for Owner

	spec      *spec.Service
	state     api.State
	main      *proc.Process
	pgid      int
	mainDone  <-chan struct{}
	launcher  *proc.Process
	launchC   <-chan struct{}
	timer     *time.Timer
	timerC    <-chan time.Time
	ticker    *time.Ticker
	pollC     <-chan time.Time
	depsC     <-chan struct{}
	deadline  time.Time // pid file wait
	then      after
	lastExit  proc.Exit
	failures  int
	starts    []time.Time
	restarts  int
	startedAt time.Time
	detail    string
	removed   bool
	stdout    *logsink.Sink
	stderr    *logsink.Sink
	logCfg    spec.Log
	drains    *sync.WaitGroup // the drains writing into stdout and stderr
	mon       *health.Monitor
	healthC   chan health.Event
	// explained: lastExit says why the daemon stopped this run (a failed
	// check), which its exit status ("signal TERM") would hide.
	explained bool
	// release is where var/www/<name> pointed at the last start (""
	// for a plain directory), once released is set: see newRelease.
	release  string
	released bool
	// killed: the last stop ended in SIGKILL (its timeout, or a hurried
	// shutdown); read by the shutdown under mu (wasKilled).
	killed bool

	// Readiness the run announces itself (ready.go).
	runs       int // counts the spawns of runs (prepare): a word of an earlier run is stale
	launching  *launch
	readyC     chan readyWord
	readyPipe  *os.File       // fd:N: the daemon's end, while it waits
	nsock      *notify.Socket // ready = "notify": for the loop's lifetime
	wd         *time.Timer
	wdC        <-chan time.Time
	early      bool         // the run announced itself before its main process was known (start_command)
	notes      atomic.Int32 // datagrams read by the socket's goroutine and not yet handled
	statusText string       // STATUS=
	announced  string       // "reloading" or "stopping", from RELOADING=1 / STOPPING=1
}

func newService(d *Daemon, s *spec.Service, cg *proc.Cgroup) *service {
	sv := &service{d: d, name: s.Name, spec: s, cg: cg, reqs: make(chan request), done: make(chan struct{}), healthC: make(chan health.Event, 16), readyC: make(chan readyWord, 16)}
	sv.snap = api.Status{Name: s.Name, State: api.Stopped, Since: time.Now(), Autostart: s.Autostart}
	sv.snapSpec = s
	return sv
}

func (s *service) run() {
	defer close(s.done)
	defer s.closeLogs()
	defer s.stopMonitor()
	defer s.closeNotify()
	defer s.endReadiness()
	for !(s.removed && s.state.Down()) {
		select {
		case r := <-s.reqs:
			r.reply <- s.request(r)
		case <-s.mainDone:
			s.takeNotes()
			select {
			case <-s.mainDone: // still the same main (MAINPID= may have named another)
				s.handle(event{kind: evExit})
			default:
			}
		case <-s.launchC:
			s.handle(event{kind: evLaunched})
		case <-s.timerC:
			s.timerC = nil
			s.handle(event{kind: evTimer})
		case <-s.depsC:
			s.depsC = nil
			s.handle(event{kind: evDeps})
		case <-s.pollC:
			s.handle(event{kind: evPoll})
		case w := <-s.readyC:
			s.word(w)
		case <-s.wdC:
			s.wdC = nil
			s.handle(event{kind: evWatchdog})
		case hev := <-s.healthC:
			if ev, ok := s.health(hev); ok {
				s.handle(ev)
			}
		}
	}
	s.stopTimer()
	s.stopPoll()
	if s.cg != nil {
		_ = s.cg.Remove()
	}
}

// send hands a request to the run goroutine and waits for its answer.
func (s *service) send(r request) error {
	r.reply = make(chan error, 1)
	select {
	case s.reqs <- r:
		return <-r.reply
	case <-s.done:
		return fmt.Errorf("%s: removed", s.name)
	}
}

func (s *service) request(r request) error {
	switch r.kind {
	case reqStart:
		s.handle(event{kind: evStart})
	case reqStop:
		s.handle(event{kind: evStop})
	case reqRestart:
		s.handle(event{kind: evRestart})
	case reqSignal:
		return s.signal(r.sig, r.group)
	case reqUpdate:
		s.handle(event{kind: evUpdate, spec: r.spec})
	case reqRemove:
		s.handle(event{kind: evRemove})
	case reqKill:
		if s.state == api.Stopping {
			s.kill()
		}
	}
	return nil
}

// handle is the state machine: every transition is here, read top to bottom
// with docs/states.md beside it.
func (s *service) handle(ev event) {
	switch ev.kind {
	case evStart:
		switch s.state {
		case api.Stopped, api.Exited, api.Fatal, api.Backoff:
			s.failures, s.starts = 0, nil // a person asked: forget the crash history
			s.begin()
		case api.Stopping:
			s.then = thenStart
		}

	case evStop:
		switch s.state {
		case api.Starting, api.Running:
			if s.busy() {
				s.terminate(thenStopped)
			} else {
				s.set(api.Stopped, "") // was only waiting for dependencies
			}
		case api.Backoff, api.Exited, api.Fatal:
			s.set(api.Stopped, "")
		case api.Stopping:
			s.then = thenStopped
		}

	case evRestart:
		s.failures, s.starts = 0, nil
		switch s.state {
		case api.Starting, api.Running:
			if s.busy() {
				s.terminate(thenStart)
			} else {
				s.begin()
			}
		case api.Stopping:
			s.then = thenStart
		default:
			s.begin()
		}

	case evUpdate:
		s.spec = ev.spec
		s.publish()
		if !s.state.Down() {
			s.handle(event{kind: evRestart})
		}

	case evRemove:
		s.removed = true
		s.handle(event{kind: evStop})

	case evExit:
		s.stopMonitor()
		s.stopWatchdog()
		s.endReadiness()
		if ex := s.main.Exit(); !s.explained {
			s.lastExit = ex
		}
		s.explained = false
		s.main, s.mainDone = nil, nil
		s.d.forgetPid(s.name)
		s.d.log.Info("exited", "service", s.name, "status", s.lastExit.String(), "state", s.state.String())
		if s.state == api.Stopping {
			s.settle()
			return
		}
		// Ended on its own. Leftovers (workers of a killed master) are
		// stopped before any restart, so they cannot hold its port.
		if s.groupEmpty() {
			s.pgid = 0
			s.applyPolicy()
		} else {
			s.terminate(thenPolicy)
		}

	case evLaunched:
		ex := s.launcher.Exit()
		s.launcher, s.launchC = nil, nil
		if s.state == api.Stopping {
			s.settle()
			return
		}
		if !ex.Success() {
			s.lastExit = ex
			s.d.log.Warn("start command failed", "service", s.name, "status", ex.String())
			s.terminate(thenPolicy)
			return
		}
		s.deadline = time.Now().Add(pidfileWait)
		s.startPoll()
		s.handle(event{kind: evPoll})

	case evTimer:
		switch s.state {
		case api.Backoff:
			s.begin()
		case api.Starting:
			if r := s.spec.Readiness(); r.Announced() && s.active() {
				// A start whose word never came has failed.
				s.lastExit = proc.Exit{Err: fmt.Errorf("not ready within ready_timeout %v (%s)", s.spec.ReadyTimeout.D(), readyDetail(r))}
				s.explained = true
				s.d.log.Warn("ready timeout", "service", s.name, "timeout", s.spec.ReadyTimeout.D().String())
				s.terminate(thenPolicy)
				return
			}
			s.set(api.Running, "")
		case api.Stopping:
			s.kill()
		}

	case evPoll:
		switch {
		case s.state == api.Stopping:
			s.settle()
		case s.state == api.Starting && s.main == nil && s.launcher == nil && !s.deadline.IsZero():
			s.adoptPidfile()
		}

	case evReady:
		if s.state == api.Starting && s.active() && s.spec.Readiness().Kind == spec.ReadyChecks {
			s.set(api.Running, "")
		}

	case evAnnounced:
		switch {
		case ev.run != s.runs || s.state != api.Starting:
		case s.active():
			s.ready()
		case s.busy():
			s.early = true // a daemonizing start: up() takes it
		}

	case evNotify:
		s.notified(ev)

	case evWatchdog:
		if s.active() && (s.state == api.Starting || s.state == api.Running) {
			s.lastExit = proc.Exit{Err: fmt.Errorf("watchdog timeout: no WATCHDOG=1 within %v", s.spec.Watchdog.D())}
			s.explained = true
			s.d.event(api.Event{Service: s.name, Kind: "watchdog", Message: "watchdog timeout", Pid: s.main.Pid})
			s.d.log.Warn("watchdog timeout", "service", s.name, "watchdog", s.spec.Watchdog.D().String())
			s.terminate(thenPolicy)
		}

	case evCheckFailed:
		c := ev.check
		switch {
		case c.then == "restart" && s.active() && (s.state == api.Starting || s.state == api.Running):
			s.lastExit = proc.Exit{Err: fmt.Errorf("check %s failed: %s", c.name, c.reason)}
			s.explained = true
			s.terminate(thenCheck)
		case c.then == "stop" && s.active():
			s.lastExit = proc.Exit{Err: fmt.Errorf("stopped by check %s: %s", c.name, c.reason)}
			s.explained = true
			s.terminate(thenStopped)
		}

	case evDeps:
		if s.state == api.Starting && !s.active() && s.launcher == nil {
			s.begin()
		}
	}
}

// active reports whether the service has a main process.
func (s *service) active() bool { return s.main != nil }

// busy reports whether the service has anything running or pending: a main
// process, a start command, or a wait for the pid file it should write.
func (s *service) busy() bool { return s.main != nil || s.launcher != nil || !s.deadline.IsZero() }

// ready is the announced readiness of the current run: running, and the
// watchdog armed.
func (s *service) ready() {
	s.stopTimer() // ready_timeout
	s.endReadiness()
	s.set(api.Running, "")
	if s.spec.Readiness().Kind == spec.ReadyNotify {
		s.armWatchdog()
	}
}

// notified takes in a datagram of the notification socket: only the
// current run's processes are heard (SO_PASSCRED vouches for the pid,
// owns places it).
func (s *service) notified(ev event) {
	d := ev.note
	if !s.busy() || s.state == api.Stopping && !d.Msg.Stopping {
		return
	}
	if !s.owns(ev.from) {
		s.d.log.Warn("notification from a process not of this service ignored", "service", s.name, "pid", d.From.Pid)
		return
	}
	if d.Err != nil {
		s.d.log.Warn("notification refused", "service", s.name, "pid", d.From.Pid, "err", d.Err.Error())
		return
	}
	m := d.Msg
	if m.MainPID != 0 && s.active() { // without a main yet, the pid file names it
		if err := s.follow(m.MainPID); err != nil {
			s.d.log.Warn("notification refused", "service", s.name, "pid", d.From.Pid, "err", err.Error())
		} else {
			s.d.log.Info("main pid", "service", s.name, "pid", m.MainPID)
		}
	}
	if m.HasStatus {
		s.statusText = m.Status
	}
	switch {
	case m.Reloading:
		s.announced = "reloading"
	case m.Stopping:
		s.announced = "stopping"
	case m.Ready:
		s.announced = "" // READY=1 ends a reload
	}
	if m.Watchdog && s.wd != nil {
		s.armWatchdog()
	}
	s.publish()
	switch {
	case m.Trigger:
		s.handle(event{kind: evWatchdog})
	case m.Ready && s.state == api.Starting && s.spec.Readiness().Kind == spec.ReadyNotify:
		if s.active() {
			s.ready()
		} else {
			s.early = true // a daemonizing start: up() takes it
		}
	}
}

// begin starts the service, or waits for its dependencies first.
func (s *service) begin() {
	s.stopTimer()
	s.stopPoll()
	s.deadline = time.Time{}
	watch := s.d.watch() // taken before the check, so no change is missed
	if dep := s.d.unreadyDependency(s.spec); dep != "" {
		s.depsC = watch
		s.set(api.Starting, "waiting for "+dep)
		return
	}
	s.depsC = nil
	s.newRelease()
	l, err := s.prepare()
	if err != nil {
		s.lastExit = proc.Exit{Err: fmt.Errorf("start failed: %w", err)}
		s.d.log.Warn("start failed", "service", s.name, "err", err.Error())
		s.applyPolicy()
		return
	}
	s.launching = l
	defer func() { s.launching.done(); s.launching = nil }()
	now := time.Now()
	s.starts = append(s.starts, now)
	s.startedAt = now
	if g := s.d.guard; g != nil {
		if err := g(s.spec); err != nil {
			s.lastExit = proc.Exit{Err: fmt.Errorf("start refused: %w", err)}
			s.d.log.Warn("start refused", "service", s.name, "err", err.Error())
			s.applyPolicy()
			return
		}
	}
	if s.spec.Daemonizes() {
		argv := s.spec.StartCommand
		if len(argv) == 0 {
			argv = s.argv()
		}
		_ = os.Remove(s.spec.PIDFile) // a stale one would be believed
		p, err := s.spawn(argv)
		if err != nil {
			s.lastExit = proc.Exit{Err: fmt.Errorf("start failed: %w", err)}
			s.applyPolicy()
			return
		}
		s.launcher, s.launchC, s.pgid = p, p.Done(), p.Pid
		s.set(api.Starting, "running start command")
		return
	}
	p, err := s.spawn(s.argv())
	if err != nil {
		s.lastExit = proc.Exit{Err: fmt.Errorf("start failed: %w", err)}
		s.d.log.Warn("start failed", "service", s.name, "err", err.Error())
		s.applyPolicy()
		return
	}
	s.up(p, p.Pid)
}

// up records a main process and enters starting (or running at once).
func (s *service) up(p *proc.Process, pgid int) {
	s.main, s.mainDone, s.pgid = p, p.Done(), pgid
	s.d.rememberPid(s.name, proc.Record{Pid: p.Pid, StartTime: p.StartTime, Pgid: pgid})
	s.d.log.Info("started", "service", s.name, "pid", p.Pid)
	r := s.spec.Readiness()
	if s.spec.HasChecks() {
		s.startMonitor()
	}
	switch {
	case r.Announced():
		s.set(api.Starting, readyDetail(r))
		s.setTimer(s.spec.ReadyTimeout.D())
		if s.early { // said so while its start command ran
			s.ready()
		}
		return
	case r.Kind == spec.ReadyChecks:
		s.set(api.Starting, "waiting for checks")
		return
	}
	if s.spec.ReadyAfter == 0 {
		s.set(api.Running, "")
		return
	}
	s.set(api.Starting, "")
	s.setTimer(s.spec.ReadyAfter.D())
}

// adoptPidfile follows the process a daemonizing start command left behind,
// once its pid file names a process that is provably this service's.
func (s *service) adoptPidfile() {
	pid, err := proc.ReadPID(s.spec.PIDFile)
	if err == nil {
		var p *proc.Process
		if p, err = s.d.adopt(s, pid); err == nil {
			s.stopPoll()
			s.deadline = time.Time{}
			s.up(p, pgidOf(pid))
			return
		}
	}
	if time.Now().After(s.deadline) {
		s.stopPoll()
		s.deadline = time.Time{}
		s.lastExit = proc.Exit{Err: fmt.Errorf("pid file %s: %v", s.spec.PIDFile, err)}
		s.d.log.Warn("start failed", "service", s.name, "err", s.lastExit.Err.Error())
		s.terminate(thenPolicy)
	}
}

// terminate asks the whole process group (and cgroup) to stop, and arms the
// stop timeout after which everything is killed.
func (s *service) terminate(then after) {
	s.stopMonitor()
	s.stopWatchdog()
	s.endReadiness()
	s.then = then
	s.stopTimer()
	s.depsC = nil
	s.deadline = time.Time{}
	s.set(api.Stopping, "")
	s.mu.Lock()
	s.killed = false
	s.mu.Unlock()
	sig, _ := spec.ParseSignal(s.spec.Stop.Signal)
	if s.active() && len(s.spec.StopCommand) > 0 {
		if _, err := s.spawn(s.spec.StopCommand); err != nil {
			s.d.log.Warn("stop command failed", "service", s.name, "err", err.Error())
			s.signalAll(sig)
		}
	} else {
		s.signalAll(sig)
		if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
			// A stopped (SIGSTOP'd, frozen) process would hold the
			// signal until continued, and the stop would wait out the
			// whole timeout: continue it, as systemd and runit do.
			s.signalAll(syscall.SIGCONT)
		}
	}
	s.setTimer(s.spec.Stop.Timeout.D())
	s.settle()
}

// kill is the end of the stop timeout: SIGKILL for everything left.
func (s *service) kill() {
	s.d.log.Warn("stop timeout; killing", "service", s.name, "timeout", s.spec.Stop.Timeout.D().String())
	s.signalAll(syscall.SIGKILL)
	if s.cg != nil {
		s.cg.Kill()
	}
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	s.startPoll()
}

func (s *service) wasKilled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killed
}

// settle finishes a stop once the main process and its group are gone, and
// otherwise keeps looking.
func (s *service) settle() {
	if s.active() || s.launcher != nil {
		return // evExit / evLaunched come back here
	}
	if !s.groupEmpty() {
		s.startPoll()
		return
	}
	s.stopPoll()
	s.stopTimer()
	s.pgid = 0
	switch s.then {
	case thenStart:
		s.begin()
	case thenPolicy:
		s.applyPolicy()
	case thenCheck:
		s.restartAfterFailure()
	default:
		s.set(api.Stopped, "")
	}
}

// applyPolicy decides what follows an exit nobody asked for.
func (s *service) applyPolicy() {
	r := s.spec.Restart
	restart := r.Policy == spec.Always || (r.Policy == spec.OnFailure && !s.lastExit.Success())
	if !restart || s.removed {
		s.set(api.Exited, "")
		return
	}
	s.restartAfterFailure()
}

// restartAfterFailure schedules the next start after a crash or a failed
// check, so both go through the same backoff and start limit: a failing
// check can never cause a restart storm.
func (s *service) restartAfterFailure() {
	r := s.spec.Restart
	if s.removed {
		s.set(api.Exited, "")
		return
	}
	if time.Since(s.startedAt) >= r.StableAfter.D() {
		s.failures = 0 // a run that lasted counts as a fresh start
	}
	cutoff := time.Now().Add(-r.Window.D())
	for len(s.starts) > 0 && s.starts[0].Before(cutoff) {
		s.starts = s.starts[1:]
	}
	if len(s.starts) >= r.Limit {
		s.set(api.Fatal, fmt.Sprintf("started %d times within %v", len(s.starts), r.Window.D()))
		return
	}
	delay := r.Backoff.D() << min(s.failures, 30)
	if delay > r.MaxBackoff.D() || delay < 0 {
		delay = r.MaxBackoff.D()
	}
	s.failures++
	s.restarts++
	s.set(api.Backoff, "restart in "+delay.String())
	s.setTimer(delay)
}

func (s *service) groupEmpty() bool {
	if s.cg != nil && !s.cg.Empty() {
		return false
	}
	return !proc.GroupAlive(s.pgid)
}

// signalAll signals every process of the service exactly once: each member
// of its cgroup (children are cloned into it, so the process group is a
// subset), or else its process group — a shell trap must not run twice.
func (s *service) signalAll(sig syscall.Signal) {
	if s.cg != nil {
		s.cg.Signal(sig)
		return
	}
	if s.main != nil && s.pgid != s.main.Pid {
		_ = syscall.Kill(s.main.Pid, sig) // a daemon that did not lead its own group
	}
	if s.pgid > 1 {
		_ = proc.SignalGroup(s.pgid, sig)
	}
}

// signal passes a signal to the main process, or to all of the service's
// processes (`upkeep signal --all`).
func (s *service) signal(sig syscall.Signal, all bool) error {
	if !s.active() {
		return fmt.Errorf("%s is not running", s.name)
	}
	if all {
		s.signalAll(sig)
		return nil
	}
	return syscall.Kill(s.main.Pid, sig)
}

// set moves to a state and publishes it.
func (s *service) set(st api.State, detail string) {
	if st != s.state {
		s.d.log.Info("state", "service", s.name, "from", s.state.String(), "to", st.String(), "detail", detail)
		pid := 0
		if s.main != nil {
			pid = s.main.Pid
		}
		msg := detail
		if (st == api.Backoff || st == api.Exited || st == api.Fatal) && s.lastExit != (proc.Exit{}) {
			msg = strings.TrimSuffix(s.lastExit.String()+"; "+detail, "; ")
		}
		s.d.event(api.Event{Service: s.name, Kind: "state", From: s.state.String(), State: st.String(), Message: msg, Pid: pid})
	}
	s.state, s.detail = st, detail
	s.publish()
	s.d.notify()
}

func (s *service) publish() {
	pid := 0
	if s.main != nil {
		pid = s.main.Pid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.State != s.state {
		s.snap.Since = time.Now()
	}
	s.snap.State, s.snap.Pid, s.snap.Restarts, s.snap.Detail = s.state, pid, s.restarts, s.detail
	s.snap.StatusText, s.snap.Announced = s.statusText, s.announced
	s.snapPgid = s.pgid
	s.snap.StartedAt = time.Time{}
	if pid != 0 {
		s.snap.StartedAt = s.startedAt
	}
	s.snap.Autostart = s.spec.Autostart
	s.snapSpec = s.spec
	s.snap.LastExit = ""
	if s.lastExit != (proc.Exit{}) {
		s.snap.LastExit = s.lastExit.String()
	}
}

// newRelease forgets the restarts, the last exit and the crash history
// when the service starts from another release than last time (a deploy
// or a rollback switched var/www/<name>): they belong to the release that
// made them, and after a rollback the failed release's would read as the
// old one's. One readlink per start.
func (s *service) newRelease() {
	rel, _ := os.Readlink(s.spec.Dir)
	if s.released && rel != s.release {
		s.restarts, s.lastExit, s.failures, s.starts = 0, proc.Exit{}, 0, nil
	}
	s.release, s.released = rel, true
}

func (s *service) specSnapshot() *spec.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapSpec
}

func (s *service) snapshot() api.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *service) setTimer(d time.Duration) {
	s.stopTimer()
	s.timer = time.NewTimer(d)
	s.timerC = s.timer.C
}

func (s *service) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer, s.timerC = nil, nil
	}
}

// startPoll looks every 10ms for leftovers to go or a pid file to appear;
// it runs only while such a wait is on, so an idle daemon costs no CPU.
func (s *service) startPoll() {
	if s.ticker == nil {
		s.ticker = time.NewTicker(10 * time.Millisecond)
		s.pollC = s.ticker.C
	}
}

func (s *service) stopPoll() {
	if s.ticker != nil {
		s.ticker.Stop()
		s.ticker, s.pollC = nil, nil
	}
}

// closeLogs closes the sinks once every drain writing to them is done.
func (s *service) closeLogs() {
	out, errs, wg := s.stdout, s.stderr, s.drains
	s.stdout, s.stderr = nil, nil
	if out == nil {
		return
	}
	go func() {
		wg.Wait()
		out.Close()
		errs.Close()
	}()
}
