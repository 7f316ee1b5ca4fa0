package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upkeep/internal/proc"
)

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{"0123abcd": true, "../../et": false, "0123abc": false, "0123abcg": false, "": false, "0123abcd/": false} {
		if err := checkID(id); (err == nil) != ok {
			t.Errorf("checkID(%q) = %v", id, err)
		}
		var ue UsageError
		if err := checkID(id); err != nil && !errors.As(err, &ue) {
			t.Errorf("checkID(%q): %v is no UsageError", id, err)
		}
	}
}

// A record names a process by pid and start time: a live one is found, a
// reused pid (another start time) or a dead one is not, and Stop ends a
// real one and removes its record.
func TestKeptRecord(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	st, err := proc.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kept{ID: "0000aaaa", Service: "www-a", PID: cmd.Process.Pid, Start: st}
	if err := writeKept(root, k); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(root, keptDir)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("record directory: %v %v", info, err)
	}
	if _, fd, err := findKept(root, k.ID); err != nil {
		t.Fatalf("a live sandbox: %v", err)
	} else if fd >= 0 {
		defer func() { _ = os.NewFile(uintptr(fd), "pidfd").Close() }()
	}
	reused := *k
	reused.ID, reused.Start = "0000bbbb", st+1
	if err := writeKept(root, &reused); err != nil {
		t.Fatal(err)
	}
	if _, _, err := findKept(root, reused.ID); err == nil || !strings.Contains(err.Error(), "is another process now") {
		t.Errorf("a reused pid: %v", err)
	}
	msg, err := Stop(root, reused.ID, time.Second)
	if err != nil || !strings.Contains(msg, "removed its record") {
		t.Errorf("stop of a gone sandbox: %q, %v", msg, err)
	}
	if _, _, err := findKept(root, "0000cccc"); err == nil || !strings.Contains(err.Error(), "no kept sandbox 0000cccc") {
		t.Errorf("no record: %v", err)
	}
	msg, err = Stop(root, k.ID, 5*time.Second)
	if err != nil || !strings.Contains(msg, "sandbox 0000aaaa of www-a stopped") {
		t.Errorf("stop: %q, %v", msg, err)
	}
	select { // Stop saw it reaped; Wait's return may trail a little
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("the process outlived Stop")
	}
	if _, err := os.Stat(filepath.Join(root, keptDir, k.ID)); !os.IsNotExist(err) {
		t.Errorf("the record outlived Stop: %v", err)
	}
}

// FuzzKeptRecord: whatever a record holds, reading it is an error or a
// record, never a panic, and never names a pid 0 or less.
func FuzzKeptRecord(f *testing.F) {
	f.Add([]byte(`{"id":"0000aaaa","service":"www-a","pid":1,"start_time":1}`))
	f.Add([]byte(`{"pid":-1}`))
	f.Add([]byte(`{"pid":0}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte(`{"pid":99999999999999999999}`))
	root := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, keptDir), 0o700); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(root, keptDir, "0000aaaa"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		k, fd, err := findKept(root, "0000aaaa")
		if fd >= 0 {
			_ = os.NewFile(uintptr(fd), "pidfd").Close()
		}
		if err == nil && (k == nil || k.PID <= 0) {
			t.Errorf("accepted %q as %+v", b, k)
		}
	})
}
