package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/control"
)

// followEvents prints the events q asks for (of q.Service, all when
// ""), following them with q.Follow. A followed stream ends when the daemon stops: that is said
// on stderr and is no error (exit 0), as `journalctl -f` ends quietly;
// with retry it waits for a daemon and follows again, without printing
// twice what the new daemon's backlog repeats.
func followEvents(ctx context.Context, c *control.Client, q control.EventQuery, retry bool, print func(api.Event)) error {
	var last, cutoff time.Time // the newest event printed; what a reconnect skips
	for {
		err := c.EventsOf(ctx, q, func(e api.Event) {
			if !e.Time.After(cutoff) {
				return // printed before the reconnect
			}
			last = e.Time
			print(e)
		})
		cutoff = last
		switch {
		case err == nil || ctx.Err() != nil:
			return nil
		case errors.Is(err, control.ErrDaemonStopped) && !retry:
			fmt.Fprintln(os.Stderr, "upkeep: daemon stopped")
			return nil
		case errors.Is(err, control.ErrDaemonStopped):
			fmt.Fprintln(os.Stderr, "upkeep: daemon stopped; waiting for it to come back (--retry)")
		case errors.Is(err, control.ErrNoDaemon) && retry:
			// Not (yet) back: look again shortly.
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
