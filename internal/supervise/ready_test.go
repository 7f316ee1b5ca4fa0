package supervise

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
)

// readyHelper makes the test binary a service that announces itself
// (UPKEEP_TEST_NOTIFY): "ready" sends READY=1 and STATUS= (after writing
// the time to UPKEEP_TEST_SENT, if set), then, with WATCHDOG_USEC, pings
// UPKEEP_TEST_PINGS times and falls silent; "fork" starts a copy of
// itself ("child"), names it with MAINPID= and exits, as a forking daemon
// does. With UPKEEP_TEST_STAMP it writes the time it started to that file
// (a dependent's start, for the latency test) and waits.
func readyHelper() bool {
	if path := os.Getenv("UPKEEP_TEST_STAMP"); path != "" {
		now := time.Now().UnixNano()
		os.WriteFile(path+".tmp", []byte(strconv.FormatInt(now, 10)), 0o644)
		os.Rename(path+".tmp", path)
		select {}
	}
	mode := os.Getenv("UPKEEP_TEST_NOTIFY")
	if mode == "" {
		return false
	}
	send := func(msg string) {
		c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "notify:", err)
			os.Exit(3)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			fmt.Fprintln(os.Stderr, "notify:", err)
			os.Exit(3)
		}
	}
	switch mode {
	case "child":
		select {}
	case "fork":
		exe, _ := os.Executable()
		env := append(os.Environ(), "UPKEEP_TEST_NOTIFY=child")
		p, err := os.StartProcess(exe, []string{exe}, &os.ProcAttr{Env: env, Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		send(fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=forked", p.Pid))
		os.Exit(0)
	case "ready":
		if path := os.Getenv("UPKEEP_TEST_SENT"); path != "" {
			os.WriteFile(path, []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
		}
		send("READY=1\nSTATUS=serving")
		usec, _ := strconv.Atoi(os.Getenv("WATCHDOG_USEC"))
		pings, _ := strconv.Atoi(os.Getenv("UPKEEP_TEST_PINGS"))
		for i := 0; i < pings && usec > 0; i++ {
			time.Sleep(time.Duration(usec) * time.Microsecond / 4) // the service's own pace
			send("WATCHDOG=1")
		}
		select {}
	}
	return false
}

func selfExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// stampOf reads a UPKEEP_TEST_STAMP / UPKEEP_TEST_SENT file.
func stampOf(path string) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Unix(0, n), err == nil
}

// dependent writes a service that starts after dep and stamps its start.
func (h *host) dependent(name, dep, stamp string) {
	h.write(name, fmt.Sprintf("command = [%q]\ndepends_on = [%q]\nready_after = \"0s\"\nenv = { UPKEEP_TEST_STAMP = %q }\n", selfExe(h.t), dep, stamp))
}

func needNotify(t *testing.T) string {
	bin, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify not installed (Debian package systemd)")
	}
	return bin
}

// The test: systemd-notify --ready gates a dependent, whose
// process starts only after the word was sent; STATUS= shows in status.
func TestSystemdNotifyGatesDependent(t *testing.T) {
	bin := needNotify(t)
	h := newHost(t)
	sent, stamp, gate := filepath.Join(h.root, "sent"), filepath.Join(h.root, "stamp"), filepath.Join(h.root, "go")
	h.write("service-db", fmt.Sprintf(`ready = "notify"
script = """
while [ ! -e %s ]; do sleep 0.01; done
date +%%s%%N > %s
%s --ready --status="accepting connections"
exec sleep 1000
"""
`, gate, sent, bin))
	h.dependent("api-app", "service-db", stamp)
	h.start()
	h.eventually(10*time.Second, "service-db waiting for READY=1", func() bool {
		st := h.status("service-db")
		return st.State == api.Starting && st.Detail == "waiting for READY=1" && st.Pid != 0
	})
	if st := h.status("api-app"); st.State != api.Starting || st.Detail != "waiting for service-db" || st.Pid != 0 {
		t.Fatalf("dependent before READY=1: %+v", st)
	}
	os.WriteFile(gate, nil, 0o644)
	st := h.waitState("service-db", api.Running)
	if st.StatusText != "accepting connections" {
		t.Errorf("status text %q", st.StatusText)
	}
	h.waitState("api-app", api.Running)
	var started time.Time
	h.eventually(10*time.Second, "the dependent's stamp", func() (ok bool) { started, ok = stampOf(stamp); return })
	at, ok := stampOf(sent)
	if !ok || !started.After(at) {
		t.Errorf("dependent started at %v, READY=1 sent after %v", started, at)
	}
}

// fd:N gates a dependent the same way, and the daemon's end of the pipe
// is closed once the newline came.
func TestReadyFDGatesDependent(t *testing.T) {
	h := newHost(t)
	sent, stamp, gate := filepath.Join(h.root, "sent"), filepath.Join(h.root, "stamp"), filepath.Join(h.root, "go")
	h.write("service-db", fmt.Sprintf(`ready = "fd:5"
script = """
while [ ! -e %s ]; do sleep 0.01; done
readlink /proc/self/fd/5 > %s.pipe
date +%%s%%N > %s
echo >&5
exec 5>&-
exec sleep 1000
"""
`, gate, sent, sent))
	h.dependent("api-app", "service-db", stamp)
	h.start()
	h.eventually(10*time.Second, "service-db waiting on fd 5", func() bool {
		st := h.status("service-db")
		return st.State == api.Starting && st.Detail == "waiting for a newline on fd 5"
	})
	if st := h.status("api-app"); st.Pid != 0 {
		t.Fatalf("dependent started before the newline: %+v", st)
	}
	os.WriteFile(gate, nil, 0o644)
	h.waitState("service-db", api.Running)
	h.waitState("api-app", api.Running)
	var started time.Time
	h.eventually(10*time.Second, "the dependent's stamp", func() (ok bool) { started, ok = stampOf(stamp); return })
	if at, ok := stampOf(sent); !ok || !started.After(at) {
		t.Errorf("dependent started at %v, newline written after %v", started, at)
	}
	pipe, err := os.ReadFile(sent + ".pipe")
	if err != nil || !strings.HasPrefix(string(pipe), "pipe:[") {
		t.Fatalf("fd 5 of the service: %q %v", pipe, err)
	}
	h.eventually(5*time.Second, "the daemon to close its end of "+strings.TrimSpace(string(pipe)), func() bool {
		return !slices.Contains(ownFDs(), strings.TrimSpace(string(pipe)))
	})
}

// ownFDs lists what the test process (the daemon) holds open.
func ownFDs() []string {
	var out []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// log:REGEX: running when a line of stdout or stderr matches; every line,
// before and after, is in the log, in order.
func TestReadyLog(t *testing.T) {
	h := newHost(t)
	gate := filepath.Join(h.root, "go")
	h.write("www-web", fmt.Sprintf(`ready = 'log:^listening on :\d+$'
script = """
echo starting
echo 'listening on :x'
while [ ! -e %s ]; do sleep 0.01; done
echo 'listening on :8080' >&2
while [ ! -e %s.2 ]; do sleep 0.01; done
echo after
exec sleep 1000
"""
`, gate, gate))
	h.start()
	h.eventually(10*time.Second, "the first lines in the log", func() bool { return strings.Contains(h.log("www-web.log"), "listening on :x\n") })
	if st := h.status("www-web"); st.State != api.Starting {
		t.Fatalf("ready on a line that does not match: %+v", st)
	}
	os.WriteFile(gate, nil, 0o644)
	h.waitState("www-web", api.Running)
	os.WriteFile(gate+".2", nil, 0o644)
	h.eventually(10*time.Second, "the line after readiness in the log", func() bool { return strings.Contains(h.log("www-web.log"), "after\n") })
	if got := h.log("www-web.log"); got != "starting\nlistening on :x\nafter\n" {
		t.Errorf("stdout log %q", got)
	}
	if got := h.log("www-web.error.log"); got != "listening on :8080\n" {
		t.Errorf("stderr log %q", got)
	}
}

// A word that never comes within ready_timeout is a failed start, retried
// by the restart policy up to its limit.
func TestReadyTimeoutIsFailedStart(t *testing.T) {
	h := newHost(t)
	h.write("service-mute", `ready = "notify"
ready_timeout = "150ms"
command = ["/bin/sleep", "1000"]
[restart]
backoff = "10ms"
limit = 2
`)
	h.start()
	st := h.waitState("service-mute", api.Fatal)
	if !strings.Contains(st.LastExit, "not ready within ready_timeout 150ms (waiting for READY=1)") || st.Restarts != 1 {
		t.Errorf("fatal with %+v", st)
	}
}

// A service that stops pinging is restarted; WATCHDOG_USEC tells it the
// interval (the helper pings at a quarter of it).
func TestWatchdogTimeoutRestarts(t *testing.T) {
	h := newHost(t)
	h.write("api-wd", fmt.Sprintf(`ready = "notify"
watchdog = "400ms"
command = [%q]
env = { UPKEEP_TEST_NOTIFY = "ready", UPKEEP_TEST_PINGS = "4" }
[restart]
backoff = "10ms"
`, selfExe(t)))
	h.start()
	st := h.waitState("api-wd", api.Running)
	if st.StatusText != "serving" {
		t.Errorf("status text %q", st.StatusText)
	}
	first := st.Pid
	h.eventually(15*time.Second, "a watchdog restart", func() bool {
		st = h.status("api-wd")
		return st.Restarts >= 1 && st.State == api.Running && st.Pid != first
	})
	if !strings.Contains(st.LastExit, "watchdog timeout: no WATCHDOG=1 within 400ms") {
		t.Errorf("last exit %q", st.LastExit)
	}
	var wd []api.Event
	for _, e := range h.d.Events("api-wd") {
		if e.Kind == "watchdog" {
			wd = append(wd, e)
		}
	}
	if len(wd) == 0 || wd[0].Message != "watchdog timeout" || wd[0].Pid != first {
		t.Errorf("watchdog events %+v", wd)
	}
}

// MAINPID= makes the named process the main one (a daemon that forks);
// its exit is the service's exit.
func TestMainPID(t *testing.T) {
	h := newHost(t)
	h.write("service-fork", fmt.Sprintf(`ready = "notify"
command = [%q]
env = { UPKEEP_TEST_NOTIFY = "fork" }
[restart]
backoff = "10ms"
`, selfExe(t)))
	h.start()
	st := h.waitState("service-fork", api.Running)
	if st.StatusText != "forked" {
		t.Errorf("status text %q", st.StatusText)
	}
	child := st.Pid
	h.eventually(10*time.Second, "the forked child as main", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", child))
		return err == nil && strings.Contains(string(b), "UPKEEP_TEST_NOTIFY=child")
	})
	syscall.Kill(child, syscall.SIGKILL)
	h.eventually(10*time.Second, "a restart after the main pid died", func() bool {
		st = h.status("service-fork")
		return st.Restarts >= 1 && st.State == api.Running && st.Pid != child
	})
}

// Only the service's own processes are heard: a READY=1 from another
// process (the test itself) leaves it starting.
func TestNotifyFromStrangerIgnored(t *testing.T) {
	bin := needNotify(t)
	h := newHost(t)
	gate := filepath.Join(h.root, "go")
	h.write("service-db", fmt.Sprintf(`ready = "notify"
script = """
while [ ! -e %s ]; do sleep 0.01; done
%s --status=own
exec sleep 1000
"""
`, gate, bin))
	h.start()
	h.eventually(10*time.Second, "service-db waiting", func() bool { return h.status("service-db").Pid != 0 })
	c, err := net.Dial("unixgram", filepath.Join(h.root, "run/upkeep/notify/service-db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("READY=1\nSTATUS=stranger")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	os.WriteFile(gate, nil, 0o644)
	// Datagrams are read in order: once "own" shows, the stranger's was seen.
	h.eventually(10*time.Second, "the service's own STATUS=", func() bool { return h.status("service-db").StatusText == "own" })
	if st := h.status("service-db"); st.State != api.Starting {
		t.Errorf("a stranger's READY=1 counted: %+v", st)
	}
}

// A SIGSTOP'd service stops at once: SIGCONT follows the stop signal.
// status shows it in state T before.
func TestFrozenServiceStops(t *testing.T) {
	h := newHost(t)
	h.write("service-frozen", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
[stop]
timeout = "10s"
`)
	h.start()
	st := h.waitState("service-frozen", api.Running)
	if err := syscall.Kill(st.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	h.eventually(5*time.Second, "the process in state T", func() bool {
		return slices.Equal(h.status("service-frozen").StoppedPids, []int{st.Pid})
	})
	t0 := time.Now()
	if err := h.d.Stop(t.Context(), []string{"service-frozen"}, true); err != nil {
		t.Fatal(err)
	}
	h.waitState("service-frozen", api.Stopped)
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a frozen service took %v to stop (stop timeout 10s): no SIGCONT?", d)
	}
	if st := h.status("service-frozen"); st.LastExit != "signal TERM" {
		t.Errorf("last exit %q: stopped by SIGTERM, not by the SIGKILL of the timeout", st.LastExit)
	}
}

// TestReadyLatencyBench is bench/ready.sh's measurement (it runs only with
// UPKEEP_BENCH_READY=N rounds): READY=1 sent → the dependent's process
// started (the first instruction of its main), p50 and p95. Each round
// stops both services and starts them again, the dependent waiting.
func TestReadyLatencyBench(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("UPKEEP_BENCH_READY"))
	if rounds <= 0 {
		t.Skip("a benchmark: UPKEEP_BENCH_READY=ROUNDS (bench/ready.sh)")
	}
	h := newHost(t)
	sent, stamp := filepath.Join(h.root, "sent"), filepath.Join(h.root, "stamp")
	h.write("service-db", fmt.Sprintf("ready = \"notify\"\ncommand = [%q]\nenv = { UPKEEP_TEST_NOTIFY = \"ready\", UPKEEP_TEST_SENT = %q }\n[stop]\nsignal = \"KILL\"\n", selfExe(t), sent))
	h.dependent("api-app", "service-db", stamp)
	h.write("api-app", fmt.Sprintf("command = [%q]\ndepends_on = [\"service-db\"]\nready_after = \"0s\"\nenv = { UPKEEP_TEST_STAMP = %q }\n[stop]\nsignal = \"KILL\"\n", selfExe(t), stamp))
	h.start()
	var lat []time.Duration
	for i := 0; i < rounds; i++ {
		h.waitState("api-app", api.Running)
		var started time.Time
		h.eventually(10*time.Second, "the dependent's stamp", func() (ok bool) { started, ok = stampOf(stamp); return })
		at, ok := stampOf(sent)
		if !ok {
			t.Fatal("no sent stamp")
		}
		lat = append(lat, started.Sub(at))
		if os.Getenv("UPKEEP_BENCH_SPLIT") != "" {
			var aRun, bRun time.Time
			for _, e := range h.d.Events("") {
				if e.Kind == "state" && e.State == "running" && e.Time.After(at.Add(-time.Millisecond)) {
					if e.Service == "service-db" {
						aRun = e.Time
					} else {
						bRun = e.Time
					}
				}
			}
			fmt.Printf("sent→db running %v, db running→app spawned %v, app spawned→its main %v\n", aRun.Sub(at), bRun.Sub(aRun), started.Sub(bRun))
		}
		if err := h.d.Stop(t.Context(), []string{"api-app", "service-db"}, true); err != nil {
			t.Fatal(err)
		}
		os.Remove(sent)
		os.Remove(stamp)
		if err := h.d.Start(t.Context(), []string{"service-db", "api-app"}, false); err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p int) time.Duration { return lat[(len(lat)-1)*p/100] }
	fmt.Printf("ready latency (READY=1 sent -> dependent started), %d rounds: p50 %v p95 %v min %v max %v\n", len(lat), pct(50), pct(95), lat[0], lat[len(lat)-1])
}

// The measurement: a frozen service with a failing check came back
// only after its whole stop timeout. Now the check's restart is quick too.
func TestFrozenServiceCheckRestartIsQuick(t *testing.T) {
	h := newHost(t)
	bad := filepath.Join(h.root, "bad")
	h.write("service-redis", fmt.Sprintf(`command = ["/bin/sleep", "1000"]
ready = "after"
ready_after = "0s"
[stop]
timeout = "10s"
[restart]
backoff = "10ms"
[[check]]
type = "exec"
command = ["/bin/sh", "-c", "test ! -e %s"]
interval = "50ms"
grace = "0s"
`, bad))
	h.start()
	st := h.waitState("service-redis", api.Running)
	if err := syscall.Kill(st.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	os.WriteFile(bad, nil, 0o644)
	h.eventually(15*time.Second, "a restart by the check", func() bool {
		n := h.status("service-redis")
		if n.Pid != 0 && n.Pid != st.Pid {
			os.Remove(bad)
		}
		return n.State == api.Running && n.Pid != st.Pid && n.Restarts >= 1
	})
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a frozen service with a failing check took %v to come back (stop timeout 10s)", d)
	}
	if alive(st.Pid) {
		t.Errorf("the frozen process %d is still there", st.Pid)
	}
}

// RELOADING=1 and STOPPING=1 show in status until READY=1 ends them.
func TestNotifyReloadingShown(t *testing.T) {
	bin := needNotify(t)
	h := newHost(t)
	gate := filepath.Join(h.root, "go")
	h.write("service-db", fmt.Sprintf(`ready = "notify"
script = """
%s --ready --status=up
while [ ! -e %s ]; do sleep 0.01; done
%s RELOADING=1 STATUS=rereading
while [ ! -e %s.2 ]; do sleep 0.01; done
%s --ready --status=reloaded
exec sleep 1000
"""
`, bin, gate, bin, gate, bin))
	h.start()
	h.waitState("service-db", api.Running)
	os.WriteFile(gate, nil, 0o644)
	h.eventually(10*time.Second, "reloading shown", func() bool {
		st := h.status("service-db")
		return st.Announced == "reloading" && st.StatusText == "rereading" && st.State == api.Running
	})
	os.WriteFile(gate+".2", nil, 0o644)
	h.eventually(10*time.Second, "the reload's end", func() bool {
		st := h.status("service-db")
		return st.Announced == "" && st.StatusText == "reloaded"
	})
}

// A daemonizing service (start_command + pidfile) may announce READY=1
// before its pid file is read: the word is kept for up.
func TestNotifyDaemonizing(t *testing.T) {
	bin := needNotify(t)
	h := newHost(t)
	h.write("service-d", fmt.Sprintf(`ready = "notify"
ready_timeout = "10s"
start_command = ["/bin/sh", "-c", "(%s --ready --status=forked; exec sleep 1000) & echo $! > %s"]
pidfile = "d.pid"
`, bin, filepath.Join(h.root, "var/www/service-d/d.pid")))
	h.start()
	st := h.waitState("service-d", api.Running)
	if st.StatusText != "forked" || st.Pid == 0 {
		t.Errorf("status %+v", st)
	}
}

// A service that is not root reaches its socket (it is world-writable;
// the credentials decide), and systemd-notify, which as a user cannot
// claim its parent's pid, is still placed by its session.
func TestNotifyAsUser(t *testing.T) {
	bin := needNotify(t)
	if os.Geteuid() != 0 {
		t.Skip("running a service as nobody needs root")
	}
	h := newHost(t)
	h.write("service-user", fmt.Sprintf(`ready = "notify"
user = "nobody"
script = """
%s --ready --status="as $(id -un)"
exec sleep 1000
"""
`, bin))
	h.start()
	st := h.waitState("service-user", api.Running)
	if st.StatusText != "as nobody" {
		t.Errorf("status text %q", st.StatusText)
	}
}
