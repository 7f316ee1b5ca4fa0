package host

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"upkeep/internal/api"
)

// Follower is what a daemon offers, beyond Daemon, to follow a start as it
// happens (*control.Client does): its event stream and its status.
type Follower interface {
	Events(ctx context.Context, service string, follow bool, fn func(api.Event)) error
	Status(ctx context.Context, names []string) ([]api.Status, error)
}

// checkPoll is how often a deploy looks at the checks of the service it
// waits for: per-run check results are not events (a check in its start
// grace runs four times a second), so they are read from the status.
const checkPoll = 500 * time.Millisecond

// follow runs act (the daemon's start or restart of name, waiting) and,
// when the daemon is a Follower, prints each state change and check
// failure as it happens to h.Progress, and gives up as soon as the
// service is judged failed — fatal (its start limit), exited, or a check
// past its cycles — rather than waiting out the timeout in silence.
func (h *Host) follow(ctx context.Context, d Daemon, name string, timeout time.Duration, act func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	f, ok := d.(Follower)
	if !ok {
		return act(wctx)
	}
	out := h.Progress
	if out == nil {
		out = h.Out
	}
	since := time.Now()
	w := &watch{name: name, out: out, failed: make(chan string, 1), seen: map[string]time.Time{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Follow includes the recent backlog: only what happens from now
		// is this start's.
		_ = f.Events(wctx, name, true, func(e api.Event) {
			if !e.Time.Before(since) {
				w.event(e)
			}
		})
	})
	wg.Go(func() {
		t := time.NewTicker(checkPoll)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			if st, err := f.Status(wctx, []string{name}); err == nil && len(st) == 1 {
				w.status(st[0])
			}
		}
	})
	done := make(chan error, 1)
	go func() { done <- act(wctx) }()
	var err error
	select {
	case err = <-done:
	case reason := <-w.failed:
		cancel() // the daemon's wait ends with the request
		<-done
		err = fmt.Errorf("%s", reason)
	}
	cancel()
	wg.Wait()
	if err != nil {
		// The daemon's answer can beat its last event to us: say where
		// the service ended up if the stream did not.
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		if st, serr := f.Status(sctx, []string{name}); serr == nil && len(st) == 1 {
			w.final(st[0])
		}
		scancel()
	}
	if err != nil && time.Since(since) >= timeout {
		// The daemon's own words end in "context deadline exceeded".
		err = fmt.Errorf("%s did not come up within %v (%s)", name, timeout, w.last())
	}
	return err
}

// watch is what a deploy has seen of the service it waits for.
type watch struct {
	name   string
	out    io.Writer
	failed chan string // the first reason it was judged failed

	mu    sync.Mutex
	state string               // the last state seen
	check string               // the last check failure seen
	seen  map[string]time.Time // per check: the start of the last result printed
}

func (w *watch) say(format string, args ...any) {
	fmt.Fprintf(w.out, "%s: "+format+"\n", append([]any{w.name}, args...)...)
}

// event prints one event of the daemon's and judges it.
func (w *watch) event(e api.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	reason := ""
	switch e.Kind {
	case "state":
		w.state = e.State
		line := e.From + " -> " + e.State
		if e.Pid != 0 {
			line += fmt.Sprintf(" (pid %d)", e.Pid)
		}
		if e.Message != "" {
			line += ": " + e.Message
		}
		w.say("%s", line)
		switch e.State {
		case api.Fatal.String(), api.Exited.String():
			// As the daemon's own wait says it ("www-x: fatal (exit 3):
			// ..."), whichever of the two is first.
			reason = fmt.Sprintf("%s: %s: %s", w.name, e.State, e.Message)
		}
	case "check":
		w.say("check %s %s", e.Check, e.Message)
		if !e.OK {
			w.check = e.Check + " " + e.Message
			reason = fmt.Sprintf("%s: check %s %s", w.name, e.Check, e.Message)
		}
	default:
		if e.Message != "" {
			w.say("%s: %s", e.Kind, e.Message)
		}
	}
	if reason != "" {
		select {
		case w.failed <- reason:
		default:
		}
	}
}

// status prints the check failures that are new since the last look.
func (w *watch) status(st api.Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == "" {
		w.state = st.State.String()
	}
	for _, c := range st.Checks {
		if c.Last == nil || c.Last.OK || !c.Last.Started.After(w.seen[c.Name]) {
			continue
		}
		w.seen[c.Name] = c.Last.Started
		grace := ""
		if c.Streak == 0 {
			grace = " (in its start grace: does not count yet)"
		}
		w.check = c.Name + ": " + c.Last.Message
		w.say("check %s failed: %s%s", c.Name, c.Last.Message, grace)
	}
}

// final prints the state the service is in when the wait failed, unless
// it was the last one printed.
func (w *watch) final(st api.Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := st.State.String(); s != w.state {
		line := "now " + s
		if st.LastExit != "" {
			line += " (" + st.LastExit + ")"
		}
		if st.Detail != "" {
			line += ": " + st.Detail
		}
		w.say("%s", line)
		w.state = s
	}
}

// last says where the service was when the wait ended.
func (w *watch) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := "still " + w.state
	if w.state == "" {
		s = "no state change seen"
	}
	if w.check != "" {
		s += "; last check failure: " + w.check
	}
	return s
}
