package boot

import (
	"context"
	"fmt"
	"time"

	"upkeep/internal/api"
)

// Source is what Report reads of the daemon (supervise.Daemon).
type Source interface {
	Status(names []string) ([]api.Status, error)
	Follow() (<-chan api.Event, func())
}

// ReadyLimit bounds the wait for READY=1: a service that never leaves
// starting (a dependency that is fatal, a check that never passes) must not
// keep the whole host's boot waiting until systemd's start timeout kills
// upkeep and every service with it.
var ReadyLimit = 60 * time.Second

// Report tells the service manager how the daemon is doing: READY=1 once
// every autostart service is running or has failed (after its readiness:
// starting does not count), then STATUS= with the counts at each change,
// until ctx ends. With a nil notifier it returns at once.
func Report(ctx context.Context, n *Notifier, src Source) {
	if n == nil {
		return
	}
	events, stop := src.Follow()
	defer stop()
	limit := time.NewTimer(ReadyLimit)
	defer limit.Stop()
	ready, last := false, ""
	for {
		st, err := src.Status(nil)
		if err == nil {
			settled, status := Counts(st)
			if !ready && (settled || limit.C == nil) {
				ready = true
				_ = n.Send("READY=1\nSTATUS=" + status)
				last = status
			} else if ready && status != last {
				_ = n.Send("STATUS=" + status)
				last = status
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-limit.C:
			limit.C = nil
		}
	}
}

// Counts says whether every autostart service has settled (running, or
// failed: backoff, fatal, exited), and the STATUS= text: "12 running,
// 1 failed", with those still starting when there are any.
func Counts(st []api.Status) (settled bool, status string) {
	settled = true
	var running, failed, starting int
	for _, s := range st {
		switch s.State {
		case api.Running:
			running++
		case api.Backoff, api.Fatal, api.Exited:
			failed++
		case api.Starting:
			starting++
		}
		if s.Autostart && (s.State == api.Starting || s.State == api.Stopped) {
			settled = false
		}
	}
	status = fmt.Sprintf("%d running, %d failed", running, failed)
	if starting > 0 {
		status += fmt.Sprintf(", %d starting", starting)
	}
	return settled, status
}

// KeepAlive answers the service manager's watchdog: WATCHDOG=1 every
// n.Watchdog (half of WATCHDOG_USEC) while alive says the daemon works,
// until ctx ends. A daemon whose state is wedged stops pinging, and
// systemd restarts it, as WatchdogSec= promises.
func KeepAlive(ctx context.Context, n *Notifier, alive func() bool) {
	if n == nil || n.Watchdog <= 0 {
		return
	}
	t := time.NewTicker(n.Watchdog)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				_ = n.Send("WATCHDOG=1")
			}
		}
	}
}
