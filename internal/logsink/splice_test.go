package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// Drain splices a flood from a pipe (splice(2)) and reads the rest; these
// tests make the splices end inside lines, which the writers below do by
// writing in pieces that are not whole lines. A reader in the same process
// keeps up with a writer easily; writes larger than the pipe (64 KiB) fill
// it, which is what makes the drain see a flood.

// writeChunks writes lines from..to-1 to w in writes of size bytes, which
// split lines wherever they fall.
func writeChunks(w *os.File, from, to int64, size int) error {
	buf := make([]byte, 0, size+lineLen)
	for i := from; i < to; i++ {
		buf = appendLine(buf, i)
		for len(buf) >= size {
			if _, err := w.Write(buf[:size]); err != nil {
				return err
			}
			buf = append(buf[:0], buf[size:]...)
		}
	}
	_, err := w.Write(buf)
	return err
}

func spliced(s *Sink) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spliced
}

func sizeOf(s *Sink) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func owned(s *Sink) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner != nil
}

// TestDrainSplicesFloods: a flood through a real pipe is spliced, and the
// file holds exactly what was written.
func TestDrainSplicesFloods(t *testing.T) {
	const n = 200_000 // 12 MB
	path := filepath.Join(t.TempDir(), "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed}, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { writeChunks(w, 0, n, 100_003); w.Close() }()
	s.Drain(r)
	r.Close()
	s.Close()
	if spliced(s) == 0 {
		t.Error("nothing was spliced")
	}
	t.Logf("%d of %d bytes spliced", spliced(s), n*lineLen)
	got, _ := os.ReadFile(path)
	want := make([]byte, 0, n*lineLen)
	for i := range int64(n) {
		want = appendLine(want, i)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file differs from input: %d vs %d bytes", len(got), len(want))
	}
}

// TestSplicingDrainsNeverInterleaveLines: three floods into one sink, in
// writes that split lines, so that splices end inside lines all the time;
// every line comes out whole, each writer's in order.
func TestSplicingDrainsNeverInterleaveLines(t *testing.T) {
	const writers, n = 3, 100_000
	path := filepath.Join(t.TempDir(), "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed}, nil)
	var wg sync.WaitGroup
	for k := range writers {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.Drain(r); r.Close() }()
		// Writer k writes the numbers k, k+writers, k+2*writers, …
		go func() {
			buf := make([]byte, 0, 80_000)
			for i := int64(k); i < writers*n; i += writers {
				buf = appendLine(buf, i)
				if len(buf) > 70_001 {
					w.Write(buf[:70_001])
					buf = append(buf[:0], buf[70_001:]...)
				}
			}
			w.Write(buf)
			w.Close()
		}()
	}
	wg.Wait()
	s.Close()
	files := readLog(t, filepath.Dir(path), "app.log")
	checkNumbered(t, files, writers*n)
	last := make([]int, writers)
	for k := range last {
		last[k] = -1
	}
	for _, l := range files["app.log"] {
		i, _ := strconv.Atoi(l[:10])
		if i <= last[i%writers] {
			t.Fatalf("line %d after %d", i, last[i%writers])
		}
		last[i%writers] = i
	}
	if spliced(s) == 0 {
		t.Log("nothing was spliced: a weak run")
	}
}

// pausedMidLine brings a drain into splicing with a flood, then has it
// splice half a line and pause there. It returns the pipe's write end and
// the rest of that line.
func pausedMidLine(t *testing.T, s *Sink) (w *os.File, rest []byte, done chan struct{}) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { s.Drain(r); r.Close(); close(done) }()
	if err := writeChunks(w, 0, 100_000, 65536); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the flood not written", func() bool { return sizeOf(s) == 100_000*lineLen })
	if spliced(s) == 0 {
		t.Fatal("nothing was spliced")
	}
	line := appendLine(nil, 100_000)
	w.Write(line[:20])
	eventually(t, 5*time.Second, "the half line not spliced", func() bool { return sizeOf(s) == 100_000*lineLen+20 })
	if !owned(s) {
		t.Fatal("the drain does not own the half line")
	}
	return w, line[20:], done
}

// TestRotateWaitsForTheLine: a forced rotation while the file ends inside
// a line waits for the line's end; when the service pauses there, Rotate
// says so (ErrPending), and the rotation happens right after the newline.
func TestRotateWaitsForTheLine(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: -1}, func(s *Sink) { s.lineWait = 50 * time.Millisecond })
	w, rest, done := pausedMidLine(t, s)
	if _, err := s.Rotate(); !errors.Is(err, ErrPending) {
		t.Fatalf("Rotate inside a paused line: %v", err)
	}
	if exists(filepath.Join(dir, "app.log.1")) {
		t.Fatal("rotated inside a line")
	}
	w.Write(rest)
	writeChunks(w, 100_001, 100_010, 4096)
	w.Close()
	<-done
	s.Close()
	files := readLog(t, dir, "app.log")
	checkNumbered(t, files, 100_010)
	if got := files["app.log.1"]; len(got) != 100_001 {
		t.Errorf("app.log.1 has %d lines, want the 100001 before the rotation", len(got))
	}
	if got := files["app.log"]; len(got) != 9 {
		t.Errorf("app.log has %d lines, want 9", len(got))
	}
}

// TestWriteWaitsForTheLine: another writer waits for the line to end; a
// service paused inside it for longer than lineWait has its line ended, and
// its rest becomes a line of its own (documented in docs/logs.md).
func TestWriteWaitsForTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed}, func(s *Sink) { s.lineWait = 50 * time.Millisecond })
	w, rest, done := pausedMidLine(t, s)
	start := time.Now()
	s.Write([]byte("other\n"))
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Write waited %v, want lineWait", waited)
	}
	w.Write(rest)
	w.Close()
	<-done
	s.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	n := len(lines)
	want := []string{string(appendLine(nil, 100_000)[:20]), "other", strings.TrimSuffix(string(rest), "\n")}
	if n < 3 || !reflect.DeepEqual(lines[n-3:], want) {
		t.Errorf("last lines %q, want %q", lines[max(0, n-3):], want)
	}
}

// TestSplicedFileSizeLimit: the file size limit (EFBIG) hit while
// splicing: what does not fit is dropped as whole lines, counted, and
// writing resumes by itself once the limit is raised.
func TestSplicedFileSizeLimit(t *testing.T) {
	restore := lowerFileSizeLimit(t, 4<<20)

	dir := t.TempDir()
	var mu sync.Mutex
	var kinds []string
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 3}, func(s *Sink) {
		s.Notify(func(e Event) { mu.Lock(); kinds = append(kinds, e.Kind); mu.Unlock() })
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Drain(r); r.Close(); close(done) }()
	const n = 200_000 // 12 MB: the limit comes at a third
	var i int64
	for ; i < n/2; i += 10_000 {
		writeChunks(w, i, i+10_000, 70_001)
	}
	if !errors.Is(s.Err(), syscall.EFBIG) {
		t.Fatalf("condition %v, want EFBIG", s.Err())
	}
	restore()
	for ; i < n; i += 10_000 {
		writeChunks(w, i, i+10_000, 70_001)
	}
	w.Close()
	<-done
	if s.Err() != nil {
		t.Fatalf("not recovered: %v", s.Err())
	}
	s.Close()
	files := readLog(t, dir, "app.log")
	lines := files["app.log"]
	last := lastInOrder(t, lines)
	dropped := s.Dropped()
	if last != n-1 {
		t.Errorf("last line %d, want %d", last, n-1)
	}
	if int64(len(lines))*lineLen+dropped != n*lineLen {
		t.Errorf("%d lines kept and %d bytes dropped of %d lines", len(lines), dropped, n)
	}
	t.Logf("%d lines kept, %d dropped, %d bytes spliced", len(lines), dropped/lineLen, spliced(s))
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(kinds, []string{"error", "recovered"}) {
		t.Errorf("events %q", kinds)
	}
}

// TestOutsideCopytruncate: an outside logrotate truncates the file in
// place; writing goes on at the new end, not at the old offset (which
// would leave a hole of NULs), as O_APPEND would have it.
func TestOutsideCopytruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	s := openTest(t, path, spec.Log{When: spec.Untimed}, nil)
	fmt.Fprintln(s, "before")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(s, "after")
	if b, _ := os.ReadFile(path); string(b) != "after\n" {
		t.Errorf("file holds %q", b)
	}
}
