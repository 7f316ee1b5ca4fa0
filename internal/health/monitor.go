package health

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"upkeep/internal/spec"
)

// Target is what resource checks measure; the supervisor supplies it.
type Target interface {
	Pids() []int        // the service's processes now (its cgroup members, or its main pid)
	Started() time.Time // when the current run started
}

// Result is one run of one check.
type Result struct {
	Check   string        `json:"check"`
	OK      bool          `json:"ok"`
	Message string        `json:"message"` // "HTTP 200", "dial tcp ...: connection refused", "rss 210.0M > 200.0M", "timeout after 5s"
	Latency time.Duration `json:"latency_ns"`
	Value   float64       `json:"value,omitempty"` // resource checks: percent, bytes, count, seconds
	Due     time.Time     `json:"due"`             // when the schedule wanted the run
	Started time.Time     `json:"started"`         // when it ran; Started-Due is the lateness
}

// Kind is what an Event reports.
type Kind int

const (
	Ran       Kind = iota // every result
	Failed                // the check crossed its failure threshold: the supervisor takes Check.Then
	Recovered             // after Failed, Check.Recover consecutive successes
	Ready                 // every check of this monitor has passed at least once (sent once)
)

func (k Kind) String() string {
	switch k {
	case Ran:
		return "ran"
	case Failed:
		return "failed"
	case Recovered:
		return "recovered"
	case Ready:
		return "ready"
	}
	return "unknown"
}

// Event is what a Monitor sends to the supervisor.
type Event struct {
	Kind   Kind
	Check  *spec.Check // nil for Ready
	Result Result
	Streak int // consecutive failures at this point
}

// CheckStatus is a check's state for status displays.
type CheckStatus struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Last     *Result `json:"last,omitempty"`
	Streak   int     `json:"streak"`  // consecutive failures that count (not those in grace)
	Failing  bool    `json:"failing"` // threshold crossed and not yet recovered
	Passes   int     `json:"passes"`
	Failures int     `json:"failures"` // failed results that count: not those in the start grace, which the docs promise do not
}

// Monitor runs the checks of one run of a service.
type Monitor struct {
	service string
	exec    Exec // how its exec checks run
	target  Target
	out     chan<- Event
	ran     func(Event) // when set, Ran events go here instead of out
	probe   func(context.Context, *spec.Check, Target, *ProbeState) Result
	done    chan struct{}
	cancel  context.CancelFunc // ends probes in flight at Stop
	stop    sync.Once
	wg      sync.WaitGroup

	mu     sync.Mutex
	status []CheckStatus
	passed []bool
	ready  bool
}

// Start runs one service run's checks, each in its own goroutine on its own
// schedule (first run at once, then fixed-rate at start+k*interval; a run
// that overruns skips missed slots rather than bunching), until Stop. Events
// go to out; no send blocks past Stop. Each check is copied, so the caller
// may reuse the slice. A monitor with no checks is vacuously ready: it sends
// Ready once. Exec checks fail here with nothing to run them through:
// StartObserved is given how they run.
func Start(service string, checks []spec.Check, t Target, out chan<- Event) *Monitor {
	return StartObserved(service, checks, t, Exec{}, out, nil)
}

// StartObserved is Start with exec checks run as ex says, and every Ran
// event given to ran, in the check's own goroutine, instead of being sent
// on out; ran must be safe for concurrent use and quick. Only the events that need the supervisor's
// decision (Failed, Recovered, Ready) then cross the channel: one goroutine
// hand-off less for every check run.
func StartObserved(service string, checks []spec.Check, t Target, ex Exec, out chan<- Event, ran func(Event)) *Monitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		service: service,
		exec:    ex,
		target:  t,
		out:     out,
		ran:     ran,
		probe:   runProbe, // read here, once: a test replaces it between monitors
		done:    make(chan struct{}),
		cancel:  cancel,
		status:  make([]CheckStatus, len(checks)),
		passed:  make([]bool, len(checks)),
	}
	for i := range checks {
		c := checks[i]
		m.status[i] = CheckStatus{Name: c.Name, Type: c.Type}
		m.wg.Add(1)
		go m.run(ctx, i, &c)
	}
	if len(checks) == 0 {
		m.ready = true
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.send(Event{Kind: Ready, Result: Result{OK: true, Message: "no checks", Started: time.Now()}})
		}()
	}
	return m
}

// Stop ends the checks, cancelling probes in flight, and returns when all
// of the monitor's goroutines (and the processes of exec checks) are gone.
func (m *Monitor) Stop() {
	m.stop.Do(func() {
		close(m.done)
		m.cancel()
	})
	m.wg.Wait()
}

// Snapshot returns the state of every check, in the order of the checks.
func (m *Monitor) Snapshot() []CheckStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CheckStatus, len(m.status))
	copy(out, m.status) // Last points at a Result that is never written again
	return out
}

func (m *Monitor) stopped() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// send delivers ev unless the monitor is stopped first. It reports false
// when the monitor stopped.
func (m *Monitor) send(ev Event) bool {
	if m.stopped() {
		return false
	}
	select {
	case m.out <- ev:
		return true
	case <-m.done:
		return false
	}
}

// run is one check's loop: it owns the check's probe state and judge.
func (m *Monitor) run(ctx context.Context, i int, c *spec.Check) {
	defer m.wg.Done()
	state := ProbeState{service: m.service, exec: m.exec}
	defer state.Close()
	j := newJudge(c)
	interval := time.Duration(c.Interval)
	if interval <= 0 {
		interval = spec.DefaultCheckInterval
	}
	grace := time.Duration(c.Grace)
	passed := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	// The first run is at once (readiness); the rest are shifted by a random
	// phase, so the checks of services started together do not all fire in
	// the same instant every interval — a stall of the whole machine then
	// hits a few of them, not all at once. The phases fall on a grid of
	// `tick` shared by all checks: the checks due in one tick then run in
	// one wake-up of the daemon instead of each in its own. Waking an idle
	// Go runtime costs far more than a probe (threads unparked, the sysmon
	// thread spinning up again); with hundreds of checks a second that was
	// most of the daemon's CPU.
	phase := rand.N(interval)
	if interval >= 10*tick {
		grid := start.Add(-time.Duration(start.UnixNano() % int64(tick))) // start, down to the grid
		phase = grid.Sub(start) + rand.N(interval/tick)*tick
		if phase <= 0 {
			phase += interval
		}
	}
	for slot := int64(0); ; {
		due := start
		if slot == 0 {
			due = time.Now()
		} else {
			due = start.Add(phase + time.Duration(slot)*interval)
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-m.done:
				return
			case <-timer.C:
			}
		}
		if m.stopped() {
			return
		}
		r := m.probe(ctx, c, m.target, &state)
		if !r.OK && stalled(r, c) && !m.stopped() {
			// The deadline was seen long after it passed: this process (or
			// the whole machine) did not get to run, so the failure says
			// nothing of the service. Under a stall that would fail every
			// check in flight at once and restart healthy services in bulk;
			// ask again instead, and count that answer.
			r = m.probe(ctx, c, m.target, &state)
		}
		if m.stopped() {
			return // a probe cut short by Stop is no result
		}
		r.Due = due
		// Start grace: until the check has passed once, failures early in
		// the run are a service still coming up, not a broken one.
		inGrace := !passed && grace > 0 && r.Started.Before(m.started(start).Add(grace))
		passed = passed || r.OK
		verdict := j.add(r.OK, inGrace)
		if !m.record(i, r, inGrace, j, verdict) {
			return
		}
		// Coming up: until the first pass, within the grace, look again
		// soon (at most every readyPoll) so readiness is seen quickly.
		if !passed && grace > 0 && time.Since(m.started(start)) < grace && interval > readyPoll {
			timer.Reset(readyPoll)
			select {
			case <-m.done:
				return
			case <-timer.C:
			}
			continue // slot stays 0: due "now"
		}
		// Fixed rate: the next slot is the first one still ahead, so a run
		// that overran its interval skips the slots it missed.
		slot++
		if n := int64((time.Since(start)-phase)/interval) + 1; n > slot {
			slot = n
		}
	}
}

// runProbe is Probe; tests replace it to simulate what a real machine does
// rarely (a stalled process).
var runProbe = Probe

// stalled reports whether a failed run took far longer than its timeout
// allows: more than half the timeout again, and at least 250ms, past it.
func stalled(r Result, c *spec.Check) bool {
	timeout := timeoutOf(c)
	return r.Latency > timeout+max(timeout/2, 250*time.Millisecond)
}

// tick is the grid the checks' schedules are aligned on.
const tick = 20 * time.Millisecond

// readyPoll is how often a check that has not passed yet runs while its
// service is in its start grace.
const readyPoll = 250 * time.Millisecond

// started is when the run began, for grace: the target's word, or the
// monitor's own start without a target.
func (m *Monitor) started(fallback time.Time) time.Time {
	if m.target == nil {
		return fallback
	}
	return m.target.Started()
}

// record stores r as check i's latest result and sends its events: Ran,
// then Failed or Recovered, then Ready if this was the last check to pass
// for the first time. It reports false once the monitor is stopped.
func (m *Monitor) record(i int, r Result, inGrace bool, j *judge, v verdict) bool {
	m.mu.Lock()
	st := &m.status[i]
	last := r
	st.Last = &last
	st.Streak, st.Failing = j.streak, j.failing
	if r.OK {
		st.Passes++
	} else if !inGrace {
		st.Failures++
	}
	becameReady := false
	if r.OK && !m.passed[i] {
		m.passed[i] = true
		if !m.ready && allTrue(m.passed) {
			m.ready, becameReady = true, true
		}
	}
	m.mu.Unlock()

	c := j.check
	if m.ran != nil {
		if m.stopped() {
			return false
		}
		m.ran(Event{Kind: Ran, Check: c, Result: r, Streak: j.streak})
	} else if !m.send(Event{Kind: Ran, Check: c, Result: r, Streak: j.streak}) {
		return false
	}
	switch v {
	case failed:
		if !m.send(Event{Kind: Failed, Check: c, Result: r, Streak: j.streak}) {
			return false
		}
	case recovered:
		if !m.send(Event{Kind: Recovered, Check: c, Result: r, Streak: j.streak}) {
			return false
		}
	}
	if becameReady {
		return m.send(Event{Kind: Ready, Result: r})
	}
	return true
}

func allTrue(bs []bool) bool {
	for _, b := range bs {
		if !b {
			return false
		}
	}
	return true
}

type verdict int

const (
	steady verdict = iota
	failed
	recovered
)

// judge is monit's rule for one check: "if N failed within M cycles", then
// "if succeeded R cycles" to recover.
type judge struct {
	check   *spec.Check
	window  []bool // the last `within` results that count, true = failed; a ring
	next    int
	streak  int  // consecutive failures
	failing bool // Failed sent and not yet Recovered
	good    int  // consecutive successes while failing
}

func newJudge(c *spec.Check) *judge {
	within := max(c.Within, c.Cycles, 1)
	return &judge{check: c, window: make([]bool, 0, within)}
}

// add judges one result. A failure in grace is ignored altogether: it
// neither counts towards the threshold nor breaks a streak.
func (j *judge) add(ok, inGrace bool) verdict {
	if !ok && inGrace {
		return steady
	}
	if len(j.window) < cap(j.window) {
		j.window = append(j.window, !ok)
	} else {
		j.window[j.next] = !ok
		j.next = (j.next + 1) % len(j.window)
	}
	if ok {
		j.streak = 0
		if !j.failing {
			return steady
		}
		j.good++
		if j.good < max(j.check.Recover, 1) {
			return steady
		}
		j.failing, j.good = false, 0
		j.window, j.next = j.window[:0], 0
		return recovered
	}
	j.streak++
	j.good = 0
	if j.failing {
		return steady
	}
	n := 0
	for _, f := range j.window {
		if f {
			n++
		}
	}
	if n < max(j.check.Cycles, 1) {
		return steady
	}
	j.failing = true
	return failed
}
