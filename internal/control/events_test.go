package control

import (
	"net/url"
	"testing"
	"time"

	"upkeep/internal/api"
)

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
