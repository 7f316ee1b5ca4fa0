package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/health"
	"upkeep/internal/spec"
)

// runTarget is what the health monitor measures: the processes of the
// service's current run.
type runTarget struct {
	s       *service
	main    int
	started time.Time
}

func (t runTarget) Pids() []int {
	if t.s.cg != nil {
		return t.s.cg.Procs()
	}
	return []int{t.main}
}

func (t runTarget) Started() time.Time { return t.started }

// startMonitor starts the checks of the current run; a new run gets a new
// monitor, so streaks never carry over from a previous process.
func (s *service) startMonitor() {
	s.stopMonitor()
	m := health.StartObserved(s.name, s.spec.Checks, runTarget{s: s, main: s.main.Pid, started: s.startedAt}, s.checkExec(), s.healthC, s.ran)
	s.mu.Lock()
	s.mon = m
	s.mu.Unlock()
}

func (s *service) stopMonitor() {
	s.mu.Lock()
	m := s.mon
	s.mon = nil
	s.mu.Unlock()
	if m == nil {
		return
	}
	m.Stop()
	for { // drop what the stopped monitor left in the channel
		select {
		case <-s.healthC:
		default:
			return
		}
	}
}

// checks returns the current run's check states, for status.
func (s *service) checks() []health.CheckStatus {
	s.mu.Lock()
	m := s.mon
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Snapshot()
}

// ran records every check run; the monitor calls it from the check's
// goroutine, so it touches only what is safe for concurrent use (the
// journal, the metrics, the log), never the service's state.
func (s *service) ran(ev health.Event) {
	s.d.observeCheck(s.name, ev)
	if !ev.Result.OK {
		// A failure in the start grace (streak 0) is a service coming up.
		level := slog.LevelWarn
		if ev.Streak == 0 {
			level = slog.LevelInfo
		}
		s.d.log.Log(context.Background(), level, "check failed", "service", s.name, "check", ev.Result.Check,
			"message", ev.Result.Message, "streak", ev.Streak, "latency", ev.Result.Latency.String())
	}
}

// health takes in what the monitor reports: it records and logs it, runs
// an exec action, and returns the event that readiness or a restart or stop
// action is for the state machine, which alone acts on it.
func (s *service) health(ev health.Event) (event, bool) {
	switch ev.Kind {
	case health.Ran:
		s.ran(ev)
	case health.Ready:
		return event{kind: evReady}, true
	case health.Recovered:
		s.d.event(api.Event{Service: s.name, Kind: "check", Check: ev.Check.Name, OK: true, Message: "recovered: " + ev.Result.Message})
		s.d.log.Info("check recovered", "service", s.name, "check", ev.Check.Name)
	case health.Failed:
		c := ev.Check
		s.d.event(api.Event{Service: s.name, Kind: "check", Check: c.Name, Message: fmt.Sprintf("failed %d of %d cycles: %s; then %s", c.Cycles, c.Within, ev.Result.Message, c.Then)})
		s.d.log.Warn("check threshold crossed", "service", s.name, "check", c.Name, "then", c.Then, "message", ev.Result.Message)
		switch c.Then {
		case "restart", "stop":
			return event{kind: evCheckFailed, check: checkFailure{name: c.Name, then: c.Then, reason: ev.Result.Message}}, true
		case "exec":
			go s.d.hook(s.name, s.checkExec(), c, ev)
		}
	}
	return event{}, false
}

// hook runs a check's exec action off the service's loop: a slow hook
// never delays the service.
func (d *Daemon) hook(service string, ex health.Exec, c *spec.Check, ev health.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
	defer cancel()
	if err := health.RunHook(ctx, ex, c.Exec, service, ev, c.Timeout.D()); err != nil {
		d.log.Warn("check exec action failed", "service", service, "check", c.Name, "err", err.Error())
	}
}
