package metrics

import (
	"bytes"
	"os/exec"
	"testing"
	"upkeep/internal/api"

	dto "github.com/prometheus/client_model/go"
)

// logSource is a fakeSource whose daemon also counts dropped log output.
type logSource struct {
	fakeSource
	logs []api.LogCounter
}

func (l *logSource) LogCounters() []api.LogCounter { return l.logs }

// TestLogDroppedSeries: each captured log file has its counter of dropped
// bytes and its writable gauge, labelled by service and file; a Source
// without log counters has neither (and the scrape still works).
func TestLogDroppedSeries(t *testing.T) {
	src := &logSource{fakeSource: fakeSource{sts: twoServices()}, logs: []api.LogCounter{
		{Service: "api-app", File: "api-app.log", Dropped: 4096, Err: "write var/log/api-app.log: no space left on device"},
		{Service: "api-app", File: "api-app.error.log"},
	}}
	fams := scrape(t, start(t, New(src)))
	got := series(fams)
	for k, v := range map[string]float64{
		`upkeep_log_dropped_bytes_total{file="api-app.log",service="api-app"}`:       4096,
		`upkeep_log_dropped_bytes_total{file="api-app.error.log",service="api-app"}`: 0,
		`upkeep_log_writable{file="api-app.log",service="api-app"}`:                  0,
		`upkeep_log_writable{file="api-app.error.log",service="api-app"}`:            1,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if f := fams["upkeep_log_dropped_bytes_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER || f.GetHelp() == "" {
		t.Errorf("upkeep_log_dropped_bytes_total family: %v", f)
	}
	if fams := scrape(t, start(t, New(&fakeSource{sts: twoServices()}))); fams["upkeep_log_dropped_bytes_total"] != nil {
		t.Error("log series from a source without log counters")
	}
}

// TestLogSeriesPromtool lints the log series with Prometheus's checker.
func TestLogSeriesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian package prometheus); skipping `promtool check metrics`")
	}
	src := &logSource{fakeSource: fakeSource{sts: twoServices()}, logs: []api.LogCounter{{Service: "api-app", File: "api-app.log", Dropped: 1}}}
	_, _, body := get(t, start(t, New(src)))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
