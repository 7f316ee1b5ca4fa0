package test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a unixgram socket standing in for systemd's
// NOTIFY_SOCKET; its messages arrive on the channel.
func notifySocket(t *testing.T, name string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

// await returns the first message that contains want, failing after limit.
func await(t *testing.T, msgs <-chan string, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, limit)
		}
	}
}

func TestDaemonSpeaksSdNotify(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"path", ""},
		{"abstract", "@upkeep-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			addr := tc.addr
			if addr == "" {
				addr = filepath.Join(t.TempDir(), "notify")
			}
			msgs := notifySocket(t, addr)
			env := filepath.Join(h.root, "env.txt")
			h.write("www-up", "autostart = true\nscript = \"env > "+env+"; exec sleep 1000\"\n")
			h.write("www-down", "autostart = true\ncommand = [\"/bin/false\"]\n[restart]\npolicy = \"never\"\n")
			// A dependent waits for its dependency's check: READY=1 waits
			// for both, not for the processes alone.
			h.write("www-late", "autostart = true\ndepends_on = [\"www-up\"]\ncommand = [\"/bin/sleep\", \"1000\"]\n")
			cmd := exec.Command(bin, "--root", h.root, "daemon", "-q")
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr, "WATCHDOG_USEC=200000", "WATCHDOG_PID=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
				checkRaces(t, "daemon", stderr.String())
			})
			ready := await(t, msgs, "READY=1", 20*time.Second)
			if !strings.Contains(ready, "STATUS=2 running, 1 failed") {
				t.Errorf("READY=1 came with %q, want the counts of the settled services", ready)
			}
			if st := h.status(); st["www-late"].State != "running" || st["www-down"].State != "exited" {
				t.Errorf("READY=1 before the autostart services settled: %v", st)
			}
			await(t, msgs, "WATCHDOG=1", 5*time.Second)
			b, _ := os.ReadFile(env)
			if strings.Contains(string(b), "NOTIFY_SOCKET") || strings.Contains(string(b), "WATCHDOG_") {
				t.Errorf("a service inherited the daemon's notify environment:\n%s", b)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			await(t, msgs, "STOPPING=1", 10*time.Second)
			select {
			case err := <-done:
				done <- err
				if err != nil {
					t.Errorf("daemon exited with %v after a clean shutdown:\n%s", err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("daemon did not exit after SIGTERM")
			}
		})
	}
}

// TestWatchdogForAnotherPidIsIgnored: WATCHDOG_PID names the process the
// watchdog is for (sd_watchdog_enabled(3)); another pid gets no pings.
func TestWatchdogForAnotherPidIsIgnored(t *testing.T) {
	h := newHost(t)
	addr := filepath.Join(t.TempDir(), "notify")
	msgs := notifySocket(t, addr)
	// Its exit, 300 ms after READY=1, changes STATUS=: fifteen pings would
	// have come before that message.
	h.write("www-brief", "autostart = true\nscript = \"sleep 0.3; exit 1\"\n[restart]\npolicy = \"never\"\n")
	cmd := exec.Command(bin, "--root", h.root, "daemon", "-q")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr, "WATCHDOG_USEC=40000", "WATCHDOG_PID=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for m := range msgs {
		if strings.Contains(m, "WATCHDOG=1") {
			t.Fatalf("pinged a watchdog meant for pid 1: %q", m)
		}
		if strings.Contains(m, "STATUS=0 running, 1 failed") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon: %v", err)
	}
}

// The CLI of provision --boot and --db, through the built binary.
func TestProvisionBootAndDBFlags(t *testing.T) {
	h := newHostHome(t)
	writeTree(t, h.root, map[string]string{"run/systemd/system/.keep": ""})
	out := h.must("provision", "--boot", "--dry-run")
	if !strings.Contains(out, "# would write "+filepath.Join(h.root, "etc/systemd/system/upkeep.service")) ||
		!strings.Contains(out, "ExecStart="+bin+" --root "+h.root+" daemon\n") {
		t.Errorf("provision --boot --dry-run:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(h.root, "etc/systemd")); err == nil {
		t.Error("the dry run wrote etc/systemd")
	}
	if out, _, _ := h.up("doctor"); !strings.Contains(out, "warning: "+filepath.Join(h.root, "etc/systemd/system/upkeep.service")+": no boot file") {
		t.Errorf("doctor without a boot file:\n%s", out)
	}
	h.must("provision", "--boot=systemd")
	if got, _ := os.Readlink(filepath.Join(h.root, "etc/systemd/system/multi-user.target.wants/upkeep.service")); got != "/etc/systemd/system/upkeep.service" {
		t.Errorf("not enabled: %q", got)
	}
	if out, _, code := h.up("doctor"); code != 0 || strings.Contains(out, "boot file") {
		t.Errorf("doctor after provision --boot: exit %d\n%s", code, out)
	}
	if _, stderr, code := h.up("provision", "--boot=upstart"); code != 2 || !strings.Contains(stderr, "want auto, systemd, sysv, openrc or none") {
		t.Errorf("--boot=upstart: exit %d %q", code, stderr)
	}
	vol := t.TempDir()
	h.write("service-pg", "command = [\"/bin/true\"]\n")
	h.must("provision", "--db", "service-pg="+vol)
	if got, _ := os.Readlink(filepath.Join(h.root, "var/db/service-pg")); got != vol {
		t.Errorf("var/db/service-pg -> %q, want %s", got, vol)
	}
	if _, stderr, code := h.up("provision", "--db", "service-pg"); code != 2 || !strings.Contains(stderr, "want NAME=PATH") {
		t.Errorf("--db without =: exit %d %q", code, stderr)
	}
}

// The sysvinit script provision writes starts and stops a real daemon.
func TestSysvScriptStartsAndStopsTheDaemon(t *testing.T) {
	h := newHostHome(t)
	stopped := filepath.Join(h.root, "stopped")
	h.write("www-app", "autostart = true\nscript = \"trap 'echo app > "+stopped+"; exit 0' TERM; sleep 1000 & wait\"\n")
	h.must("provision", "--boot=sysv")
	script := filepath.Join(h.root, "etc/init.d/upkeep")
	run := func(verb string) (string, int) {
		cmd := exec.Command("sh", script, verb)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	t.Cleanup(func() { run("stop") })
	h.eventually(10*time.Second, "www-app running", h.allRunning("www-app"))
	if out, code := run("status"); code != 0 || !strings.Contains(out, "is running") {
		t.Errorf("status: exit %d %q", code, out)
	}
	if out, code := run("start"); code != 0 || !strings.Contains(out, "already running") {
		t.Errorf("second start: exit %d %q", code, out)
	}
	if out, code := run("stop"); code != 0 {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(stopped); string(b) != "app\n" {
		t.Errorf("www-app was not stopped by the daemon: %q", b)
	}
	if out, code := run("status"); code != 3 {
		t.Errorf("status after stop: exit %d %q, want 3", code, out)
	}
}
