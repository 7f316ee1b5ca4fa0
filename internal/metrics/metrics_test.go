package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"upkeep/internal/api"
	"upkeep/internal/health"
)

// fakeSource returns fixed statuses, as the daemon's Status would.
type fakeSource struct {
	mu  sync.Mutex
	sts []api.Status
	err error
}

func (f *fakeSource) Status(names []string) ([]api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sts), f.err
}

func (f *fakeSource) set(sts []api.Status, err error) {
	f.mu.Lock()
	f.sts, f.err = sts, err
	f.mu.Unlock()
}

func twoServices() []api.Status {
	return []api.Status{
		{
			Name: "api-app", State: api.Running, Pid: 123, Restarts: 2,
			CPUSeconds: 1.5, RSSBytes: 4096,
			Checks: []health.CheckStatus{
				{Name: "http", Type: "http", Last: &health.Result{Check: "http", OK: true, Latency: 3 * time.Millisecond}},
				{Name: "redis", Type: "tcp", Last: &health.Result{Check: "redis", OK: false}, Streak: 3, Failing: true},
				{Name: "fds", Type: "fds"}, // not run yet
			},
		},
		{Name: "www-old", State: api.Fatal, Restarts: 6},
	}
}

// start serves m on 127.0.0.1:0 the way Serve does, and returns the
// /metrics URL; the server ends with the test.
func start(t *testing.T, m *Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, m) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/metrics"
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// scrape fetches url and parses the text exposition; a parse error means
// the exposition is invalid.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, ctype, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	if !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want the text format", ctype)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("invalid exposition: %v\n%s", err, body)
	}
	return fams
}

// series flattens the upkeep_ gauges and counters to `name{k="v",...}` → value,
// labels in the order the family declares them.
func series(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "upkeep_") || f.GetType() == dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if f.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			out[name+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func stateSeries(service string, current api.State) map[string]float64 {
	out := map[string]float64{}
	for _, s := range states {
		out[fmt.Sprintf(`upkeep_service_state{service=%q,state=%q}`, service, s)] = boolValue(s == current)
	}
	return out
}

func TestScrapeSeries(t *testing.T) {
	src := &fakeSource{sts: twoServices()}
	url := start(t, New(src))
	got := series(scrape(t, url))

	want := map[string]float64{
		`upkeep_service_up{service="api-app"}`:                         1,
		`upkeep_service_restarts_total{service="api-app"}`:             2,
		`upkeep_service_cpu_seconds_total{service="api-app"}`:          1.5,
		`upkeep_service_resident_memory_bytes{service="api-app"}`:      4096,
		`upkeep_check_up{check="http",service="api-app"}`:              1,
		`upkeep_check_up{check="redis",service="api-app"}`:             0,
		`upkeep_check_failure_streak{check="http",service="api-app"}`:  0,
		`upkeep_check_failure_streak{check="redis",service="api-app"}`: 3,
		`upkeep_check_failure_streak{check="fds",service="api-app"}`:   0,
		`upkeep_service_up{service="www-old"}`:                         0,
		`upkeep_service_restarts_total{service="www-old"}`:             6,
		`upkeep_service_cpu_seconds_total{service="www-old"}`:          0,
		`upkeep_service_resident_memory_bytes{service="www-old"}`:      0,
	}
	for k, v := range stateSeries("api-app", api.Running) {
		want[k] = v
	}
	for k, v := range stateSeries("www-old", api.Fatal) {
		want[k] = v
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("missing %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s %v", k, v)
		}
	}
}

func TestHelpAndTypes(t *testing.T) {
	m := New(&fakeSource{sts: twoServices()})
	m.CheckRan("api-app", "http", true, time.Millisecond)
	fams := scrape(t, start(t, m))
	want := map[string]dto.MetricType{
		"upkeep_service_up":                    dto.MetricType_GAUGE,
		"upkeep_service_state":                 dto.MetricType_GAUGE,
		"upkeep_service_restarts_total":        dto.MetricType_COUNTER,
		"upkeep_service_cpu_seconds_total":     dto.MetricType_COUNTER,
		"upkeep_service_resident_memory_bytes": dto.MetricType_GAUGE,
		"upkeep_check_up":                      dto.MetricType_GAUGE,
		"upkeep_check_failure_streak":          dto.MetricType_GAUGE,
		"upkeep_check_duration_seconds":        dto.MetricType_HISTOGRAM,
	}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no family %s", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
	}
}

func TestCheckDurationHistogram(t *testing.T) {
	src := &fakeSource{sts: twoServices()}
	m := New(src)
	m.CheckRan("api-app", "http", true, 3*time.Millisecond)
	m.CheckRan("api-app", "http", true, 20*time.Millisecond)
	m.CheckRan("api-app", "http", false, 2*time.Second)
	m.CheckRan("api-app", "redis", false, 400*time.Microsecond)
	url := start(t, m)

	f := scrape(t, url)["upkeep_check_duration_seconds"]
	if f == nil {
		t.Fatal("no upkeep_check_duration_seconds")
	}
	hists := map[string]*dto.Histogram{}
	for _, mt := range f.Metric {
		var ls []string
		for _, l := range mt.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		hists[strings.Join(ls, ",")] = mt.GetHistogram()
	}
	if len(hists) != 2 {
		t.Fatalf("histogram series %v, want http and redis of api-app", slices.Collect(mapKeys(hists)))
	}
	h := hists["check=http,service=api-app"]
	if h == nil {
		t.Fatalf("no http histogram in %v", slices.Collect(mapKeys(hists)))
	}
	if h.GetSampleCount() != 3 {
		t.Errorf("http count = %d, want 3", h.GetSampleCount())
	}
	if s := h.GetSampleSum(); math.Abs(s-2.023) > 1e-9 {
		t.Errorf("http sum = %v, want 2.023", s)
	}
	cum := map[float64]uint64{}
	for _, b := range h.Bucket {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for le, n := range map[float64]uint64{.0025: 0, .005: 1, .025: 2, 1: 2, 2.5: 3, 10: 3} {
		if cum[le] != n {
			t.Errorf("http bucket le=%v: %d, want %d", le, cum[le], n)
		}
	}
	if len(h.Bucket) != len(durationBuckets)+1 || cum[math.Inf(1)] != 3 { // the parser keeps +Inf
		t.Errorf("%d buckets with +Inf %d, want %d and 3", len(h.Bucket), cum[math.Inf(1)], len(durationBuckets)+1)
	}
	r := hists["check=redis,service=api-app"]
	if r.GetSampleCount() != 1 || math.Abs(r.GetSampleSum()-0.0004) > 1e-12 {
		t.Errorf("redis count %d sum %v, want 1 and 0.0004", r.GetSampleCount(), r.GetSampleSum())
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestRemovedServiceDisappears(t *testing.T) {
	src := &fakeSource{sts: twoServices()}
	m := New(src)
	m.CheckRan("api-app", "http", true, time.Millisecond)
	m.CheckRan("www-old", "tcp", true, time.Millisecond)
	url := start(t, m)

	if n := countService(scrape(t, url), "api-app"); n == 0 {
		t.Fatal("api-app not in the first scrape")
	}
	src.set(twoServices()[1:], nil) // api-app removed by a reload
	fams := scrape(t, url)
	if n := countService(fams, "api-app"); n != 0 {
		t.Errorf("api-app still has %d series after its removal", n)
	}
	if n := countService(fams, "www-old"); n == 0 {
		t.Error("www-old lost its series too")
	}
	if f := fams["upkeep_check_duration_seconds"]; f == nil || len(f.Metric) != 1 {
		t.Errorf("duration histogram: %v, want www-old's only", f)
	}
}

// A stopped service lists no checks, but keeps its duration history.
func TestStoppedServiceKeepsHistogram(t *testing.T) {
	src := &fakeSource{sts: twoServices()}
	m := New(src)
	m.CheckRan("api-app", "http", true, time.Millisecond)
	url := start(t, m)
	src.set([]api.Status{{Name: "api-app", State: api.Stopped}}, nil)
	f := scrape(t, url)["upkeep_check_duration_seconds"]
	if f == nil || len(f.Metric) != 1 || f.Metric[0].GetHistogram().GetSampleCount() != 1 {
		t.Errorf("duration histogram of stopped api-app: %v, want count 1", f)
	}
}

func countService(fams map[string]*dto.MetricFamily, service string) int {
	n := 0
	for name, f := range fams {
		if !strings.HasPrefix(name, "upkeep_") {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "service" && l.GetValue() == service {
					n++
				}
			}
		}
	}
	return n
}

func TestDaemonOwnMetrics(t *testing.T) {
	fams := scrape(t, start(t, New(&fakeSource{})))
	want := []string{"go_goroutines", "go_memstats_alloc_bytes"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds")
	}
	for _, name := range want {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "upkeep_") {
			t.Errorf("%s with no services", name)
		}
	}
}

func TestStatusErrorFailsScrape(t *testing.T) {
	url := start(t, New(&fakeSource{err: errors.New("daemon gone")}))
	code, _, body := get(t, url)
	if code != http.StatusInternalServerError || !strings.Contains(string(body), "daemon gone") {
		t.Errorf("GET: %d %s, want 500 naming the error", code, body)
	}
}

// Scrapes and check runs come from different goroutines; -race watches,
// and the counts say that no observation was lost or torn. The checks run
// for www-old, which every scrape lists (api-app comes and goes, so its
// series are pruned and made again meanwhile). The scraping goroutine
// reports through errc: t.Fatal belongs to the test's own.
func TestConcurrentScrapesAndChecks(t *testing.T) {
	src := &fakeSource{sts: twoServices()}
	m := New(src)
	url := start(t, m)
	const checkers, runs = 4, 200
	var wg sync.WaitGroup
	for i := range checkers {
		wg.Go(func() {
			for j := range runs {
				m.CheckRan("www-old", fmt.Sprint("c", i), true, time.Duration(j)*time.Microsecond)
				m.CheckRan("api-app", "http", true, time.Microsecond)
			}
		})
	}
	errc := make(chan error, 10)
	wg.Go(func() {
		for i := range 10 {
			sts := twoServices()
			if i%2 == 0 {
				sts = sts[1:]
			}
			src.set(sts, nil)
			fams, err := tryScrape(url)
			if err != nil {
				errc <- err
				continue
			}
			_, has := series(fams)[`upkeep_service_state{service="api-app",state="running"}`]
			if has != (len(sts) == 2) {
				errc <- fmt.Errorf("scrape %d: api-app state present %v with %d services", i, has, len(sts))
			}
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	f := scrape(t, url)["upkeep_check_duration_seconds"]
	if f == nil {
		t.Fatal("no upkeep_check_duration_seconds")
	}
	wantSum := float64(runs*(runs-1)/2) * 1e-6
	old := 0
	for _, mt := range f.Metric {
		h := mt.GetHistogram()
		if mt.Label[1].GetValue() != "www-old" { // labels sort: check, service
			if h.GetSampleCount() > checkers*runs {
				t.Errorf("api-app: count %d, more than the %d runs", h.GetSampleCount(), checkers*runs)
			}
			continue
		}
		old++
		if h.GetSampleCount() != runs || math.Abs(h.GetSampleSum()-wantSum) > 1e-9 {
			t.Errorf("%v: count %d sum %v, want %d and %v", mt.Label, h.GetSampleCount(), h.GetSampleSum(), runs, wantSum)
		}
	}
	if old != checkers {
		t.Errorf("%d www-old histogram series, want %d", old, checkers)
	}
}

// tryScrape is scrape for a goroutine other than the test's: it returns
// what went wrong instead of ending the test.
func tryScrape(url string) (map[string]*dto.MetricFamily, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d\n%s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("invalid exposition: %w\n%s", err, body)
	}
	return fams, nil
}

func TestServe(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	errc := make(chan error, 1)
	go func() { errc <- Serve(context.Background(), busy.Addr().String(), New(&fakeSource{})) }()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Serve on a taken address returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve on a taken address did not return")
	}

	// On a free address it serves until ctx ends, then returns nil.
	addr := busy.Addr().String()
	busy.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- Serve(ctx, addr, New(&fakeSource{sts: twoServices()})) }()
	url := "http://" + addr + "/metrics"
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %s", resp.Status)
			}
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("Serve on %s: %v", addr, err) // the port was taken in between; rare
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// TestPromtool lints the exposition with Prometheus's own checker.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian package prometheus); skipping `promtool check metrics`")
	}
	m := New(&fakeSource{sts: twoServices()})
	m.CheckRan("api-app", "http", true, 3*time.Millisecond)
	_, _, body := get(t, start(t, m))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
