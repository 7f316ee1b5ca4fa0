package logsink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// The wall clock of a shared machine cannot be stepped in a test, and a
// time namespace offsets only the monotonic clocks; so these tests give
// the sink a clock of their own (now) and play the timer's part by calling
// tick, which is what the timer calls. Go's timers run on the monotonic
// clock: a real timer fires after its duration whatever the wall clock
// does, and then finds the wall clock wherever a step has put it.

// rotations counts a sink's rotations.
type rotations struct {
	mu sync.Mutex
	to []string
}

func (r *rotations) note(e Event) {
	if e.Kind == "rotated" {
		r.mu.Lock()
		r.to = append(r.to, filepath.Base(e.To))
		r.mu.Unlock()
	}
}

func (r *rotations) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.to...)
}

func clocked(clock *fakeClock, r *rotations) func(*Sink) {
	return func(s *Sink) {
		s.now = clock.now
		s.Notify(r.note)
	}
}

// TestClockStepBack: the day is rotated at midnight, then the clock is
// set back an hour, so that midnight comes a second time. That second
// midnight rotates nothing (the period start the sink waits for is the
// next day's, as logrotate's state file keys on the date), neither by the
// timer nor when a daemon restarts in the repeated hour; the next day is
// rotated once, and no file is overwritten.
func TestClockStepBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 1, 0, time.Local) }
	var clock fakeClock
	var rot rotations
	clock.set(day(10, 23, 50))
	cfg := spec.Log{When: spec.Daily, Rotate: 7, Compress: true, DelayCompress: true, NotIfEmpty: true}
	s := openTest(t, path, cfg, clocked(&clock, &rot))
	fmt.Fprintln(s, "a")

	clock.set(day(11, 0, 0)) // midnight; the timer fires
	s.tick()
	if got := rot.list(); !reflect.DeepEqual(got, []string{"app.log.1"}) {
		t.Fatalf("at midnight: rotations %q", got)
	}
	fmt.Fprintln(s, "b")
	clock.set(day(10, 23, 0)) // stepped back an hour
	fmt.Fprintln(s, "c")
	s.tick()                 // a timer that fires now finds the wall clock behind: it waits
	clock.set(day(11, 0, 0)) // the same midnight again
	fmt.Fprintln(s, "d")
	s.tick()
	clock.set(day(11, 0, 30))
	fmt.Fprintln(s, "e")
	if got := rot.list(); len(got) != 1 {
		t.Fatalf("the repeated midnight rotated again: %q", got)
	}

	// A daemon started in the repeated hour finds a file written "today"
	// (its time is the clock's) and leaves it alone.
	s.Close()
	s.Wait()
	os.Chtimes(path, day(11, 0, 30), day(11, 0, 30))
	clock.set(day(10, 23, 30))
	var rot2 rotations
	s2 := openTest(t, path, cfg, clocked(&clock, &rot2))
	fmt.Fprintln(s2, "f")
	if got := rot2.list(); len(got) != 0 {
		t.Fatalf("a restart in the repeated hour rotated: %q", got)
	}

	// The next midnight is rotated, once.
	clock.set(day(12, 0, 0))
	fmt.Fprintln(s2, "g") // the write notices the day has changed; the timer comes later
	s2.tick()
	if got := rot2.list(); !reflect.DeepEqual(got, []string{"app.log.1"}) {
		t.Fatalf("next midnight: rotations %q", got)
	}
	s2.Close()
	s2.Wait()
	files := readLog(t, dir, "app.log")
	want := map[string][]string{"app.log": {"g"}, "app.log.1": {"b", "c", "d", "e", "f"}, "app.log.2.gz": {"a"}}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
}

// TestClockStepBackDateExt: with dateext the rotated names are dates, so a
// day that comes twice could name a file twice. A rotation forced on the
// repeated day finds its name taken and is skipped (as logrotate skips
// it), leaving the lines in the live file: nothing is overwritten.
func TestClockStepBackDateExt(t *testing.T) {
	dir := t.TempDir()
	var clock fakeClock
	var rot rotations
	clock.set(time.Date(2026, 3, 10, 23, 50, 0, 0, time.Local))
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Daily, Rotate: 7, DateExt: true}, clocked(&clock, &rot))
	fmt.Fprintln(s, "day 10")
	clock.set(time.Date(2026, 3, 11, 0, 0, 1, 0, time.Local))
	s.tick()
	fmt.Fprintln(s, "day 11")
	clock.add(-time.Hour) // back to the 10th, 23:00
	s.tick()
	fmt.Fprintln(s, "day 10 again")
	clock.add(time.Hour + 30*time.Minute) // the 11th again
	if _, err := s.Rotate(); !errors.Is(err, ErrExists) {
		t.Errorf("forced rotation on the repeated day: %v, want ErrExists", err)
	}
	s.Close()
	s.Wait()
	files := readLog(t, dir, "app.log")
	want := map[string][]string{"app.log": {"day 11", "day 10 again"}, "app.log-20260311": {"day 10"}}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if got := rot.list(); len(got) != 1 {
		t.Errorf("rotations %q", got)
	}
}

// TestClockStepForward: a wall clock stepped forward past a period start
// (an hour past midnight; a day, for an hourly log, as after a suspend) is
// seen at the next write, not when the monotonic timer's wait ends, which
// would be late by the step; and it is one rotation, not one per period
// skipped.
func TestClockStepForward(t *testing.T) {
	for _, c := range []struct {
		name string
		when string
		from time.Time
		step time.Duration
	}{
		{"daily, an hour", spec.Daily, time.Date(2026, 3, 10, 23, 30, 0, 0, time.Local), time.Hour},
		{"hourly, a day", spec.Hourly, time.Date(2026, 3, 10, 12, 30, 0, 0, time.Local), 24 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var clock fakeClock
			var rot rotations
			clock.set(c.from)
			s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: c.when, Rotate: 30}, clocked(&clock, &rot))
			fmt.Fprintln(s, "before")
			clock.add(c.step)
			fmt.Fprintln(s, "after")
			if got := rot.list(); !reflect.DeepEqual(got, []string{"app.log.1"}) {
				t.Fatalf("after the step and a write: rotations %q", got)
			}
			s.tick() // the timer's wait ends: the sink already rotated, and waits for the next period
			fmt.Fprintln(s, "later")
			if got := rot.list(); len(got) != 1 {
				t.Fatalf("rotations %q, want one", got)
			}
			s.Close()
			s.Wait()
			files := readLog(t, dir, "app.log")
			if want := (map[string][]string{"app.log": {"after", "later"}, "app.log.1": {"before"}}); !reflect.DeepEqual(files, want) {
				t.Errorf("files %q, want %q", files, want)
			}
		})
	}
}
