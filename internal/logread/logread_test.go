package logread

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/logsink"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// capture writes lines alternately to two services' stdout and stderr
// through real sinks, with rotations (and compression) in between, so
// that each line has a capture time in the index; it returns the lines in
// the order written.
func capture(t *testing.T, root string, names []string, per int) []api.LogLine {
	t.Helper()
	os.MkdirAll(filepath.Join(root, paths.LogDir), 0o755)
	cfg := spec.Log{When: spec.Untimed, Rotate: 5, Compress: true}
	var sinks []*logsink.Sink
	var want []api.LogLine
	open := func(p string) *logsink.Sink {
		s, err := logsink.OpenWith(p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
		return s
	}
	type pair struct{ out, err *logsink.Sink }
	var ps []pair
	for _, n := range names {
		ps = append(ps, pair{open(paths.Log(root, n)), open(paths.ErrorLog(root, n))})
	}
	for i := range per {
		for k, n := range names {
			stream, s := Out, ps[k].out
			if (i+k)%3 == 0 {
				stream, s = Err, ps[k].err
			}
			line := fmt.Sprintf("%s %s line %d", n, stream, i)
			fmt.Fprintln(s, line)
			want = append(want, api.LogLine{Service: n, Stream: stream, Line: line})
			// Distinct capture times: the index is exact to a millisecond.
			for d := time.Now().Add(2 * time.Millisecond); time.Now().Before(d); {
			}
		}
		if i%10 == 9 {
			for _, s := range sinks {
				s.Rotate()
			}
		}
	}
	for _, s := range sinks {
		s.Close()
		s.Wait()
	}
	return want
}

func read(t *testing.T, root string, q api.LogQuery) []api.LogLine {
	t.Helper()
	var got []api.LogLine
	if err := Read(context.Background(), root, q, func(l api.LogLine) error { got = append(got, l); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func same(t *testing.T, got, want []api.LogLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(got), len(want), got)
	}
	for i := range got {
		if got[i].Line != want[i].Line || got[i].Service != want[i].Service || got[i].Stream != want[i].Stream || !got[i].Exact {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMergeInOrderWritten(t *testing.T) {
	root := t.TempDir()
	want := capture(t, root, []string{"www-a", "www-b"}, 45)
	// Both streams of one service, in the order written, through
	// rotated and compressed files.
	var a []api.LogLine
	for _, l := range want {
		if l.Service == "www-a" {
			a = append(a, l)
		}
	}
	same(t, read(t, root, api.LogQuery{Names: []string{"www-a"}, N: -1}), a)
	// All services merged.
	same(t, read(t, root, api.LogQuery{N: -1}), want)
	// The last 7 of the merge.
	same(t, read(t, root, api.LogQuery{N: 7}), want[len(want)-7:])
	// One stream.
	var errs []api.LogLine
	for _, l := range a {
		if l.Stream == Err {
			errs = append(errs, l)
		}
	}
	same(t, read(t, root, api.LogQuery{Names: []string{"www-a"}, Stream: Err, N: -1}), errs)
	// --grep.
	got := read(t, root, api.LogQuery{Grep: `line 4[0-4]$`, N: -1})
	if len(got) != 10 {
		t.Fatalf("grep: %d lines: %v", len(got), got)
	}
	// --since and --until by capture time: the lines between two of them.
	all := read(t, root, api.LogQuery{N: -1})
	from, to := all[20].Time, all[30].Time
	got = read(t, root, api.LogQuery{Since: from, Until: to, N: -1})
	same(t, got, want[20:31])
	// -n with a range: the last 3 of those.
	same(t, read(t, root, api.LogQuery{Since: from, Until: to, N: 3}), want[28:31])
}

func TestNoLogs(t *testing.T) {
	root := t.TempDir()
	err := Read(context.Background(), root, api.LogQuery{Names: []string{"www-none"}, N: 10}, func(api.LogLine) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "www-none: no logs under") {
		t.Fatalf("err = %v", err)
	}
	if err := Read(context.Background(), root, api.LogQuery{Names: []string{"../etc"}}, func(api.LogLine) error { return nil }); err == nil {
		t.Fatal("a name with a path was read")
	}
}

func TestFollowBothStreams(t *testing.T) {
	root := t.TempDir()
	capture(t, root, []string{"www-a"}, 3)
	out, _ := logsink.OpenWith(paths.Log(root, "www-a"), spec.Log{When: spec.Untimed})
	errs, _ := logsink.OpenWith(paths.ErrorLog(root, "www-a"), spec.Log{When: spec.Untimed})
	defer out.Close()
	defer errs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []api.LogLine
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, root, api.LogQuery{Names: []string{"www-a"}, N: 0, Follow: true}, func(l api.LogLine) error {
			mu.Lock()
			got = append(got, l)
			mu.Unlock()
			return nil
		})
	}()
	n := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	deadline := time.Now().Add(10 * time.Second)
	for n() < 2 && time.Now().Before(deadline) {
		// Keep writing until the follower, which may start after the
		// first writes, has seen one line of each stream written after it.
		fmt.Fprintln(out, "new out")
		fmt.Fprintln(errs, "new err")
		time.Sleep(50 * time.Millisecond) // paces the writer; the loop polls for the condition
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range got {
		seen[l.Stream+":"+l.Line] = true
		if !l.Exact {
			t.Fatalf("followed line without a capture time: %+v", l)
		}
	}
	if !seen["out:new out"] || !seen["err:new err"] {
		t.Fatalf("followed %v", got)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"-1h30m":               now.Add(-90 * time.Minute),
		"2d":                   now.AddDate(0, 0, -2),
		"2026-12-03T17:00:00Z": now.Add(-time.Hour),
		"2026-12-03 17:30":     now.Add(-30 * time.Minute),
		"today":                time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC),
		"now":                  now,
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "-5", "10x", "2026-13-01", "1.5d"} {
		if _, err := ParseTime(in, now); err == nil {
			t.Errorf("ParseTime(%q) took it", in)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"10m", "2d", "2026-12-03T17:00:00Z", "2026-12-03 17:30", "today", "x", "-", "99999999999d"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s, now)
		if err == nil && tm.IsZero() && s != "" {
			t.Fatalf("%q: zero time without an error", s)
		}
	})
}
