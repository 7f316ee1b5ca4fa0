package logsink

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

// checkNumbered verifies that the lines of all files hold every number
// below n exactly once, and nothing torn.
func checkNumbered(t *testing.T, files map[string][]string, n int) {
	t.Helper()
	seen := make([]int, n)
	for name, lines := range files {
		for _, l := range lines {
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: torn line %q", name, l)
			}
			i, _ := strconv.Atoi(m[1])
			if i >= n {
				t.Fatalf("%s: line %d was never written", name, i)
			}
			seen[i]++
		}
	}
	lost, dup := 0, 0
	for _, c := range seen {
		if c == 0 {
			lost++
		}
		if c > 1 {
			dup++
		}
	}
	if lost > 0 || dup > 0 {
		t.Fatalf("%d of %d lines lost, %d duplicated", lost, n, dup)
	}
}

// TestRotationUnderLoad: a child writes numbered lines as fast as it can
// through a real pipe into Drain while rotations are forced every few
// milliseconds, with compression running behind. Afterwards every number
// is in exactly one file (.gz included) and no line is torn.
func TestRotationUnderLoad(t *testing.T) {
	const n = 400_000
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: -1, Compress: true, DelayCompress: true}, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOGSINK_HELPER=writer", "LINES="+strconv.Itoa(n), "BUF=8192")
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { s.Drain(r); r.Close(); close(done) }()
	rotations := 0
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			if rotations == 150 {
				continue // enough; the rest keeps the test short under -race
			}
			if _, err := s.Rotate(); err != nil {
				t.Fatal(err)
			}
			rotations++
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Wait()
	files := readLog(t, dir, "app.log")
	t.Logf("%d lines, %d rotations while writing, %d files, %d of %d bytes spliced", n, rotations, len(files), spliced(s), n*lineLen)
	if rotations < 5 {
		t.Logf("the writer was faster than the rotations: a weak run")
	}
	checkNumbered(t, files, n)
	if s.Dropped() != 0 {
		t.Errorf("dropped %d bytes", s.Dropped())
	}
	for _, name := range names(t, dir) {
		if name == "app.log" || name == "app.log.1" {
			continue
		}
		if !strings.HasSuffix(name, ".gz") {
			t.Errorf("%s is not compressed", name)
		}
	}
}

func TestRetention(t *testing.T) {
	const keep = 3
	for _, c := range []struct {
		name string
		cfg  spec.Log
		want []string
	}{
		{"compress delaycompress", spec.Log{Compress: true, DelayCompress: true}, []string{"app.log", "app.log.1", "app.log.2.gz", "app.log.3.gz"}},
		{"compress", spec.Log{Compress: true}, []string{"app.log", "app.log.1.gz", "app.log.2.gz", "app.log.3.gz"}},
		{"plain", spec.Log{}, []string{"app.log", "app.log.1", "app.log.2", "app.log.3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := c.cfg
			cfg.When, cfg.Rotate = spec.Untimed, keep
			s := openTest(t, filepath.Join(dir, "app.log"), cfg, nil)
			for i := range keep + 3 {
				fmt.Fprintf(s, "batch %d\n", i)
				if _, err := s.Rotate(); err != nil {
					t.Fatal(err)
				}
				s.Wait() // as after a day: each rotation's work done
			}
			fmt.Fprintf(s, "batch %d\n", keep+3)
			s.Close()
			s.Wait()
			if got := names(t, dir); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("files %q, want %q", got, c.want)
			}
			files := readLog(t, dir, "app.log")
			for i, name := range c.want {
				if want := []string{fmt.Sprintf("batch %d", keep+3-i)}; !reflect.DeepEqual(files[name], want) {
					t.Errorf("%s holds %q, want %q", name, files[name], want)
				}
			}
			// zcat, as an operator would read them.
			if zcat, err := exec.LookPath("zcat"); err == nil && cfg.Compress {
				out, err := exec.Command(zcat, filepath.Join(dir, "app.log.3.gz")).Output()
				if err != nil || string(out) != "batch 3\n" {
					t.Errorf("zcat: %q %v", out, err)
				}
			}
		})
	}
}

func TestRotateZeroDiscards(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 0, Compress: true}, nil)
	fmt.Fprintln(s, "old")
	if _, err := s.Rotate(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(s, "new")
	s.Close()
	s.Wait()
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"app.log"}) {
		t.Fatalf("files %q", got)
	}
	if files := readLog(t, dir, "app.log"); !reflect.DeepEqual(files["app.log"], []string{"new"}) {
		t.Errorf("app.log holds %q", files["app.log"])
	}
}

// fakeClock is a settable time for a sink's now.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) set(t time.Time)      { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func (c *fakeClock) tweak() func(s *Sink) { return func(s *Sink) { s.now = c.now } }

func TestDateExt(t *testing.T) {
	dir := t.TempDir()
	var clock fakeClock
	clock.set(time.Date(2024, 12, 30, 12, 0, 0, 0, time.Local))
	cfg := spec.Log{When: spec.Untimed, Rotate: 2, Compress: true, DelayCompress: true, DateExt: true}
	s := openTest(t, filepath.Join(dir, "app.log"), cfg, clock.tweak())
	for i := range 4 {
		fmt.Fprintf(s, "day %d\n", i)
		if _, err := s.Rotate(); err != nil {
			t.Fatal(err)
		}
		s.Wait()
		clock.add(24 * time.Hour)
	}
	// The same day again: logrotate skips a rotation whose name is
	// taken; so does the sink, and the lines stay where they are.
	clock.add(-24 * time.Hour)
	fmt.Fprintln(s, "day 3 again")
	if _, err := s.Rotate(); !errors.Is(err, ErrExists) {
		t.Errorf("rotation to a taken name: %v", err)
	}
	s.Close()
	s.Wait()
	want := []string{"app.log", "app.log-20250101.gz", "app.log-20250102"}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	files := readLog(t, dir, "app.log")
	if !reflect.DeepEqual(files["app.log-20250102"], []string{"day 3"}) || !reflect.DeepEqual(files["app.log"], []string{"day 3 again"}) {
		t.Errorf("contents %q", files)
	}

	// hourly's default format, and dateyesterday.
	if got := strftime(spec.DefaultDateFormat(spec.Hourly), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)); got != "-2024010203" {
		t.Errorf("hourly name %q", got)
	}
	if got := strftime("-%Y%m%d-%H%M%S-%V-%s-%%", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)); got != "-20240102-030405-01-1704164645-%%" {
		t.Errorf("strftime %q", got)
	}
}

func TestNotIfEmpty(t *testing.T) {
	for _, notifempty := range []bool{true, false} {
		dir := t.TempDir()
		s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 3, NotIfEmpty: notifempty}, nil)
		if _, err := s.Rotate(); err != nil {
			t.Fatal(err)
		}
		s.Wait()
		want := []string{"app.log", "app.log.1"}
		if notifempty {
			want = want[:1]
		}
		if got := names(t, dir); !reflect.DeepEqual(got, want) {
			t.Errorf("notifempty=%v: files %q, want %q", notifempty, got, want)
		}
	}
}

func TestMissingOK(t *testing.T) {
	for _, missingok := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		s := openTest(t, path, spec.Log{When: spec.Untimed, Rotate: 3, MissingOK: missingok}, nil)
		fmt.Fprintln(s, "gone")
		os.Remove(path)
		_, err := s.Rotate()
		if missingok && err != nil || !missingok && !errors.Is(err, ErrMissing) {
			t.Errorf("missingok=%v: %v", missingok, err)
		}
		// Either way the sink has a file again and writes to it.
		fmt.Fprintln(s, "after")
		if got := names(t, dir); !reflect.DeepEqual(got, []string{"app.log"}) {
			t.Errorf("files %q", got)
		}
		if b, _ := os.ReadFile(path); string(b) != "after\n" {
			t.Errorf("app.log holds %q", b)
		}
	}
}

func TestSizeRotation(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Daily, Size: 10 * lineLen, Rotate: -1}, nil)
	buf := make([]byte, 0, lineLen)
	for i := range 25 {
		s.Write(appendLine(buf[:0], int64(i)))
	}
	s.Close()
	s.Wait()
	files := readLog(t, dir, "app.log")
	for name, n := range map[string]int{"app.log.2": 10, "app.log.1": 10, "app.log": 5} {
		if len(files[name]) != n {
			t.Errorf("%s has %d lines, want %d", name, len(files[name]), n)
		}
	}
	checkNumbered(t, files, 25)
}

// TestTimedRotation: the timer rotates at each period's start (here a
// period is 20 ms), not a check on every write; notifempty skips the
// periods with nothing written.
func TestTimedRotation(t *testing.T) {
	dir := t.TempDir()
	var ticks atomic.Int32
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Daily, Rotate: 5, NotIfEmpty: true}, func(s *Sink) {
		s.boundary = func(_ string, now time.Time) time.Time {
			ticks.Add(1)
			return now.Add(20 * time.Millisecond)
		}
	})
	fmt.Fprintln(s, "first period")
	eventually(t, 5*time.Second, "no rotation by the timer", func() bool { return exists(filepath.Join(dir, "app.log.1")) })
	at := ticks.Load()
	eventually(t, 5*time.Second, "timer stopped", func() bool { return ticks.Load() >= at+3 })
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"app.log", "app.log.1"}) {
		t.Errorf("empty periods rotated: %q", got)
	}
}

func TestNextBoundary(t *testing.T) {
	at := time.Date(2024, 2, 29, 13, 45, 0, 0, time.Local) // a Thursday
	for when, want := range map[string]time.Time{
		spec.Hourly:  time.Date(2024, 2, 29, 14, 0, 0, 0, time.Local),
		spec.Daily:   time.Date(2024, 3, 1, 0, 0, 0, 0, time.Local),
		spec.Weekly:  time.Date(2024, 3, 3, 0, 0, 0, 0, time.Local), // Sunday
		spec.Monthly: time.Date(2024, 3, 1, 0, 0, 0, 0, time.Local),
		spec.Yearly:  time.Date(2025, 1, 1, 0, 0, 0, 0, time.Local),
	} {
		if got := nextBoundary(when, at); !got.Equal(want) {
			t.Errorf("%s: %v, want %v", when, got, want)
		}
		if got := nextBoundary(when, want); !got.After(want) {
			t.Errorf("%s: at a boundary, the next is %v", when, got)
		}
	}
}

// TestStaleFileRotatedAtOpen: the daemon was down when the day ended; the
// file it finds holds yesterday's lines and is rotated before new ones.
func TestStaleFileRotatedAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte("yesterday\n"), 0o640)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(path, old, old)
	s := openTest(t, path, spec.DefaultLog(), nil)
	fmt.Fprintln(s, "today")
	s.Close()
	s.Wait()
	files := readLog(t, dir, "app.log")
	if !reflect.DeepEqual(files["app.log.1"], []string{"yesterday"}) || !reflect.DeepEqual(files["app.log"], []string{"today"}) {
		t.Errorf("files %q", files)
	}
}

// TestExternalRename: logrotate without copytruncate renames the file
// away; the sink notices within checkEvery and reopens, and every line is
// in one of the two files.
func TestExternalRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed, Rotate: 3}, func(s *Sink) { s.checkEvery = 5 * time.Millisecond })
	buf := make([]byte, 0, lineLen)
	i := 0
	write := func() { s.Write(appendLine(buf[:0], int64(i))); i++ }
	for range 100 {
		write()
	}
	if err := os.Rename(path, path+".ext"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no new file", func() bool { write(); return exists(path) })
	for range 100 {
		write()
	}
	s.Close()
	files := readLog(t, dir, "app.log")
	if len(files["app.log"]) < 100 || len(files["app.log.ext"]) < 100 {
		t.Errorf("%d and %d lines", len(files["app.log"]), len(files["app.log.ext"]))
	}
	checkNumbered(t, files, i)
}

// TestUnwritableDir: a log whose directory cannot be made (its parent is
// a file) drops and counts, reports, and recovers once it can.
func TestUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	block := filepath.Join(dir, "log")
	os.WriteFile(block, nil, 0o644)
	var mu sync.Mutex
	var kinds []string
	s := openTest(t, filepath.Join(block, "app.log"), spec.DefaultLog(), func(s *Sink) {
		s.retryEvery = 5 * time.Millisecond
		s.Notify(func(e Event) { mu.Lock(); kinds = append(kinds, e.Kind); mu.Unlock() })
	})
	if s.Err() == nil {
		t.Fatal("no error for a log under a file")
	}
	fmt.Fprintln(s, "lost")
	if s.Dropped() != 5 {
		t.Errorf("dropped %d, want 5", s.Dropped())
	}
	os.Remove(block)
	eventually(t, 5*time.Second, "no recovery", func() bool { fmt.Fprintln(s, "kept"); return s.Err() == nil })
	s.Close()
	if b, err := os.ReadFile(filepath.Join(block, "app.log")); err != nil || !strings.HasPrefix(string(b), "kept\n") {
		t.Errorf("app.log: %q %v", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 2 || kinds[0] != "error" || kinds[1] != "recovered" {
		t.Errorf("events %q", kinds)
	}
}

// TestDiskFull fills a small tmpfs: the writer is never blocked nor told,
// what does not fit is counted, no torn line stays behind, and writing
// resumes by itself once there is room again.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs; TestFileSizeLimit covers the same path")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount a tmpfs as root: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 128<<10), 0o644)
	fullTest(t, dir, func() { os.Remove(filler) }, syscall.ENOSPC)
}

// TestFileSizeLimit is the same with RLIMIT_FSIZE (EFBIG): any user can
// lower it, and raising it back is the room coming back.
func TestFileSizeLimit(t *testing.T) {
	restore := lowerFileSizeLimit(t, 64<<10)
	fullTest(t, t.TempDir(), restore, syscall.EFBIG)
}

// lowerFileSizeLimit sets this process's RLIMIT_FSIZE to limit (skipping
// the test where that cannot be done safely) and returns what raises it
// back: callable any number of times, and called at cleanup.
func lowerFileSizeLimit(t *testing.T, limit uint64) (restore func()) {
	t.Helper()
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			t.Skip("the limit is the whole process's, and its output goes to a file")
		}
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = limit
	if old.Cur != unix.RLIM_INFINITY && old.Cur < lim.Cur {
		t.Fatalf("file size limit %d already below %d", old.Cur, lim.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatalf("set RLIMIT_FSIZE: %v", err)
	}
	var once sync.Once
	restore = func() { once.Do(func() { unix.Setrlimit(unix.RLIMIT_FSIZE, &old) }) }
	t.Cleanup(restore)
	return restore
}

func fullTest(t *testing.T, dir string, makeRoom func(), want error) {
	var mu sync.Mutex
	var kinds []string
	var recovered Event
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 3}, func(s *Sink) {
		s.Notify(func(e Event) {
			mu.Lock()
			kinds = append(kinds, e.Kind)
			if e.Kind == "recovered" {
				recovered = e
			}
			mu.Unlock()
		})
	})
	// Seven lines a write, so that writes end part-way at the limit.
	buf := make([]byte, 0, 7*lineLen)
	i := int64(0)
	write := func() {
		buf = buf[:0]
		for range 7 {
			buf = appendLine(buf, i)
			i++
		}
		s.Write(buf)
	}
	for s.Dropped() == 0 && i < 1_000_000 {
		write()
	}
	if !errors.Is(s.Err(), want) {
		t.Fatalf("condition %v, want %v", s.Err(), want)
	}
	for range 10 {
		write()
	}
	dropped := s.Dropped()
	if dropped%(7*lineLen) != 0 || dropped < 11*7*lineLen {
		t.Errorf("dropped %d bytes, want whole writes", dropped)
	}
	makeRoom()
	write()
	if s.Err() != nil {
		t.Fatalf("not recovered: %v", s.Err())
	}
	s.Close()
	files := readLog(t, dir, "app.log")
	lines := files["app.log"]
	last := lastInOrder(t, lines)
	if last != int(i)-1 {
		t.Errorf("last line %d, want %d", last, i-1)
	}
	if int64(len(lines))*lineLen+dropped != i*lineLen {
		t.Errorf("%d lines kept and %d bytes dropped of %d lines", len(lines), dropped, i)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(kinds, []string{"error", "recovered"}) {
		t.Errorf("events %q", kinds)
	}
	// The recovery says what the condition cost, and which it was.
	if recovered.Lost != dropped || !errors.Is(recovered.Err, want) || !Full(recovered.Err) {
		t.Errorf("recovered after losing %d bytes to %v, want %d bytes to %v", recovered.Lost, recovered.Err, dropped, want)
	}
}

// TestDrainMemoryBounded: however much a flooding writer sends, Drain's
// buffer stays at maxBuf: the pipe, not the daemon, holds the rest.
func TestDrainMemoryBounded(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "app.log"), spec.Log{When: spec.Untimed, Size: 1 << 20, Rotate: 1}, nil)
	r, w, _ := os.Pipe()
	const lines = 200_000 // 12 MB
	go func() { writeLines(w, 0, lines, 1<<20); w.Close() }()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.Drain(r)
	runtime.ReadMemStats(&after)
	r.Close()
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Errorf("%d bytes allocated to drain %d", got, lines*lineLen)
	}
}
