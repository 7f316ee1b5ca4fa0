package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/proc"
)

// A kept sandbox (--keep) outlives `upkeep test`: its record,
// run/upkeep/sandbox/ID under the root, names its PID 1 (as the host sees
// it) with its start time, so --enter and --stop never act on a reused pid.
// The record is written as soon as the sandbox starts, so even a SIGKILL
// of `upkeep test` before it detaches leaves something --stop can end.
const keptDir = "run/upkeep/sandbox"

// Kept is a kept sandbox's record.
type Kept struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	PID     int    `json:"pid"`
	Start   uint64 `json:"start_time"` // clock ticks since boot, /proc/PID/stat
	Enter   string `json:"enter"`      // the command that enters it
	NSEnter string `json:"nsenter"`    // the same with util-linux's nsenter
}

func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func keptPath(root, id string) string { return filepath.Join(root, keptDir, id) }

func writeKept(root string, k *Kept) error {
	dir := filepath.Join(root, keptDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(k, "", "  ")
	tmp := keptPath(root, "."+k.ID)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, keptPath(root, k.ID))
}

// nsenterLine is the nsenter command that runs argv in the sandbox of
// pid. A sandbox in a user namespace of its own is entered through it,
// keeping our ids (setgroups is denied there): we are its root.
func nsenterLine(pid int, argv ...string) []string {
	line := []string{"nsenter", "--target", strconv.Itoa(pid)}
	self, _ := os.Readlink("/proc/self/ns/user")
	if theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); err == nil && theirs != self {
		line = append(line, "--user", "--preserve-credentials")
	}
	line = append(line, "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd", "--")
	return append(line, argv...)
}

// checkID refuses anything but a record's name: the ID is joined to a path.
func checkID(id string) error {
	if len(id) != 8 {
		return UsageError{fmt.Errorf("sandbox id %q: want 8 hex digits (upkeep test --keep prints it)", id)}
	}
	if _, err := hex.DecodeString(id); err != nil {
		return UsageError{fmt.Errorf("sandbox id %q: want 8 hex digits (upkeep test --keep prints it)", id)}
	}
	return nil
}

// findKept reads a record and proves its PID 1 is still the same process:
// a pidfd, then the start time (the pid may have been reused since).
func findKept(root, id string) (*Kept, int, error) {
	if err := checkID(id); err != nil {
		return nil, -1, err
	}
	b, err := os.ReadFile(keptPath(root, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, -1, fmt.Errorf("no kept sandbox %s (no %s)", id, keptPath(root, id))
	}
	if err != nil {
		return nil, -1, err
	}
	k := &Kept{}
	if err := json.Unmarshal(b, k); err != nil || k.PID <= 0 {
		return nil, -1, fmt.Errorf("%s: not a sandbox record", keptPath(root, id))
	}
	fd, err := unix.PidfdOpen(k.PID, 0)
	if err != nil {
		return k, -1, fmt.Errorf("sandbox %s is gone (pid %d: %v)", id, k.PID, err)
	}
	if st, err := proc.StartTime(k.PID); err != nil || st != k.Start {
		unix.Close(fd)
		return k, -1, fmt.Errorf("sandbox %s is gone (pid %d is another process now)", id, k.PID)
	}
	return k, fd, nil
}

// Enter runs argv (a shell when empty) inside a kept sandbox, with the
// caller's terminal, through nsenter: joining a mount namespace needs a
// single-threaded process, which a Go program is not. It returns the
// command's exit status.
func Enter(root, id string, argv []string) (int, error) {
	k, fd, err := findKept(root, id)
	if err != nil {
		return 1, err
	}
	unix.Close(fd)
	return enter(k.PID, argv)
}

func enter(pid int, argv []string) (int, error) {
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return 1, errors.New("entering a sandbox needs nsenter (util-linux), which is not on PATH")
	}
	line := nsenterLine(pid, argv...)
	cmd := exec.Command(nsenter, line[1:]...)
	cmd.Env = []string{"PATH=" + proc.DefaultPath, "HOME=/root", "TERM=" + os.Getenv("TERM"), "PS1=upkeep-test# "}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// On a terminal the command gets the foreground, as a shell gives a
	// job: Ctrl-C is the shell's inside, not ours.
	tty := isTerminal(0)
	if tty {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	err = cmd.Run()
	if tty {
		// Take the terminal back; from the background that raises SIGTTOU.
		signal.Ignore(syscall.SIGTTOU)
		_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
		signal.Reset(syscall.SIGTTOU)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("enter the sandbox: %w", err)
	}
	return 0, nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// Stop ends a kept sandbox: SIGTERM to its PID 1 (the daemon stops its
// services with their stop timeouts), SIGKILL after wait, and the record
// goes. A record whose sandbox is gone is removed with a note.
func Stop(root, id string, wait time.Duration) (string, error) {
	k, fd, err := findKept(root, id)
	if err != nil {
		if k != nil {
			_ = os.Remove(keptPath(root, id))
			return fmt.Sprintf("%v; removed its record", err), nil
		}
		return "", err
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
		return "", fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	how := "stopped"
	if !pidfdExited(fd, wait) {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		how = fmt.Sprintf("killed (its daemon did not exit within %v of SIGTERM)", wait)
		if !pidfdExited(fd, 5*time.Second) {
			return "", fmt.Errorf("sandbox %s (pid %d) did not exit after SIGKILL", id, k.PID)
		}
	}
	// The kernel kills the rest of the PID namespace as its init exits;
	// the namespace is gone once the host's init has reaped that init.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := proc.StartTime(k.PID); err != nil || st != k.Start {
			break
		}
		if time.Now().After(deadline) {
			how += fmt.Sprintf("; pid %d is not reaped yet (by the host's init)", k.PID)
			break
		}
	}
	if err := os.Remove(keptPath(root, id)); err != nil {
		return "", err
	}
	return fmt.Sprintf("sandbox %s of %s %s", id, k.Service, how), nil
}

// pidfdExited waits until the process of fd has exited (a pidfd polls
// readable then), at most d.
func pidfdExited(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		if n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}
