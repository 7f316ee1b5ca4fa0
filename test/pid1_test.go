package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inPidNS runs `upkeep daemon` as PID 1 of a new PID namespace, as
// `docker run … upkeep daemon` does, and returns the unshare command and
// the daemon's pid as the test's namespace sees it.
func inPidNS(t *testing.T, h *host) (*exec.Cmd, *bytes.Buffer, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare (util-linux)")
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", bin, "--root", h.root, "daemon", "-q")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			cmd.Process.Kill() // unshare; the kernel then kills the namespace with its PID 1
			cmd.Wait()
		}
	})
	var pid int
	h.eventually(10*time.Second, "the daemon forked by unshare", func() bool {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "task", strconv.Itoa(cmd.Process.Pid), "children"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	if nspid(pid) != "1" {
		t.Fatalf("the daemon is pid %s in its namespace, want 1", nspid(pid))
	}
	t.Cleanup(func() { done = true })
	return cmd, &stderr, pid
}

// nspid is pid's own number in its innermost PID namespace.
func nspid(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "NSpid:" {
			return f[len(f)-1]
		}
	}
	return ""
}

// inNS lists the processes in the PID namespace of pid (itself included),
// each as its command name and state.
func inNS(pid int) map[int]string {
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "pid"))
	out := map[int]string{}
	if err != nil {
		return out
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); l != ns {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, shut := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[shut+1:])
		out[p] = s[open+1:shut] + " " + f[0]
	}
	return out
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestPID1ReapsOrphansAndStopsCleanly(t *testing.T) {
	h := newHost(t)
	stopped := filepath.Join(h.root, "stopped")
	started := filepath.Join(h.root, "started")
	h.write("service-db", "autostart = true\nscript = \"\"\"\n"+
		"trap 'echo db >> "+stopped+"; exit 0' TERM\nsleep 1000 & wait\n\"\"\"\n")
	// The subshell forks sleep and exits at once: sleep is an orphan,
	// reparented to PID 1, which must reap it when it exits.
	h.write("www-app", "autostart = true\ndepends_on = [\"service-db\"]\nscript = \"\"\"\n"+
		"trap 'echo app >> "+stopped+"; exit 0' TERM\n"+
		"(sleep 0.4 &)\ntouch "+started+"\nsleep 1000 & wait\n\"\"\"\n")
	cmd, stderr, pid := inPidNS(t, h)
	h.eventually(20*time.Second, "www-app's start", func() bool { _, err := os.Stat(started); return err == nil })
	// Two sleeps (the orphan and www-app's), one of service-db; once the
	// orphan has exited and been reaped, two, and no zombie.
	h.eventually(10*time.Second, "the orphan reaped", func() bool {
		sleeps, zombies := 0, 0
		for _, p := range inNS(pid) {
			if strings.HasPrefix(p, "sleep ") {
				sleeps++
			}
			if strings.HasSuffix(p, " Z") {
				zombies++
			}
		}
		return sleeps == 2 && zombies == 0
	})
	syscall.Kill(pid, syscall.SIGTERM) // unshare passes nothing on: signal PID 1 itself
	err := cmd.Wait()
	checkRaces(t, "daemon as pid 1", stderr.String())
	if code := exitCode(err); code != 0 {
		t.Fatalf("PID 1 exited %d after a clean stop, want 0:\n%s", code, stderr.String())
	}
	b, _ := os.ReadFile(stopped)
	if string(b) != "app\ndb\n" {
		t.Errorf("services stopped as %q, want app then db, each by its own trap", b)
	}
	if left := inNS(pid); len(left) > 0 {
		t.Errorf("left in the namespace: %v", left)
	}
}

func TestPID1ExitStatusNamesWhoWasKilled(t *testing.T) {
	h := newHost(t)
	h.write("www-stuck", "autostart = true\nscript = \"trap '' TERM; sleep 1000\"\n[stop]\ntimeout = \"300ms\"\n")
	h.write("www-fine", "autostart = true\ncommand = [\"/bin/sleep\", \"1000\"]\n")
	cmd, stderr, pid := inPidNS(t, h)
	h.eventually(20*time.Second, "both services", func() bool {
		n := 0
		for _, p := range inNS(pid) {
			if strings.HasPrefix(p, "sleep ") {
				n++
			}
		}
		return n == 2
	})
	syscall.Kill(pid, syscall.SIGTERM)
	err := cmd.Wait()
	checkRaces(t, "daemon as pid 1", stderr.String())
	if code := exitCode(err); code == 0 {
		t.Fatalf("PID 1 exited 0 though www-stuck had to be killed:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "killed after their stop timeout: www-stuck") {
		t.Errorf("stderr does not say who was killed:\n%s", stderr.String())
	}
}
