package logsink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

// exhaustFDs lowers this process's soft RLIMIT_NOFILE to a few above what
// it has open and opens /dev/null until no descriptor is left. It returns
// what gives them back: callable any number of times, and called at
// cleanup.
func exhaustFDs(t *testing.T) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(len(entries) + 8)
	if lim.Cur > old.Cur {
		t.Fatalf("descriptor limit %d already below %d", old.Cur, lim.Cur)
	}
	var held []int
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		for _, fd := range held {
			unix.Close(fd)
		}
		unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	}
	t.Cleanup(restore)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("set RLIMIT_NOFILE: %v", err)
	}
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		held = append(held, fd)
	}
	return restore
}

// TestRotateAtDescriptorLimit: a rotation with no descriptor free (the
// daemon at its limit) still happens and drops nothing: the old file is
// closed before the new one is opened, so the new one takes its number.
// Writing goes on into the new file.
func TestRotateAtDescriptorLimit(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 3}, nil)
	fmt.Fprintln(s, "before")
	restore := exhaustFDs(t)
	if _, err := unix.Open("/dev/null", unix.O_RDONLY, 0); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("a descriptor is still free: %v", err)
	}
	_, err := s.Rotate()
	fmt.Fprintln(s, "during")
	restore()
	if err != nil {
		t.Errorf("rotation at the limit: %v", err)
	}
	if s.Err() != nil || s.Dropped() != 0 {
		t.Errorf("at the limit: condition %v, %d bytes dropped", s.Err(), s.Dropped())
	}
	s.Close()
	s.Wait()
	files := readLog(t, dir, "app.log")
	want := map[string][]string{"app.log": {"during"}, "app.log.1": {"before"}}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
}

// TestFlappingConditionIsOneEvent: a nearly full disk flaps (a write
// fits whenever something frees a little room, the next fails). The sink
// reports the condition once, and its end once output has been written
// fine for settleWait, with all it cost: one pair of events, not one per
// flap.
func TestFlappingConditionIsOneEvent(t *testing.T) {
	restore := lowerFileSizeLimit(t, 64<<10)
	var mu sync.Mutex
	var events []Event
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "app.log"), spec.Log{When: spec.Untimed, Rotate: 3}, func(s *Sink) {
		s.settleWait = 50 * time.Millisecond
		s.Notify(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	})
	buf := make([]byte, 0, lineLen)
	i := int64(0)
	write := func() { s.Write(appendLine(buf[:0], i)); i++ }
	for s.Err() == nil {
		write()
	}
	for range 5 { // room for one line, then none again
		fi, err := os.Stat(filepath.Join(dir, "app.log"))
		if err != nil {
			t.Fatal(err)
		}
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_FSIZE, &lim)
		lim.Cur = uint64(fi.Size()) + lineLen
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		write()
		if s.Err() != nil {
			t.Fatalf("the line that fits: %v", s.Err())
		}
		write()
		if s.Err() == nil {
			t.Fatal("the line that does not fit was written")
		}
	}
	restore()
	write()
	eventually(t, 5*time.Second, "the condition to be reported over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if events[0].Kind != "error" || events[1].Kind != "recovered" {
		t.Fatalf("events %v", events)
	}
	if events[1].Lost != s.Dropped() || events[1].Lost < 6*lineLen || !errors.Is(events[1].Err, syscall.EFBIG) {
		t.Errorf("recovered after losing %d bytes (dropped %d) to %v", events[1].Lost, s.Dropped(), events[1].Err)
	}
}
