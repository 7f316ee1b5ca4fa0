package control

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"upkeep/internal/api"
)

// recent is the part of the event history that a request's n (the last n;
// absent or negative: all) and since (RFC 3339) ask for; a value that does
// not parse asks for nothing less.
func recent(es []api.Event, v url.Values) []api.Event {
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			i := 0
			for i < len(es) && es[i].Time.Before(t) {
				i++
			}
			es = es[i:]
		}
	}
	if n, err := strconv.Atoi(v.Get("n")); err == nil && n >= 0 && n < len(es) {
		es = es[len(es)-n:]
	}
	return es
}

// EventQuery is what `upkeep events` asks for: one service's events or
// all ("" ), the last N of the history (N < 0: all of it) since Since,
// then with Follow each new one.
type EventQuery struct {
	Service string
	N       int
	Since   time.Time
	Follow  bool
}

// EventsOf is Events with the history cut to q's last N since q.Since.
func (c *Client) EventsOf(ctx context.Context, q EventQuery, fn func(api.Event)) error {
	v := url.Values{}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	if q.N >= 0 {
		v.Set("n", strconv.Itoa(q.N))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	return c.events(ctx, http.MethodGet, "/v1/events?"+v.Encode(), q.Follow, fn)
}
