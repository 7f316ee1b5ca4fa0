package supervise

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upkeep/internal/api"
)

// The test binary doubles as a service: with UPKEEP_TEST_HTTP set (through
// the service's env) it serves /ok, answering 200 for the first
// UPKEEP_TEST_OK requests and 500 after, optionally listening only after
// UPKEEP_TEST_DELAY.
func TestMain(m *testing.M) {
	if readyHelper() { // ready_test.go
		return
	}
	if addr := os.Getenv("UPKEEP_TEST_HTTP"); addr != "" {
		if d, err := time.ParseDuration(os.Getenv("UPKEEP_TEST_DELAY")); err == nil {
			time.Sleep(d)
		}
		okFor, _ := strconv.Atoi(os.Getenv("UPKEEP_TEST_OK"))
		var n atomic.Int64
		http.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
			if okFor > 0 && n.Add(1) > int64(okFor) {
				w.WriteHeader(500)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		fmt.Println("listening", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func selfService(t *testing.T, addr, extraEnv, rest string) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`command = [%q]
env = { UPKEEP_TEST_HTTP = %q %s }
%s`, exe, addr, extraEnv, rest)
}

func TestFailingHTTPCheckRestartsAfterExactlyNCycles(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	h.write("www-flaky", selfService(t, addr, `, UPKEEP_TEST_OK = "3"`, `
[restart]
backoff = "10ms"
[[check]]
type = "http"
url = "http://`+addr+`/ok"
interval = "50ms"
timeout = "1s"
cycles = 3
`))
	h.start()
	first := h.waitState("www-flaky", api.Running)
	var st api.Status
	h.eventually(10*time.Second, "a restart by the check", func() bool {
		st = h.status("www-flaky")
		return st.Restarts >= 1 && st.Pid != first.Pid
	})
	if !strings.Contains(st.LastExit, "check http-1 failed: HTTP 500") {
		t.Errorf("last exit %q", st.LastExit)
	}
	hist, err := h.d.History("www-flaky")
	if err != nil {
		t.Fatal(err)
	}
	// The first run's results: passes while the server said 200, then
	// exactly three failures in a row before the restart.
	var fails, passes int
	for _, r := range hist.Checks {
		if r.Time.After(stateTime(t, hist, "stopping")) {
			break
		}
		if r.OK {
			passes++
			fails = 0 // the server may not have been listening for the very first run
		} else {
			fails++
		}
	}
	if fails != 3 || passes < 1 {
		for _, r := range hist.Checks {
			t.Logf("%v %v", r.Time.Format("15:04:05.000"), r.OK)
		}
		for _, e := range hist.Events {
			t.Logf("%v %+v", e.Time.Format("15:04:05.000"), e)
		}
		t.Errorf("before the restart: %d passes, %d failures; want >= 1 and exactly 3", passes, fails)
	}
}

// stateTime is when the service first entered state.
func stateTime(t *testing.T, h api.History, state string) time.Time {
	for _, e := range h.Events {
		if e.Kind == "state" && e.State == state {
			return e.Time
		}
	}
	t.Fatalf("never entered %s: %+v", state, h.Events)
	return time.Time{}
}

func TestRecoveryResetsStreak(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	// The check points at a port nobody listens on until the service below
	// starts listening after 300ms: failures, then recovery, no restart
	// (cycles is larger than the failures it will see).
	h.write("www-late", selfService(t, addr, `, UPKEEP_TEST_DELAY = "300ms"`, `
[[check]]
type = "tcp"
address = "`+addr+`"
interval = "50ms"
timeout = "200ms"
cycles = 50
`))
	h.start()
	st := h.waitState("www-late", api.Running)
	if st.Restarts != 0 || len(st.Checks) != 1 {
		t.Fatalf("%+v", st)
	}
	c := st.Checks[0]
	// The failures were all in the start grace: they do not count, and
	// FAILURES does not show them (issue 15); the history has them.
	if c.Streak != 0 || c.Failures != 0 || c.Last == nil || !c.Last.OK {
		t.Errorf("check after recovery: %+v", c)
	}
	hist, err := h.d.History("www-late")
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range hist.Checks {
		if !r.OK {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no failed run before the check passed: the test proves nothing")
	}
}

func TestReadinessGatesDependent(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	h.write("api-slow", selfService(t, addr, `, UPKEEP_TEST_DELAY = "400ms"`, `
[[check]]
type = "http"
url = "http://`+addr+`/ok"
interval = "50ms"
timeout = "1s"
cycles = 100
`))
	h.write("www-front", `depends_on = ["api-slow"]
command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	h.start()
	front := h.waitState("www-front", api.Running)
	hist, _ := h.d.History("api-slow")
	var firstPass time.Time
	for _, r := range hist.Checks {
		if r.OK {
			firstPass = r.Time
			break
		}
	}
	if firstPass.IsZero() || front.StartedAt.Before(firstPass) {
		t.Errorf("www-front started at %v, api-slow's check first passed at %v", front.StartedAt, firstPass)
	}
	if api := h.status("api-slow"); api.StartedAt.Add(400 * time.Millisecond).After(front.StartedAt) {
		t.Errorf("dependent started %v after its dependency; the dependency needs 400ms to listen", front.StartedAt.Sub(api.StartedAt))
	}
}

func TestExecActionReceivesTheEvent(t *testing.T) {
	h := newHost(t)
	out := filepath.Join(h.root, "hook.out")
	h.write("service-hooked", `command = ["/bin/sleep", "1000"]
[[check]]
name = "always-fails"
type = "exec"
command = ["/bin/false"]
interval = "50ms"
grace = "0s"
cycles = 2
then = "exec"
exec = ["/bin/sh", "-c", "echo $UPKEEP_SERVICE $UPKEEP_CHECK $UPKEEP_EVENT > `+out+`; cat >> `+out+`"]
`)
	h.start()
	h.eventually(10*time.Second, "hook output", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n") >= 2
	})
	b, _ := os.ReadFile(out)
	lines := strings.SplitN(string(b), "\n", 2)
	if lines[0] != "service-hooked always-fails failed" || !strings.Contains(lines[1], `"check":"always-fails"`) {
		t.Errorf("hook got:\n%s", b)
	}
	if st := h.status("service-hooked"); st.Restarts != 0 {
		t.Errorf("an exec action restarted the service")
	}
}

func TestMemoryCheckStopsAHog(t *testing.T) {
	h := newHost(t)
	// The shell holds a 48 MB variable for as long as it runs. (A hog that
	// lets go of its memory soon, such as tail holding one long line until
	// its output is drained, may be gone between two runs of the check.)
	h.write("service-hog", `script = 'x=$(head -c 50000000 /dev/zero | tr "\0" a); sleep 1000'
[[check]]
type = "memory"
max = "32M"
interval = "100ms"
grace = "0s"
then = "stop"
`)
	h.start()
	var st api.Status
	h.eventually(10*time.Second, "stopped by its check", func() bool {
		st = h.status("service-hog")
		return st.State == api.Stopped && st.LastExit != ""
	})
	if !strings.Contains(st.LastExit, "stopped by check memory-1: rss") {
		t.Errorf("last exit %q", st.LastExit)
	}
	evs := h.d.Events("service-hog")
	found := false
	for _, e := range evs {
		found = found || (e.Kind == "check" && e.Check == "memory-1")
	}
	if !found {
		t.Errorf("no check event: %+v", evs)
	}
}

func TestCheckRestartsGoThroughStartLimit(t *testing.T) {
	h := newHost(t)
	h.write("service-doomed", `command = ["/bin/sleep", "1000"]
[restart]
backoff = "10ms"
limit = 3
[[check]]
type = "exec"
command = ["/bin/false"]
interval = "20ms"
grace = "0s"
`)
	h.start()
	st := h.waitState("service-doomed", api.Fatal)
	if st.Restarts != 2 {
		t.Errorf("restarts %d, want 2 (limit 3 starts)", st.Restarts)
	}
	_ = context.Background
}
