package supervise

import (
	"context"
	"errors"
)

// The set of services has one owner, as each service's state has one: the
// goroutine of ownChanges. Load, Reload and shutdown hand it their work
// and wait for it, so two reloads (a SIGHUP, a /v1/reload, a deploy) never
// interleave: the second compares the definitions with what the first
// left, and a new service is added, a changed one restarted, exactly once.
// Only the owner writes d.svcs (under d.mu, held for the write alone), so
// status and lookups never wait for a reload.

// errShutDown answers a change asked for after shutdown.
var errShutDown = errors.New("the daemon is shutting down")

// change is one piece of work for the owner; done is closed once it ran.
type change struct {
	do   func()
	done chan struct{}
}

// ownChanges runs the changes one at a time, in the order they came,
// until the one that shut the daemon down.
func (d *Daemon) ownChanges() {
	defer close(d.owned)
	for c := range d.changes {
		c.do()
		close(c.done)
		if d.closed {
			return
		}
	}
}

// change has the owner run f and waits until it has. A change still
// waiting for its turn gives up when ctx ends; one that has begun runs to
// its end (f itself watches ctx where it waits).
func (d *Daemon) change(ctx context.Context, f func()) error {
	c := change{do: f, done: make(chan struct{})}
	select {
	case d.changes <- c:
	case <-d.owned:
		return errShutDown
	case <-ctx.Done():
		return ctx.Err()
	}
	<-c.done
	return nil
}
