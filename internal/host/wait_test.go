package host

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/health"
)

// daemonFake is the daemon as deploy's wait sees it: an event stream and
// a status, scripted. (The real daemon's side is in test/'s deploy tests.)
type daemonFake struct {
	events []api.Event // sent once the stream is open
	mu     sync.Mutex
	status api.Status
}

func (d *daemonFake) Reload(context.Context) (api.ReloadResult, error) {
	return api.ReloadResult{}, nil
}
func (d *daemonFake) Start(context.Context, []string, control.ActOptions) error {
	return nil
}
func (d *daemonFake) Stop(context.Context, []string, control.ActOptions) error    { return nil }
func (d *daemonFake) Restart(context.Context, []string, control.ActOptions) error { return nil }

func (d *daemonFake) Events(ctx context.Context, _ string, _ bool, fn func(api.Event)) error {
	for _, e := range d.events {
		fn(e)
	}
	<-ctx.Done()
	return nil
}

func (d *daemonFake) Status(context.Context, []string) ([]api.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return []api.Status{d.status}, nil
}

// blockUntilDone is a daemon's start wait that never ends on its own.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestFollowFailsFast(t *testing.T) {
	now := time.Now()
	old := now.Add(-time.Hour)
	for _, tc := range []struct {
		name   string
		events []api.Event
		reason string
		shown  []string
	}{
		{"fatal", []api.Event{
			{Time: old, Kind: "state", From: "running", State: "fatal", Message: "an older run's"}, // backlog: not this start's
			{Time: now.Add(time.Second), Kind: "state", From: "stopped", State: "starting", Pid: 42},
			{Time: now.Add(time.Second), Kind: "state", From: "starting", State: "backoff", Message: "exit 3; restart in 10ms"},
			{Time: now.Add(time.Second), Kind: "state", From: "starting", State: "fatal", Message: "exit 3; started 3 times within 1m0s"},
		}, "www-x: fatal: exit 3; started 3 times within 1m0s", []string{
			"www-x: stopped -> starting (pid 42)\n", "www-x: starting -> backoff: exit 3; restart in 10ms\n",
		}},
		{"exited", []api.Event{{Time: now.Add(time.Second), Kind: "state", From: "starting", State: "exited", Message: "exit 1"}},
			"www-x: exited: exit 1", nil},
		{"check past its cycles", []api.Event{
			{Time: now.Add(time.Second), Kind: "check", Check: "tcp-1", Message: "failed 2 of 2 cycles: connection refused; then restart"},
		}, "www-x: check tcp-1 failed 2 of 2 cycles: connection refused; then restart", []string{"www-x: check tcp-1 failed 2 of 2 cycles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			h := &Host{Out: &out}
			d := &daemonFake{events: tc.events, status: api.Status{Name: "www-x", State: api.Starting}}
			start := time.Now()
			err := h.follow(context.Background(), d, "www-x", time.Minute, blockUntilDone)
			if err == nil || err.Error() != tc.reason {
				t.Fatalf("follow: %v, want %q", err, tc.reason)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v: waited for the timeout", took)
			}
			for _, s := range tc.shown {
				if !strings.Contains(out.String(), s) {
					t.Errorf("progress lacks %q:\n%s", s, out.String())
				}
			}
			if strings.Contains(out.String(), "an older run's") {
				t.Errorf("the backlog was printed:\n%s", out.String())
			}
		})
	}
}

// Check runs that fail are printed as the status shows them, the ones in
// the start grace marked; a wait that times out says where it stood.
func TestFollowShowsCheckFailuresAndTimesOut(t *testing.T) {
	var out bytes.Buffer
	h := &Host{Out: &out}
	d := &daemonFake{status: api.Status{Name: "www-x", State: api.Starting, Checks: []health.CheckStatus{
		{Name: "tcp-1", Last: &health.Result{OK: false, Message: "connection refused", Started: time.Now()}},
	}}}
	err := h.follow(context.Background(), d, "www-x", time.Second, func(ctx context.Context) error {
		// The daemon's own bound on the wait, and its words then.
		bound, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		<-bound.Done()
		return errors.New("www-x: still starting after waiting: context deadline exceeded")
	})
	want := "www-x did not come up within 1s (still starting; last check failure: tcp-1: connection refused)"
	if err == nil || err.Error() != want {
		t.Errorf("follow: %v, want %q", err, want)
	}
	if got := strings.Count(out.String(), "www-x: check tcp-1 failed: connection refused (in its start grace: does not count yet)\n"); got != 1 {
		t.Errorf("the failed run printed %d times, want once:\n%s", got, out.String())
	}
}

// Without a Follower (a daemon that cannot stream), follow is the plain
// wait.
func TestFollowWithoutFollower(t *testing.T) {
	h := &Host{}
	called := false
	if err := h.follow(context.Background(), nil, "www-x", time.Second, func(context.Context) error { called = true; return nil }); err != nil || !called {
		t.Errorf("follow without a follower: %v, called %v", err, called)
	}
}
