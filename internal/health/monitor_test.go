package health

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upkeep/internal/spec"
)

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Ran: "ran", Failed: "failed", Recovered: "recovered", Ready: "ready"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k, want)
		}
	}
}

// TestJudge is monit's arithmetic: "if N failed within M cycles", "if
// succeeded R cycles", with grace. Results: P pass, F fail, g fail in grace;
// verdicts: . steady, X failed, R recovered.
func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		cycles, within, recover_ int
		results, want            string
	}{
		{"one cycle", 1, 1, 1, "PFFFP", ".X..R"},
		{"three consecutive", 3, 3, 1, "PFFPFFF", "......X"},
		{"two of three", 2, 3, 1, "PFPF", "...X"},
		{"two of two never on alternation", 2, 2, 1, "PFPFPFPF", "........"},
		{"recover needs consecutive passes", 1, 1, 3, "FPPFPPP", "X.....R"},
		{"recovery clears the window", 2, 3, 1, "FFPFPF", ".XR..X"},
		{"grace failures do not count", 2, 2, 1, "gggFgF", ".....X"},
		{"grace does not break a streak", 2, 2, 1, "FgF", "..X"},
		{"failed once until recovered", 1, 1, 2, "FFFPFPP", "X.....R"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJudge(&spec.Check{Cycles: tc.cycles, Within: tc.within, Recover: tc.recover_})
			var got strings.Builder
			for _, r := range tc.results {
				switch j.add(r == 'P', r == 'g') {
				case steady:
					got.WriteByte('.')
				case failed:
					got.WriteByte('X')
				case recovered:
					got.WriteByte('R')
				}
			}
			if got.String() != tc.want {
				t.Errorf("%s: got %s, want %s", tc.results, got.String(), tc.want)
			}
		})
	}
}

func TestHTTPFailsAfterExactlyCycles(t *testing.T) {
	srv := scriptedHTTP(t, func(n int64) int {
		if n <= 2 {
			return 200
		}
		return 500
	})
	out := make(chan Event, 64)
	c := httpCheck("web", srv.URL, 20*time.Millisecond, 3, 3)
	m := Start("www-test", []spec.Check{c}, &target{started: time.Now()}, out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Failed })

	var fails, passes int
	for _, ev := range evs {
		if ev.Kind == Ran {
			if ev.Result.OK {
				passes++
			} else {
				fails++
			}
			if ev.Streak != fails {
				t.Errorf("Ran streak %d after %d failures", ev.Streak, fails)
			}
		}
	}
	if passes != 2 || fails != 3 {
		t.Errorf("Failed after %d passes and %d failures, want 2 and 3:\n%s", passes, fails, dump(evs))
	}
	f := evs[len(evs)-1]
	if f.Check == nil || f.Check.Name != "web" || f.Streak != 3 || f.Result.Message != "HTTP 500, want 200-399" {
		t.Errorf("Failed event = %+v", f)
	}
	if ran := evs[len(evs)-2]; ran.Kind != Ran || ran.Result != f.Result {
		t.Errorf("Failed does not follow the Ran of its result:\n%s", dump(evs))
	}
	snap := m.Snapshot()
	if len(snap) != 1 || snap[0].Name != "web" || snap[0].Type != "http" || !snap[0].Failing || snap[0].Streak < 3 ||
		snap[0].Passes != 2 || snap[0].Failures < 3 || snap[0].Last == nil || snap[0].Last.OK {
		t.Errorf("snapshot = %+v", snap)
	}
	// Failing stays failed: no second Failed while it keeps failing.
	more := collect(t, out, 10*time.Second, nthRan("web", 3))
	for _, ev := range more {
		if ev.Kind == Failed {
			t.Errorf("second Failed while failing:\n%s", dump(more))
		}
	}
}

func TestHTTPWithin(t *testing.T) {
	alternate := func(n int64) int { // pass, fail, pass, fail, ...
		if n%2 == 1 {
			return 200
		}
		return 503
	}
	t.Run("two of three", func(t *testing.T) {
		srv := scriptedHTTP(t, alternate)
		out := make(chan Event, 64)
		m := Start("www-test", []spec.Check{httpCheck("web", srv.URL, 20*time.Millisecond, 2, 3)}, &target{started: time.Now()}, out)
		defer m.Stop()
		evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Failed })
		if ran := countRan(evs); ran != 4 {
			t.Errorf("Failed after %d results, want the 4th (P F P F):\n%s", ran, dump(evs))
		}
		if f := evs[len(evs)-1]; f.Streak != 1 {
			t.Errorf("streak %d, want 1 (the failures were not consecutive)", f.Streak)
		}
	})
	t.Run("two consecutive", func(t *testing.T) {
		srv := scriptedHTTP(t, alternate)
		out := make(chan Event, 64)
		m := Start("www-test", []spec.Check{httpCheck("web", srv.URL, 20*time.Millisecond, 2, 2)}, &target{started: time.Now()}, out)
		defer m.Stop()
		evs := collect(t, out, 10*time.Second, nthRan("web", 8))
		for _, ev := range evs {
			if ev.Kind == Failed {
				t.Fatalf("alternating results failed a 2-of-2 check:\n%s", dump(evs))
			}
		}
	})
}

func countRan(evs []Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == Ran {
			n++
		}
	}
	return n
}

func TestRecoveryResetsAndFailsAgain(t *testing.T) {
	script := "FFPPFF" // then passes
	srv := scriptedHTTP(t, func(n int64) int {
		if n <= int64(len(script)) && script[n-1] == 'F' {
			return 500
		}
		return 204
	})
	out := make(chan Event, 64)
	c := httpCheck("web", srv.URL, 20*time.Millisecond, 2, 2)
	c.Recover = 2
	m := Start("www-test", []spec.Check{c}, &target{started: time.Now()}, out)
	defer m.Stop()
	recoveries := 0
	evs := collect(t, out, 10*time.Second, func(ev Event) bool {
		if ev.Kind == Recovered {
			recoveries++
		}
		return recoveries == 2
	})
	var kinds []string
	ran := 0
	for _, ev := range evs {
		switch ev.Kind {
		case Ran:
			ran++
		case Failed, Recovered:
			kinds = append(kinds, ev.Kind.String()+"@"+string(rune('0'+ran)))
			if ev.Kind == Recovered && (ev.Streak != 0 || !ev.Result.OK || ev.Result.Message != "HTTP 204") {
				t.Errorf("Recovered event = %+v", ev)
			}
		}
	}
	if got := strings.Join(kinds, " "); got != "failed@2 recovered@4 failed@6 recovered@8" {
		t.Errorf("got %s:\n%s", got, dump(evs))
	}
	if s := m.Snapshot()[0]; s.Failing || s.Streak != 0 {
		t.Errorf("snapshot after recovery = %+v", s)
	}
}

func TestGraceSuppressesFailures(t *testing.T) {
	srv := scriptedHTTP(t, func(int64) int { return 500 })
	out := make(chan Event, 256)
	c := httpCheck("web", srv.URL, 20*time.Millisecond, 1, 1)
	const grace = 300 * time.Millisecond
	c.Grace = spec.Duration(grace)
	started := time.Now()
	m := Start("www-test", []spec.Check{c}, &target{started: started}, out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Failed })
	inGrace := 0
	for _, ev := range evs[:len(evs)-2] {
		if ev.Kind != Ran || ev.Result.OK || ev.Streak != 0 {
			t.Errorf("before Failed: %+v", ev)
		}
		if ev.Result.Started.Before(started.Add(grace)) {
			inGrace++
		}
	}
	if inGrace < 1 {
		t.Errorf("only %d results in grace:\n%s", inGrace, dump(evs))
	}
	f := evs[len(evs)-1]
	if f.Result.Started.Before(started.Add(grace)) || f.Streak != 1 {
		t.Errorf("Failed at %s after start (grace %s), streak %d", f.Result.Started.Sub(started), grace, f.Streak)
	}
	// FAILURES counts only what counts: the results after the grace.
	m.Stop()
	after := 0
	for _, ev := range append(evs, drain(out)...) {
		if ev.Kind == Ran && !ev.Result.OK && !ev.Result.Started.Before(started.Add(grace)) {
			after++
		}
	}
	// A probe cut short by Stop may be recorded without its event.
	if s := m.Snapshot()[0]; s.Failures < after || s.Failures > after+1 || s.Passes != 0 {
		t.Errorf("snapshot = %+v, want %d failures (the %d in grace not counted)", s, after, inGrace)
	}
}

// A healthy start whose first probe comes too early (the port is not open
// yet): the check shows no failure, as the docs promise of the grace.
func TestHealthyStartShowsNoFailures(t *testing.T) {
	srv := scriptedHTTP(t, func(n int64) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	out := make(chan Event, 256)
	c := httpCheck("web", srv.URL, 20*time.Millisecond, 1, 1)
	c.Grace = spec.Duration(10 * time.Second)
	m := Start("www-test", []spec.Check{c}, &target{started: time.Now()}, out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Ready })
	fails := 0
	for _, ev := range evs {
		if ev.Kind == Ran && !ev.Result.OK {
			fails++
		}
	}
	if fails != 2 {
		t.Fatalf("want two failed probes before the pass:\n%s", dump(evs))
	}
	if s := m.Snapshot()[0]; s.Failures != 0 || s.Passes < 1 || s.Streak != 0 {
		t.Errorf("snapshot after a healthy start = %+v, want no failures", s)
	}
}

// drain returns the events waiting in ch.
func drain(ch <-chan Event) []Event {
	var evs []Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestReadyOnceAfterEveryCheckPassed(t *testing.T) {
	ln := lineServer(t, "tcp", "127.0.0.1:0", pong)
	srv := scriptedHTTP(t, func(n int64) int {
		if n <= 3 {
			return 502
		}
		return 200
	})
	checks := []spec.Check{
		{Name: "redis", Type: "tcp", Address: ln.Addr().String(), Send: "PING\r\n", Expect: "+PONG",
			Timeout: spec.Duration(time.Second), Interval: spec.Duration(20 * time.Millisecond), Cycles: 1, Within: 1, Recover: 1},
		httpCheck("web", srv.URL, 20*time.Millisecond, 5, 5),
	}
	out := make(chan Event, 256)
	m := Start("www-test", checks, &target{started: time.Now()}, out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, nthRan("web", 8))
	passed := map[string]bool{}
	ready := 0
	for _, ev := range evs {
		switch ev.Kind {
		case Ran:
			if ev.Result.OK {
				passed[ev.Check.Name] = true
			}
		case Ready:
			ready++
			if !passed["redis"] || !passed["web"] {
				t.Errorf("Ready before every check passed (%v)", passed)
			}
			if ev.Check != nil {
				t.Errorf("Ready names a check: %+v", ev)
			}
		case Failed:
			t.Errorf("unexpected %+v", ev)
		}
	}
	if ready != 1 {
		t.Errorf("%d Ready events, want 1:\n%s", ready, dump(evs))
	}
}

func TestNoChecksIsReady(t *testing.T) {
	out := make(chan Event)
	m := Start("www-test", nil, &target{started: time.Now()}, out)
	defer m.Stop()
	select {
	case ev := <-out:
		if ev.Kind != Ready {
			t.Errorf("got %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Ready")
	}
	if s := m.Snapshot(); len(s) != 0 {
		t.Errorf("snapshot %+v", s)
	}
}

// A hung endpoint costs one timeout per run, the schedule skips the slots
// it missed, and Stop ends a probe in flight and leaves no goroutine and no
// connection behind.
func TestHungServerAndStop(t *testing.T) {
	hung := newHungServer(t)
	base := runtime.NumGoroutine()
	const timeout, interval = time.Second, 50 * time.Millisecond
	c := httpCheck("web", "http://"+hung.ln.Addr().String()+"/ok", interval, 1, 1)
	c.Timeout = spec.Duration(timeout)
	out := make(chan Event, 64)
	m := Start("www-test", []spec.Check{c}, &target{started: time.Now()}, out)
	evs := collect(t, out, 10*time.Second, nthRan("web", 2))
	var rs []Result
	for _, ev := range evs {
		if ev.Kind == Ran {
			rs = append(rs, ev.Result)
		}
	}
	for _, r := range rs {
		if r.OK || r.Message != "timeout after 1s" || r.Latency < timeout || r.Latency >= 2*timeout {
			t.Errorf("want one timeout per run: %+v", r)
		}
	}
	// Fixed rate with skipping: the second run is due on the first slot
	// after the first run ended, not on the slots that passed meanwhile.
	// Asserted as an order, which holds however late a loaded machine
	// runs the loop: the first run is due, starts and ends; the second is
	// due after that end (no slot of the hung second was run) and starts
	// on or after its due time. How late a run starts is a figure for a
	// benchmark, not a bound for a test.
	end0 := rs[0].Started.Add(rs[0].Latency)
	if rs[0].Started.Before(rs[0].Due) || rs[1].Due.Before(end0) || rs[1].Started.Before(rs[1].Due) {
		t.Errorf("runs out of order: first due %s, started +%s, ended +%s; second due +%s, started +%s",
			rs[0].Due.Format(time.StampMicro), rs[0].Started.Sub(rs[0].Due), end0.Sub(rs[0].Due),
			rs[1].Due.Sub(rs[0].Due), rs[1].Started.Sub(rs[0].Due))
	}
	// The third probe is now in flight, with most of its timeout ahead.
	eventually(t, 5*time.Second, "the third connection", func() bool { return hung.open.Load() >= 1 })
	begin := time.Now()
	m.Stop()
	if d := time.Since(begin); d > timeout/2 {
		t.Errorf("Stop took %s with a probe in flight", d)
	}
	eventually(t, 5*time.Second, "the hung connections to close", func() bool { return hung.open.Load() == 0 })
	eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// A receiver that stopped reading must not keep Stop from returning.
func TestStopWithAnUnreadChannel(t *testing.T) {
	srv := scriptedHTTP(t, func(int64) int { return 200 })
	out := make(chan Event) // never read
	m := Start("www-test", []spec.Check{httpCheck("a", srv.URL, 10*time.Millisecond, 1, 1), httpCheck("b", srv.URL, 10*time.Millisecond, 1, 1)},
		&target{started: time.Now()}, out)
	eventually(t, 5*time.Second, "a result", func() bool { return m.Snapshot()[0].Last != nil })
	done := make(chan struct{})
	go func() { m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop blocked on a send")
	}
	m.Stop() // twice is fine
}

// A failed run that took far longer than its timeout is a stalled daemon,
// not a failed service: the check asks again and counts that answer. A run
// that failed within its timeout counts at once.
func TestStalledRunIsRetried(t *testing.T) {
	var calls atomic.Int64
	saved := runProbe
	defer func() { runProbe = saved }()
	runProbe = func(ctx context.Context, c *spec.Check, tg Target, s *ProbeState) Result {
		n := calls.Add(1)
		r := Result{Check: c.Name, Started: time.Now()}
		switch {
		case n == 1: // passes: the check becomes ready
			r.OK, r.Message, r.Latency = true, "HTTP 200", time.Millisecond
		case n == 2: // stalled: the 1s timeout noticed 3s late
			r.Message, r.Latency = "timeout after 1s", 4*time.Second
		case n == 3: // the retry passes
			r.OK, r.Message, r.Latency = true, "HTTP 200", time.Millisecond
		default: // a genuine failure within its timeout
			r.Message, r.Latency = "HTTP 500", 2*time.Millisecond
		}
		return r
	}
	c := spec.Check{Name: "web", Type: "http", Timeout: spec.Duration(time.Second),
		Interval: spec.Duration(30 * time.Millisecond), Cycles: 1, Within: 1, Recover: 1, Then: "restart"}
	out := make(chan Event, 64)
	m := Start("www-test", []spec.Check{c}, nil, out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Failed })
	var ran []string
	for _, ev := range evs {
		if ev.Kind == Ran {
			ran = append(ran, ev.Result.Message)
		}
	}
	// Runs 1, 2+3 (one result), 4 (fails: threshold of 1 crossed).
	if want := []string{"HTTP 200", "HTTP 200", "HTTP 500"}; !slices.Equal(ran, want) {
		t.Errorf("results %q, want %q", ran, want)
	}
	if f := evs[len(evs)-1]; f.Result.Message != "HTTP 500" {
		t.Errorf("Failed on %q, want the genuine failure", f.Result.Message)
	}
}
