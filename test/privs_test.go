package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"a.upkeep.local/shim"
)

func procStatus(pid int) map[string]string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// The built binary is its own shim: a service that needs one is started
// as `upkeep __exec`, which execs the service in place.
func TestBinaryAppliesPrivilegesThroughItsShim(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	h := newHost(t)
	os.Chmod(h.root, 0o755)
	os.Chmod(filepath.Dir(h.root), 0o755)
	h.write("www-bind", `user = "nobody"
command = ["/bin/sleep", "1000"]
capabilities = ["net_bind_service"]
umask = "0007"
ready_after = "0s"
`)
	h.daemon()
	var pid int
	h.eventually(10*time.Second, "www-bind running its sleep", func() bool {
		st := h.status()["www-bind"]
		pid = st.Pid
		return st.State == "running" && pid > 0 && strings.HasPrefix(cmdline(pid), "/bin/sleep")
	})
	st := procStatus(pid)
	bind := fmt.Sprintf("%016x", 1<<10)
	for k, want := range map[string]string{"CapBnd": bind, "CapAmb": bind, "NoNewPrivs": "1", "Umask": "0007", "Uid": "65534\t65534\t65534\t65534"} {
		if st[k] != want {
			t.Errorf("%s = %q, want %q", k, st[k], want)
		}
	}
	if env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); strings.Contains(string(env), "UPKEEP_EXEC") {
		t.Error("the shim's settings are in the service's environment")
	}
	// Called by hand, without Spawn's settings, the word is no command.
	out, err := exec.Command(bin, "__exec", "/bin/echo", "echo", "ran").CombinedOutput()
	if err == nil || strings.Contains(string(out), "ran") {
		t.Errorf("upkeep __exec without settings ran the program: %v %q", err, out)
	}
}

// The binary's shim runs from the init of a.upkeep.local/shim, whose
// import path sorts first: before it exec's the program, only standard
// packages have been initialised (GODEBUG=inittrace=1 lists them), none
// of cobra, prometheus, protobuf… nor upkeep's own.
func TestBinaryShimRunsBeforeOtherInits(t *testing.T) {
	cmd := exec.Command(bin, shim.Arg, "/bin/echo", "echo", "ran")
	cmd.Env = []string{"GODEBUG=inittrace=1", shim.Env + "=" + (&shim.Plan{Name: "/bin/echo", NNP: true}).Encode()}
	var out, serr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &serr
	if err := cmd.Run(); err != nil || out.String() != "ran\n" {
		t.Fatalf("%v, output %q, stderr %q", err, out.String(), serr.String())
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(serr.String()), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "init" {
			t.Errorf("not an init trace line: %q", line)
			continue
		}
		n++
		if first, _, _ := strings.Cut(f[1], "/"); strings.Contains(first, ".") || first == "upkeep" {
			t.Errorf("%s initialised before the shim ran", f[1])
		}
	}
	if n == 0 {
		t.Errorf("no init trace: %q", serr.String())
	}
}

// A daemon that is not root runs services as itself: no_new_privileges
// still holds by default, and a capabilities setting it cannot apply (it
// cannot cut a bounding set) fails the start rather than being ignored.
func TestNonRootDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the daemon as nobody")
	}
	h := newHost(t)
	h.write("www-plain", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.write("www-nocaps", "command = [\"/bin/echo\", \"ran\"]\ncapabilities = []\n[restart]\nbackoff = \"5ms\"\nlimit = 2\n")
	// A copy of the binary nobody can reach (bin's directory is 0700).
	exe := filepath.Join(h.root, "upkeep")
	if data, err := os.ReadFile(bin); err != nil || os.WriteFile(exe, data, 0o755) != nil {
		t.Fatal("copy the binary:", err)
	}
	filepath.Walk(filepath.Dir(h.root), func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, 65534, 65534)
		}
		return nil
	})
	cmd := exec.Command(exe, "--root", h.root, "daemon", "-q")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("daemon did not stop on SIGTERM")
		}
		checkRaces(t, "upkeep daemon", stderr.String())
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", stderr.String())
		}
	})
	var pid int
	h.eventually(10*time.Second, "www-plain running and www-nocaps fatal", func() bool {
		st := h.status()
		pid = st["www-plain"].Pid
		return st["www-plain"].State == "running" && pid > 0 && strings.HasPrefix(cmdline(pid), "/bin/sleep") &&
			st["www-nocaps"].State == "fatal"
	})
	if s := procStatus(pid); s["NoNewPrivs"] != "1" || s["Uid"] != "65534\t65534\t65534\t65534" {
		t.Errorf("www-plain: NoNewPrivs %q Uid %q", s["NoNewPrivs"], s["Uid"])
	}
	if st := h.status()["www-nocaps"]; st.LastExit != "exit 127" {
		t.Errorf("www-nocaps: last exit %q", st.LastExit)
	}
	b, _ := os.ReadFile(filepath.Join(h.root, "var/log/www-nocaps.error.log"))
	if !strings.Contains(string(b), "not started: drop capability 0 from the bounding set: operation not permitted") {
		t.Errorf("error log %q", b)
	}
	if out, _ := os.ReadFile(filepath.Join(h.root, "var/log/www-nocaps.log")); strings.Contains(string(out), "ran") {
		t.Error("www-nocaps ran without the bounding set it asked for")
	}
}
