package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
