package logsink

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// collector gathers lines from a reader's goroutine.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) add(l []byte) { c.mu.Lock(); c.lines = append(c.lines, string(l)); c.mu.Unlock() }
func (c *collector) len() int     { c.mu.Lock(); defer c.mu.Unlock(); return len(c.lines) }
func (c *collector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// inOrder checks that lines are the numbered lines from..to-1 in order.
func inOrder(t *testing.T, lines []string, from, to int) {
	t.Helper()
	if len(lines) != to-from {
		prev := -1
		for k, l := range lines {
			m := lineRE.FindStringSubmatch(l)
			i, _ := strconv.Atoi(m[1])
			if i != prev+1 && prev >= 0 {
				t.Logf("at %d: %d after %d", k, i, prev)
			}
			prev = i
		}
		t.Fatalf("%d lines, want %d (%d..%d)", len(lines), to-from, from, to-1)
	}
	for k, l := range lines {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d torn: %q", k, l)
		}
		if i, _ := strconv.Atoi(m[1]); i != from+k {
			t.Fatalf("line %d is %d, want %d", k, i, from+k)
		}
	}
}

// writeBatches writes batches of numbered lines, rotating after each.
func writeBatches(s *Sink, batches, per int) int {
	buf := make([]byte, 0, lineLen)
	i := 0
	for range batches {
		for range per {
			s.Write(appendLine(buf[:0], int64(i)))
			i++
		}
		s.Rotate()
	}
	return i
}

func TestTailReachesIntoCompressedHistory(t *testing.T) {
	for _, cfg := range []spec.Log{
		{When: spec.Untimed, Rotate: 10, Compress: true, DelayCompress: true},
		{When: spec.Untimed, Rotate: 10, Compress: true, DateExt: true, DateFormat: "-%s"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		var clock fakeClock
		clock.set(time.Now())
		s := openTest(t, path, cfg, func(s *Sink) {
			s.now = func() time.Time { clock.add(time.Second); return clock.now() }
		})
		n := writeBatches(s, 5, 10)
		buf := make([]byte, 0, lineLen)
		for range 3 { // the live file: three lines
			s.Write(appendLine(buf[:0], int64(n)))
			n++
		}
		s.Wait()
		for _, want := range []int{0, 2, 3, 25, 53, 100, -1} {
			var c collector
			fl, err := Tail(path, cfg, want, time.Time{}, c.add)
			if err != nil {
				t.Fatal(err)
			}
			fl.Close()
			from := max(0, n-want)
			if want < 0 {
				from = 0
			}
			inOrder(t, c.get(), from, n)
		}
	}
}

func TestTailSince(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	base := time.Date(2024, 5, 1, 10, 0, 0, 0, time.Local)
	var clock fakeClock // capture times as the lines say, for the index
	clock.set(base)
	s := openTest(t, path, spec.Log{When: spec.Untimed, Rotate: 3}, clock.tweak())
	for i := range 6 {
		at := base.Add(time.Duration(i) * time.Minute)
		clock.set(at)
		switch i % 3 {
		case 0:
			fmt.Fprintf(s, "%s line %d\n", at.Format(time.RFC3339Nano), i)
		case 1:
			fmt.Fprintf(s, `{"time":"%s","msg":"line %d"}`+"\n", at.UTC().Format(time.RFC3339), i)
		case 2:
			fmt.Fprintf(s, "%s line %d\n", at.Format(time.DateTime), i)
		}
		if i == 2 {
			s.Rotate()
		}
	}
	clock.set(base.Add(6 * time.Minute))
	fmt.Fprintln(s, "no time here")
	var c collector
	fl, err := Tail(path, spec.Log{When: spec.Untimed, Rotate: 3}, -1, base.Add(3*time.Minute), c.add)
	if err != nil {
		t.Fatal(err)
	}
	fl.Close()
	got := c.get()
	if len(got) != 4 || got[3] != "no time here" {
		t.Fatalf("lines since 10:03: %q", got)
	}
	for _, l := range []string{"2024-05-01T10:00:00+02:00 x", `{"time":"2024-05-01T08:00:00Z"}`, "2024-05-01 10:00:00 x", "2024/05/01 10:00:00 x", "time=2024-05-01T10:00:00.123Z level=INFO"} {
		if _, ok := lineTime([]byte(l)); !ok {
			t.Errorf("no time in %q", l)
		}
	}
}

// TestFollowAcrossRotation: a follower sees every line once, in order,
// while the file is rotated under it, several times between two of its
// looks too.
func TestFollowAcrossRotation(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  spec.Log
		wait bool // let the follower catch up after each rotation
	}{
		{"fast rotations, plain", spec.Log{When: spec.Untimed, Rotate: -1}, false},
		{"compress delaycompress", spec.Log{When: spec.Untimed, Rotate: 5, Compress: true, DelayCompress: true}, true},
		{"dateext", spec.Log{When: spec.Untimed, Rotate: -1, DateExt: true, DateFormat: "-%s"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			var clock fakeClock
			clock.set(time.Now())
			s := openTest(t, path, c.cfg, func(s *Sink) {
				s.now = func() time.Time { clock.add(time.Second); return clock.now() }
			})
			n := writeBatches(s, 3, 100)
			var got collector
			fl, err := Tail(path, c.cfg, 10, time.Time{}, got.add)
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			fl.Poll = 5 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- fl.Follow(ctx, got.add) }()
			buf := make([]byte, 0, lineLen)
			for b := range 40 {
				for range 50 {
					s.Write(appendLine(buf[:0], int64(n)))
					n++
				}
				s.Rotate()
				if c.wait {
					want := 10 + 50*(b+1)
					eventually(t, 5*time.Second, "follower behind", func() bool { return got.len() >= want })
				}
			}
			for range 7 {
				s.Write(appendLine(buf[:0], int64(n)))
				n++
			}
			want := 10 + 40*50 + 7
			eventually(t, 10*time.Second, "follower missed lines", func() bool { return got.len() >= want })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			inOrder(t, got.get(), 300-10, n)
		})
	}
}

// TestFollowWaitsForTheFile: following a log that does not exist yet.
func TestFollowWaitsForTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var got collector
	fl, err := Tail(path, spec.DefaultLog(), 10, time.Time{}, got.add)
	if err != nil {
		t.Fatal(err)
	}
	fl.Poll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fl.Follow(ctx, got.add) }()
	s := openTest(t, path, spec.DefaultLog(), nil)
	fmt.Fprintln(s, "hello")
	eventually(t, 5*time.Second, "nothing followed", func() bool { return got.len() == 1 })
	cancel()
	<-done
	fl.Close()
	if got.get()[0] != "hello" {
		t.Errorf("%q", got.get())
	}
}

// TestTailHoldsBackAnUnendedLine: the live file ends inside a line (a
// splice ended there); Tail leaves it to the Follower, which prints it
// whole once its end comes, or to Rest.
func TestTailHoldsBackAnUnendedLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed}, nil)
	fmt.Fprint(s, "one\ntwo\nthr")
	var c collector
	fl, err := Tail(path, spec.Log{}, 2, time.Time{}, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if got := c.get(); len(got) != 1 || got[0] != "two" {
		t.Fatalf("Tail printed %q, want [two]", got)
	}
	var rest collector
	fl.Rest(rest.add)
	if got := rest.get(); len(got) != 1 || got[0] != "thr" {
		t.Errorf("Rest printed %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fl.Poll = 5 * time.Millisecond
	go func() { fl.Follow(ctx, c.add); close(done) }()
	fmt.Fprint(s, "ee\nfour\n")
	eventually(t, 5*time.Second, "no lines followed", func() bool { return c.len() == 3 })
	cancel()
	<-done
	if got := c.get(); got[1] != "three" || got[2] != "four" {
		t.Errorf("followed %q", got)
	}
}
