package supervise

import (
	"testing"
	"time"

	"upkeep/internal/api"
)

// The history rings keep the newest n records, oldest first, and give
// back what was put in them at the precision they store.
func TestJournalRings(t *testing.T) {
	j := newJournal()
	base := time.Unix(1_800_000_000, 0)
	for i := range historySamples + 5 {
		j.addSample("www-a", api.Sample{Time: base.Add(time.Duration(i) * sampleEvery), CPUSeconds: 1.5 * float64(i),
			RSSBytes: uint64(i) << 20, Restarts: i})
	}
	for i := range historyChecks + 3 {
		j.addCheck("www-a", api.CheckResult{Time: base.Add(time.Duration(i) * time.Second), Check: []string{"http-1", "tcp-2"}[i%2],
			OK: i%3 != 0, Latency: time.Duration(i) * time.Millisecond, Late: time.Duration(i) * time.Microsecond})
	}
	samples := ringItems(j.samples["www-a"])
	if len(samples) != historySamples {
		t.Fatalf("%d samples kept, want %d", len(samples), historySamples)
	}
	first, last := samples[0], samples[len(samples)-1]
	if got := time.Unix(int64(first.at), 0); !got.Equal(base.Add(5 * sampleEvery)) {
		t.Errorf("oldest sample at %v, want the 6th", got)
	}
	i := historySamples + 4
	if last.cpu != float32(1.5*float64(i)) || uint64(last.rssKiB)<<10 != uint64(i)<<20 || int(last.restarts) != i {
		t.Errorf("newest sample %+v, want cpu %v rss %d MiB restarts %d", last, 1.5*float64(i), i, i)
	}
	checks := ringItems(j.checks["www-a"])
	if len(checks) != historyChecks {
		t.Fatalf("%d check runs kept, want %d", len(checks), historyChecks)
	}
	c := checks[len(checks)-1]
	i = historyChecks + 2
	if c.at != base.Add(time.Duration(i)*time.Second).UnixNano() || time.Duration(c.latency) != time.Duration(i)*time.Millisecond ||
		int(c.late) != i || c.ok != (i%3 != 0) || j.names["www-a"][c.check] != []string{"http-1", "tcp-2"}[i%2] {
		t.Errorf("newest check run %+v", c)
	}
	if cap(j.checks["www-a"].buf) != historyChecks {
		t.Errorf("check ring capacity %d, want %d: allocated whole", cap(j.checks["www-a"].buf), historyChecks)
	}
}
