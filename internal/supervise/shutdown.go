package supervise

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"upkeep/internal/api"
)

// ShutdownError says that the daemon's shutdown was not clean: some
// services had to be killed, after their stop timeout or because a second
// signal hurried the daemon. The daemon exits non-zero with it, so an init
// (or `docker run`) can tell.
type ShutdownError struct {
	Killed  []string // killed with SIGKILL, sorted
	Hurried bool
}

func (e *ShutdownError) Error() string {
	why := "after their stop timeout"
	if e.Hurried {
		why = "when the shutdown was hurried"
	}
	return fmt.Sprintf("shutdown: %d service(s) killed %s: %s", len(e.Killed), why, strings.Join(e.Killed, ", "))
}

// Hurry makes a shutdown under way finish now, as a second SIGTERM or
// SIGINT asks: every service still up gets SIGKILL, without waiting for
// its dependents or its timeout. Before a shutdown it does nothing.
func (d *Daemon) Hurry() {
	if !d.shuttingDown.Load() || d.hurried.Swap(true) {
		return
	}
	d.log.Warn("hurried", "what", "a second signal: SIGKILL to every service still up")
	d.event(api.Event{Kind: "daemon", State: "hurried", Message: "a second signal: SIGKILL to every service still up"})
	d.notify() // wakes stopAll
}

// stopAll is the shutdown's stop: dependents first, in parallel where
// the graph allows, each service with its own timeout — the order of
// stopOrdered — and it times each stop, so the event log says who was
// slow ("www-x took 1.0 s of its 5 s"). Once hurried, whatever is left is
// killed regardless of order.
func (d *Daemon) stopAll(names []string) error {
	d.shuttingDown.Store(true)
	began := time.Now()
	pending := map[string]bool{}
	for _, n := range d.withDependents(names) {
		pending[n] = true
	}
	d.log.Info("stopping all services", "services", len(pending))
	sent := map[string]time.Time{}
	var killed []string
	slowest, slowTook := "", time.Duration(0)
	hurried := false
	for len(pending) > 0 {
		watch := d.watch()
		progress := false
		if d.hurried.Load() && !hurried {
			hurried = true
			for n := range pending {
				if sv, err := d.get(n); err == nil && !sv.snapshot().State.Down() {
					if _, ok := sent[n]; !ok {
						_ = sv.send(request{kind: reqStop})
						sent[n] = time.Now()
					}
					_ = sv.send(request{kind: reqKill})
				}
			}
		}
		for n := range pending {
			sv, err := d.get(n)
			if err != nil {
				delete(pending, n)
				progress = true
				continue
			}
			at, ok := sent[n]
			if ok && sv.snapshot().State.Down() {
				delete(pending, n)
				progress = true
				took := time.Since(at)
				timeout := sv.specSnapshot().Stop.Timeout.D()
				attrs := []any{"service", n, "took", took.Round(time.Millisecond).String(), "timeout", timeout.String()}
				if sv.wasKilled() {
					killed = append(killed, n)
					d.log.Warn("killed at shutdown", attrs...)
				} else {
					d.log.Info("stopped at shutdown", attrs...)
				}
				if took > slowTook {
					slowest, slowTook = fmt.Sprintf("%s took %.1f s of its %s", n, took.Seconds(), seconds(timeout)), took
				}
				if took >= 100*time.Millisecond {
					d.event(api.Event{Service: n, Kind: "stop", State: "stopped", Message: fmt.Sprintf("took %.1f s of its %s", took.Seconds(), seconds(timeout))})
				}
				continue
			}
			if ok || d.hasUpDependent(n, pending) {
				continue
			}
			if sv.snapshot().State.Down() {
				// Down before the shutdown: the stop only cancels a
				// restart (backoff); nothing to time.
				_ = sv.send(request{kind: reqStop})
				delete(pending, n)
				progress = true
				continue
			}
			_ = sv.send(request{kind: reqStop})
			sent[n] = time.Now()
			progress = true
		}
		if progress {
			continue // a removal may have freed a dependency seen earlier in this pass
		}
		<-watch
	}
	attrs := []any{"took", time.Since(began).Round(time.Millisecond).String(), "services", len(sent)}
	if slowest != "" {
		attrs = append(attrs, "slowest", slowest)
	}
	d.log.Info("all services stopped", attrs...)
	if len(killed) == 0 {
		return nil
	}
	sort.Strings(killed)
	return &ShutdownError{Killed: killed, Hurried: hurried}
}

// seconds formats a timeout the way people say it: "5 s", "0.5 s".
func seconds(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", d.Seconds()), "0"), ".") + " s"
}
