package supervise

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"upkeep/internal/api"
)

// slowStop is a service that takes secs to stop after SIGTERM and writes
// when its stop began and ended to order.
func slowStop(order, name, secs string, deps ...string) string {
	dep := ""
	if len(deps) > 0 {
		dep = `depends_on = ["` + strings.Join(deps, `", "`) + `"]` + "\n"
	}
	return "autostart = true\n" + dep + `script = """
trap 'echo ` + name + `-begin >> ` + order + `; sleep ` + secs + `; echo ` + name + `-end >> ` + order + `; exit 0' TERM
sleep 1000 & wait
"""
[stop]
timeout = "5s"
`
}

func TestShutdownStopsDependentsFirstInParallel(t *testing.T) {
	h := newHost(t)
	order := filepath.Join(h.root, "order")
	h.write("service-db", slowStop(order, "db", "1"))
	h.write("api-app", slowStop(order, "api", "1", "service-db"))
	h.write("www-x", slowStop(order, "www", "1", "api-app"))
	h.write("www-solo", slowStop(order, "solo", "1"))
	h.start()
	for _, n := range []string{"service-db", "api-app", "www-x", "www-solo"} {
		h.waitState(n, api.Running)
	}
	h.shutdown()
	if h.runErr != nil {
		t.Fatalf("a clean shutdown returned %v", h.runErr)
	}
	b, _ := os.ReadFile(order)
	lines := strings.Fields(string(b))
	at := func(s string) int {
		i := slices.Index(lines, s)
		if i < 0 {
			t.Fatalf("%s missing from the stop order %q", s, lines)
		}
		return i
	}
	// A service is asked to stop only once what depends on it has stopped.
	if !(at("www-end") < at("api-begin") && at("api-end") < at("db-begin")) {
		t.Errorf("stop order %q: want www, then api, then db", lines)
	}
	// www-solo depends on nothing and nothing on it: it stops beside www-x.
	if at("solo-begin") > at("www-end") {
		t.Errorf("stop order %q: www-solo waited for www-x", lines)
	}
	// The event log says who was slow.
	took := regexp.MustCompile(`^took \d+\.\d s of its 5 s$`)
	slow := map[string]bool{}
	for _, e := range h.d.Events("") {
		if e.Kind == "stop" && took.MatchString(e.Message) {
			slow[e.Service] = true
		}
	}
	if len(slow) != 4 {
		t.Errorf("slow-stop events for %v, want all four services", slow)
	}
}

func TestShutdownKillAfterTimeoutIsReported(t *testing.T) {
	h := newHost(t)
	h.write("www-stuck", "autostart = true\nscript = \"trap '' TERM; sleep 1000\"\n[stop]\ntimeout = \"200ms\"\n")
	h.write("www-fine", "autostart = true\ncommand = [\"/bin/sleep\", \"1000\"]\n")
	h.start()
	pid := h.waitState("www-stuck", api.Running).Pid
	h.waitState("www-fine", api.Running)
	h.shutdown()
	var se *ShutdownError
	if !errors.As(h.runErr, &se) || se.Hurried || !slices.Equal(se.Killed, []string{"www-stuck"}) {
		t.Fatalf("Run returned %v, want www-stuck killed after its stop timeout", h.runErr)
	}
	if alive(pid) {
		t.Errorf("pid %d survived the shutdown", pid)
	}
}

func TestSecondSignalHurriesShutdown(t *testing.T) {
	h := newHost(t)
	// A minute's timeout: without the hurry, h.shutdown's deadline fails.
	h.write("service-db", "autostart = true\ncommand = [\"/bin/sleep\", \"1000\"]\n[stop]\ntimeout = \"60s\"\n")
	// www-stuck depends on service-db, so db waits for it: the hurry must
	// kill db too, without its turn coming.
	h.write("www-stuck", "autostart = true\ndepends_on = [\"service-db\"]\nscript = \"trap '' TERM; sleep 1000\"\n[stop]\ntimeout = \"60s\"\n")
	h.start()
	h.waitState("www-stuck", api.Running)
	h.waitState("service-db", api.Running)
	h.d.Hurry() // before a shutdown: nothing
	if h.status("www-stuck").State != api.Running {
		t.Fatal("Hurry before a shutdown stopped a service")
	}
	h.stop()
	h.waitState("www-stuck", api.Stopping)
	h.d.Hurry()
	h.shutdown()
	var se *ShutdownError
	if !errors.As(h.runErr, &se) || !se.Hurried || !slices.Equal(se.Killed, []string{"service-db", "www-stuck"}) {
		t.Fatalf("Run returned %v, want both killed by the hurry", h.runErr)
	}
	found := false
	for _, e := range h.d.Events("") {
		found = found || (e.Kind == "daemon" && e.State == "hurried")
	}
	if !found {
		t.Error("no hurried event")
	}
}
