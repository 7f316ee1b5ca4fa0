package control

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"upkeep/internal/api"
)

// A followed stream whose daemon stops ends with ErrDaemonStopped (the CLI
// says "daemon stopped" and exits 0), not with the decoder's "unexpected
// EOF"; a stream that is not followed ends with nil.
func TestFollowedEventsEndWithDaemonStopped(t *testing.T) {
	h := newHost(t)
	h.service("www-ok", sleeper)
	h.start(Options{Access: self()})
	eventually(t, 5*time.Second, "www-ok running", func() bool { return h.status("www-ok").State == api.Running })
	c := NewClient(h.sock)
	if err := c.Events(context.Background(), "www-ok", false, func(api.Event) {}); err != nil {
		t.Errorf("events without follow: %v", err)
	}
	got := make(chan api.Event, 100)
	ended := make(chan error, 1)
	go func() { ended <- c.Events(context.Background(), "www-ok", true, func(e api.Event) { got <- e }) }()
	select {
	case <-got: // the backlog: the stream is open
	case err := <-ended:
		t.Fatalf("stream ended before the daemon stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no backlog")
	}
	h.shut()
	select {
	case err := <-ended:
		if !errors.Is(err, ErrDaemonStopped) {
			t.Errorf("followed stream ended with %v, want ErrDaemonStopped", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the followed stream did not end with the daemon")
	}
}

func TestRecent(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	var es []api.Event
	for i := range 5 {
		es = append(es, api.Event{Time: t0.Add(time.Duration(i) * time.Minute), Service: "www-a"})
	}
	for _, c := range []struct {
		q    string
		want int // how many, the last ones
	}{
		{"", 5}, {"n=2", 2}, {"n=0", 0}, {"n=9", 5}, {"n=-1", 5}, {"n=x", 5},
		{"since=2026-12-03T18:03:00Z", 2}, {"since=2026-12-03T18:03:00Z&n=1", 1}, {"since=2027-01-01T00:00:00Z", 0},
	} {
		v, _ := url.ParseQuery(c.q)
		got := recent(es, v)
		if len(got) != c.want || c.want > 0 && got[len(got)-1] != es[4] {
			t.Errorf("%q: %d events, want the last %d", c.q, len(got), c.want)
		}
	}
}
