package test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlSocketAccess: the CLI run as other users against a real
// daemon. A refused user gets the daemon's one line on stderr and exit 1;
// the groups come from etc/upkeep/policy.toml, and a broken policy file is
// reported with its position and lets only root in.
func TestControlSocketAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the CLI as other users")
	}
	h := newHost(t)
	as := cliAs(t, h)
	write := func(rel, body string) { writeTree(t, h.root, map[string]string{rel: body}) }
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n")
	write("etc/group", "root:x:0:\nops:x:2000:alice\nwatchers:x:2001:\n")
	write("etc/upkeep/policy.toml", "[control]\ngroup = \"ops\"\nread_group = \"watchers\"\n")
	h.write("www-a", "command = [\"/bin/sleep\", \"1000\"]\nautostart = true\n")
	h.daemon()
	h.eventually(10*time.Second, "www-a running", h.allRunning("www-a"))

	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	if stderr, code := as(nobody, "status"); code != 1 || stderr != "upkeep: permission denied: uid 65534 (nobody) is not root or in group \"ops\" or \"watchers\"\n" {
		t.Errorf("status as nobody: exit %d, stderr %q", code, stderr)
	}
	watcher := &syscall.Credential{Uid: 1001, Gid: 1001, Groups: []uint32{2001}}
	if stderr, code := as(watcher, "status"); code != 0 {
		t.Errorf("status as a watcher: exit %d, stderr %q", code, stderr)
	}
	if stderr, code := as(watcher, "restart", "www-a"); code != 1 || stderr != "upkeep: permission denied: uid 1001 may only read (group \"watchers\"); restart needs root or group \"ops\"\n" {
		t.Errorf("restart as a watcher: exit %d, stderr %q", code, stderr)
	}
	alice := &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{2000}}
	if stderr, code := as(alice, "restart", "www-a"); code != 0 {
		t.Errorf("restart as alice (ops): exit %d, stderr %q", code, stderr)
	}
	if fi, err := os.Stat(filepath.Join(h.root, "run/upkeep/upkeep.sock")); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket: %v %v", fi.Mode(), err)
	}
}

// cliAs returns a function that runs the built CLI against h as the
// user cred (nil: root) and returns its stderr and exit code. The binary
// is copied where every user may run it, and h's root made traversable.
func cliAs(t *testing.T, h *host) func(cred *syscall.Credential, args ...string) (string, int) {
	t.Helper()
	os.Chmod(h.root, 0o755)
	os.Chmod(filepath.Dir(h.root), 0o755)
	// bin lives in a directory only root may enter.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	pub := filepath.Join(dir, "upkeep")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return func(cred *syscall.Credential, args ...string) (string, int) {
		cmd := exec.Command(pub, append([]string{"--root", h.root}, args...)...)
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		cmd.Dir = "/"
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return errb.String(), code
	}
}

// TestControlAccessReload: the built daemon reads the [control] groups
// again at `upkeep reload` and at SIGHUP; a broken policy file keeps the
// access of before, and `upkeep reload` says where the file is wrong and
// exits 1.
func TestControlAccessReload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the CLI as other users")
	}
	h := newHost(t)
	as := cliAs(t, h)
	pol := filepath.Join(h.root, "etc/upkeep/policy.toml")
	writeTree(t, h.root, map[string]string{
		"etc/passwd":             "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n",
		"etc/group":              "root:x:0:\nops:x:2000:alice\nwatchers:x:2001:\n",
		"etc/upkeep/policy.toml": "[control]\ngroup = \"ops\"\n",
	})
	h.write("www-a", "command = [\"/bin/sleep\", \"1000\"]\nautostart = true\n")
	d := h.daemon()
	h.eventually(10*time.Second, "www-a running", h.allRunning("www-a"))
	watcher := &syscall.Credential{Uid: 1001, Gid: 1001, Groups: []uint32{2001}}
	if _, code := as(watcher, "status"); code != 1 {
		t.Fatalf("status as a watcher before any read_group: exit %d", code)
	}

	// SIGHUP with a read group added: the watcher reads from then on.
	os.WriteFile(pol, []byte("[control]\ngroup = \"ops\"\nread_group = \"watchers\"\n"), 0o644)
	d.Process.Signal(syscall.SIGHUP)
	h.eventually(10*time.Second, "the watcher may read after SIGHUP", func() bool { _, code := as(watcher, "status"); return code == 0 })

	// `upkeep reload` of a broken file: exit 1, the place, the old access.
	os.WriteFile(pol, []byte("[control]\ngroup = \"ops\nread_group = 5\n"), 0o644)
	stderr, code := as(nil, "reload")
	if code != 1 || !strings.Contains(stderr, pol+":2:") || !strings.HasSuffix(stderr, "upkeep: the host policy is broken; the control socket keeps its previous access\n") {
		t.Errorf("reload of a broken policy: exit %d, stderr %q", code, stderr)
	}
	if stderr, code := as(watcher, "status"); code != 0 {
		t.Errorf("status as a watcher after the broken reload: exit %d %q", code, stderr)
	}

	// Fixed, with the read group gone: `upkeep reload` takes it away.
	os.WriteFile(pol, []byte("[control]\ngroup = \"ops\"\n"), 0o644)
	if stderr, code := as(nil, "reload"); code != 0 {
		t.Errorf("reload of the fixed policy: exit %d %q", code, stderr)
	}
	if stderr, code := as(watcher, "status"); code != 1 || stderr != "upkeep: permission denied: uid 1001 is not root or in group \"ops\"\n" {
		t.Errorf("status as a watcher once read_group is gone: exit %d %q", code, stderr)
	}
}

// TestControlPolicyBroken: a policy file that does not parse is reported
// with file:line:col, and only root may use the socket.
func TestControlPolicyBroken(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root may use the socket then")
	}
	h := newHost(t)
	p := filepath.Join(h.root, "etc/upkeep/policy.toml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("[control]\ngroup = \"ops\nread_group = 5\n"), 0o644)
	h.write("www-a", "command = [\"/bin/sleep\", \"1000\"]\n")
	h.daemon()
	h.eventually(10*time.Second, "the daemon answers", func() bool { _, _, code := h.cli("status"); return answeredCode(code) })
	log, _ := os.ReadFile(filepath.Join(h.root, "var/log/upkeep.log"))
	if !strings.Contains(string(log), p+":2:") || !strings.Contains(string(log), "only root and the daemon's own user may use the control socket") {
		t.Errorf("the event log does not report the broken policy with its position:\n%s", log)
	}
}

// TestControlDescriptorsNeverExhausted: a daemon with a descriptor limit of
// 512 and 1,500 clients connected to its socket, idle, still spawns (a
// crashing service keeps being restarted, each start taking new pipes) and
// answers status: the connection cap keeps it under its limit.
func TestControlDescriptorsNeverExhausted(t *testing.T) {
	h := newHost(t)
	h.write("www-crash", `command = ["/bin/sh", "-c", "sleep 0.05; exit 1"]
autostart = true
[restart]
policy = "always"
backoff = "10ms"
max_backoff = "20ms"
limit = 100000
window = "1s"
`)
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 512 && exec "$0" --root "$1" daemon -q`, bin, h.root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		checkRaces(t, "upkeep daemon", stderr.String())
		if strings.Contains(stderr.String(), "too many open files") {
			t.Errorf("the daemon ran out of descriptors")
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", stderr.String())
		}
	})
	sock := filepath.Join(h.root, "run/upkeep/upkeep.sock")
	restarts := func() int {
		st, ok := h.status()["www-crash"]
		if !ok {
			return -1
		}
		return st.Restarts
	}
	h.eventually(10*time.Second, "www-crash restarting", func() bool { return restarts() > 0 })
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 1500 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	r0 := restarts()
	if r0 < 0 {
		t.Fatal("status failed with 1,500 clients connected")
	}
	h.eventually(10*time.Second, "www-crash restarted with 1,500 clients connected", func() bool { return restarts() >= r0+3 })
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
	if len(fds) > 512 {
		t.Errorf("the daemon holds %d descriptors, over its limit of 512?", len(fds))
	}
	t.Logf("daemon descriptors with 1,500 clients connected: %d (limit 512)", len(fds))
}
