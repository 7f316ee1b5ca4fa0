package test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape reads the daemon's /metrics into series -> value.
func scrape(port string) (map[string]float64, error) {
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("bad line %q", l)
		}
		m[l[:i]] = v
	}
	return m, sc.Err()
}

// TestDaemonMetrics starts `upkeep daemon --metrics ADDR` and follows
// the services through real scrapes of http://ADDR/metrics: up and state
// gauges for a running and a stopped service, the restart counter after a
// crash (SIGKILL), and the gauges again after `upkeep stop`.
func TestDaemonMetrics(t *testing.T) {
	h := newHost(t)
	h.write("service-up", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n[restart]\nbackoff = \"10ms\"\n")
	h.write("service-manual", "command = [\"/bin/sleep\", \"1000\"]\nautostart = false\n")
	port := freePort(t)
	h.daemon("--metrics", "127.0.0.1:"+port)
	h.eventually(10*time.Second, "service-up running", h.allRunning("service-up"))

	var last map[string]float64
	var lastErr error
	// want polls the endpoint until every series has its value.
	want := func(what string, series map[string]float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			last, lastErr = scrape(port)
			ok := lastErr == nil
			for s, v := range series {
				if got, found := last[s]; !found || got != v {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				var b strings.Builder
				for s, v := range series {
					got, found := last[s]
					fmt.Fprintf(&b, "\n  %s = %v (present %v), want %v", s, got, found, v)
				}
				t.Fatalf("%s: the metrics did not get there in 10s (last error %v):%s", what, lastErr, b.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want("at start", map[string]float64{
		`upkeep_service_up{service="service-up"}`:                        1,
		`upkeep_service_up{service="service-manual"}`:                    0,
		`upkeep_service_state{service="service-up",state="running"}`:     1,
		`upkeep_service_state{service="service-manual",state="stopped"}`: 1,
		`upkeep_service_state{service="service-manual",state="running"}`: 0,
		`upkeep_service_restarts_total{service="service-up"}`:            0,
	})
	for s := range last {
		if !strings.HasPrefix(s, "upkeep_") && !strings.HasPrefix(s, "go_") && !strings.HasPrefix(s, "process_") && !strings.HasPrefix(s, "promhttp_") {
			t.Errorf("series %s: not prefixed upkeep_", s)
		}
	}

	pid := h.status()["service-up"].Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want("after a crash", map[string]float64{
		`upkeep_service_restarts_total{service="service-up"}`: 1,
		`upkeep_service_up{service="service-up"}`:             1,
	})
	if st := h.status()["service-up"]; st.Pid == pid || st.Restarts != 1 {
		t.Errorf("status after the crash: %+v (old pid %d)", st, pid)
	}

	if _, stderr, code := h.cli("start", "service-manual"); code != 0 {
		t.Fatalf("start: exit %d %s", code, stderr)
	}
	if _, stderr, code := h.cli("stop", "service-up"); code != 0 {
		t.Fatalf("stop: exit %d %s", code, stderr)
	}
	want("after start and stop", map[string]float64{
		`upkeep_service_up{service="service-up"}`:                        0,
		`upkeep_service_state{service="service-up",state="stopped"}`:     1,
		`upkeep_service_state{service="service-up",state="running"}`:     0,
		`upkeep_service_up{service="service-manual"}`:                    1,
		`upkeep_service_state{service="service-manual",state="running"}`: 1,
		// A stop asked for is not a restart.
		`upkeep_service_restarts_total{service="service-up"}`: 1,
	})
}
