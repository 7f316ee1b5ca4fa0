package logsink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

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
		t.Skip(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	lim := old
	lim.Cur = uint64(len(entries) + 8)
	if lim.Cur > old.Cur {
		t.Skip("descriptor limit already lower")
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
		t.Skipf("cannot set RLIMIT_NOFILE: %v", err)
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
	err := s.Rotate()
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
