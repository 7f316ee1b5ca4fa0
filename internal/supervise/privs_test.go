package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/proc"
)

// selfReport is a script that prints the shell's own /proc status and
// limits (the service's main process: the shim, if any, has exec'd it)
// and then waits.
const selfReport = `script = "cat /proc/$$/status /proc/$$/limits; echo pid=$$; echo end; exec sleep 1000"
`

func statusField(log, key string) string {
	for _, line := range strings.Split(log, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "(none)"
}

func limitField(log, name string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, name) && len(line) > 26 {
			f := strings.Fields(line[26:])
			return f[0] + ":" + f[1]
		}
	}
	return "(none)"
}

func (h *host) report(name string) string {
	h.t.Helper()
	h.waitState(name, api.Running)
	h.eventually(5*time.Second, name+"'s report", func() bool { return strings.Contains(h.log(name+".log"), "\nend\n") })
	return h.log(name + ".log")
}

func TestServicePrivilegesFromServiceToml(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users and capabilities needs root")
	}
	h := newHost(t)
	h.write("service-bind", selfReport+`user = "nobody"
capabilities = ["net_bind_service"]
umask = "0027"
groups = ["adm"]
`+fast+`[limits]
nofile = "256:512"
core = 0
`)
	h.write("service-root", `groups = ["www-data"]
capabilities = ["CAP_CHOWN", "kill"]
`+selfReport+fast)
	h.write("service-plain", selfReport+fast)
	// The daemon's own supplementary groups must not reach a service.
	old, _ := syscall.Getgroups()
	if err := syscall.Setgroups([]int{4, 33}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setgroups(old) })
	h.start()

	log := h.report("service-bind")
	bind := fmt.Sprintf("%016x", 1<<10)
	for k, want := range map[string]string{
		"CapBnd": bind, "CapAmb": bind, "CapEff": bind, "NoNewPrivs": "1", "Umask": "0027",
		"Groups": "4 65534", "Uid": "65534\t65534\t65534\t65534",
	} {
		if got := statusField(log, k); got != want {
			t.Errorf("service-bind: %s = %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string]string{"Max open files": "256:512", "Max core file size": "0:0"} {
		if got := limitField(log, k); got != want {
			t.Errorf("service-bind: %s = %s, want %s", k, got, want)
		}
	}
	// The pid the daemon knows (and wrote) is the service's own, not a
	// shim's that went away, and it is still the same process.
	st := h.status("service-bind")
	if !strings.Contains(log, "pid="+strconv.Itoa(st.Pid)+"\n") {
		t.Errorf("status pid %d, the service says %q", st.Pid, log[strings.Index(log, "pid="):])
	}
	if pid, err := proc.ReadPID(filepath.Join(h.root, RunDir, "service-bind.pid")); err != nil || pid != st.Pid {
		t.Errorf("pid file %d (%v), status %d", pid, err, st.Pid)
	}

	own, _ := os.ReadFile("/proc/self/status")
	full := statusField(string(own), "CapBnd")
	log = h.report("service-root")
	for k, want := range map[string]string{
		"CapBnd": fmt.Sprintf("%016x", 1<<0|1<<5), "NoNewPrivs": "0", "Groups": "33", "Uid": "0\t0\t0\t0", "Umask": "0022",
	} {
		if got := statusField(log, k); got != want {
			t.Errorf("service-root: %s = %q, want %q", k, got, want)
		}
	}
	log = h.report("service-plain")
	for k, want := range map[string]string{"CapBnd": full, "CapEff": full, "NoNewPrivs": "0", "Groups": "", "Umask": "0022"} {
		if got := statusField(log, k); got != want {
			t.Errorf("service-plain: %s = %q, want %q", k, got, want)
		}
	}
}

// A setting that cannot be applied fails the start, with the reason in
// the service's error log, and the service never runs without it.
func TestImpossiblePrivilegesFailTheStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	b, _ := os.ReadFile("/proc/sys/fs/nr_open")
	nrOpen, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	h := newHost(t)
	h.write("service-ghost", `user = "no-such-user-upkeep"
script = "echo ran"
ready_after = "200ms"
`+strings.TrimPrefix(fast, "\nready_after = \"0s\""))
	h.write("service-greedy", fmt.Sprintf(`user = "nobody"
script = "echo ran"
[limits]
nofile = %d
`, nrOpen+1)+`[restart]
backoff = "5ms"
max_backoff = "50ms"
limit = 3
`)
	h.start()
	h.eventually(10*time.Second, "service-ghost to fail its starts", func() bool {
		st := h.status("service-ghost")
		return (st.State == api.Backoff || st.State == api.Fatal) && strings.Contains(st.LastExit, `user "no-such-user-upkeep": no such user`)
	})
	st := h.waitState("service-greedy", api.Fatal)
	if st.LastExit != "exit 127" {
		t.Errorf("last exit %q, want the shim's 127", st.LastExit)
	}
	if out := h.log("service-greedy.log"); strings.Contains(out, "ran") {
		t.Errorf("the service ran without its limit: %q", out)
	}
	if e := h.log("service-greedy.error.log"); !strings.Contains(e, "not started: limit nofile: operation not permitted") {
		t.Errorf("error log %q does not say why", e)
	}
	if out := h.log("service-ghost.log"); strings.Contains(out, "ran") {
		t.Errorf("a service with an unknown user ran: %q", out)
	}
}
