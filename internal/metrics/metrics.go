package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"upkeep/internal/api"
)

// Source is what metrics read: the daemon's status snapshot (the
// supervise.Daemon in the daemon's process; metrics reads only api types).
type Source interface {
	Status(names []string) ([]api.Status, error)
}

// LogSource is what the log series read, when the Source has it (the
// supervise.Daemon does): a counter per captured log file.
type LogSource interface {
	LogCounters() []api.LogCounter
}

// states lists every state, so the state gauge always has all of them:
// `upkeep_service_state{state="fatal"} == 1` works without absent().
var states = api.States

// durationBuckets suit local probes: a loopback TCP connect takes well
// under a millisecond, a slow HTTP handler seconds, and check timeouts are
// seconds too.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

var (
	upDesc = prometheus.NewDesc("upkeep_service_up",
		"Whether the service is in state running (1) or not (0).",
		[]string{"service"}, nil)
	stateDesc = prometheus.NewDesc("upkeep_service_state",
		"The service's state: 1 for the current state, 0 for the others.",
		[]string{"service", "state"}, nil)
	restartsDesc = prometheus.NewDesc("upkeep_service_restarts_total",
		"Times the daemon has restarted the service.",
		[]string{"service"}, nil)
	cpuDesc = prometheus.NewDesc("upkeep_service_cpu_seconds_total",
		"User and system CPU time of the service's current processes, in seconds; starts again from 0 with each run.",
		[]string{"service"}, nil)
	rssDesc = prometheus.NewDesc("upkeep_service_resident_memory_bytes",
		"Resident memory of the service's current processes, in bytes.",
		[]string{"service"}, nil)
	checkUpDesc = prometheus.NewDesc("upkeep_check_up",
		"Whether the check's last run passed (1) or failed (0); absent until it has run.",
		[]string{"service", "check"}, nil)
	streakDesc = prometheus.NewDesc("upkeep_check_failure_streak",
		"Consecutive failed runs of the check that count toward its threshold (not those in the start grace); 0 after a pass.",
		[]string{"service", "check"}, nil)
	logDroppedDesc = prometheus.NewDesc("upkeep_log_dropped_bytes_total",
		"Bytes of the service's output that could not be written to the file (disk full, unwritable directory); whole lines. Starts from 0 when the daemon, or a reload that changes [log], opens the file anew.",
		[]string{"service", "file"}, nil)
	logWritableDesc = prometheus.NewDesc("upkeep_log_writable",
		"Whether the service's output is written to the file now (1) or dropped (0).",
		[]string{"service", "file"}, nil)
)

// Metrics is a prometheus.Collector over a Source, and what the daemon
// tells of every check run, for check durations (CheckRan: the daemon's
// Observer).
//
// Everything but the duration histogram is read from a status snapshot at
// scrape time and sent as const metrics, so a removed service disappears from
// the next scrape. The histogram has to accumulate between scrapes; it is
// pruned of services the snapshot no longer lists.
type Metrics struct {
	src       Source
	durations *prometheus.HistogramVec

	mu       sync.Mutex
	observed map[string]map[string]bool // service → checks with a histogram series
}

var _ prometheus.Collector = (*Metrics)(nil)

// New returns the metrics of src's services.
func New(src Source) *Metrics {
	return &Metrics{
		src: src,
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "upkeep_check_duration_seconds",
			Help:    "How long the check's runs took, in seconds.",
			Buckets: durationBuckets,
		}, []string{"service", "check"}),
		observed: map[string]map[string]bool{},
	}
}

// CheckRan observes one check run's latency; the daemon calls it for every run.
func (m *Metrics) CheckRan(service, check string, ok bool, latency time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock() // held while observing, so a concurrent prune cannot drop the series in between
	cs, found := m.observed[service]
	if !found {
		cs = map[string]bool{}
		m.observed[service] = cs
	}
	cs[check] = true
	m.durations.WithLabelValues(service, check).Observe(latency.Seconds())
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, stateDesc, restartsDesc, cpuDesc, rssDesc, checkUpDesc, streakDesc, logDroppedDesc, logWritableDesc} {
		ch <- d
	}
	m.durations.Describe(ch)
}

// Collect implements prometheus.Collector. A status that cannot be read
// fails the scrape rather than reporting every service as gone.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	sts, err := m.src.Status(nil)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(upDesc, fmt.Errorf("read status: %w", err))
		return
	}
	present := make(map[string]bool, len(sts))
	for _, st := range sts {
		present[st.Name] = true
		collectService(ch, st)
	}
	if ls, ok := m.src.(LogSource); ok {
		for _, c := range ls.LogCounters() {
			ch <- prometheus.MustNewConstMetric(logDroppedDesc, prometheus.CounterValue, float64(c.Dropped), c.Service, c.File)
			ch <- prometheus.MustNewConstMetric(logWritableDesc, prometheus.GaugeValue, boolValue(c.Err == ""), c.Service, c.File)
		}
	}
	m.prune(present)
	m.durations.Collect(ch)
}

func collectService(ch chan<- prometheus.Metric, st api.Status) {
	name := st.Name
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(st.State == api.Running), name)
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, boolValue(st.State == s), name, s.String())
	}
	ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(st.Restarts), name)
	ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, st.CPUSeconds, name)
	ch <- prometheus.MustNewConstMetric(rssDesc, prometheus.GaugeValue, float64(st.RSSBytes), name)
	for _, c := range st.Checks {
		if c.Last != nil {
			ch <- prometheus.MustNewConstMetric(checkUpDesc, prometheus.GaugeValue, boolValue(c.Last.OK), name, c.Name)
		}
		ch <- prometheus.MustNewConstMetric(streakDesc, prometheus.GaugeValue, float64(c.Streak), name, c.Name)
	}
}

// prune drops the histograms of services that are gone. Those of a stopped
// service stay: its checks are not listed while it is down, but its history is
// still its own.
func (m *Metrics) prune(present map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for service, checks := range m.observed {
		if present[service] {
			continue
		}
		for check := range checks {
			m.durations.DeleteLabelValues(service, check)
		}
		delete(m.observed, service)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the Prometheus text exposition of m together with the
// daemon's own Go runtime and process metrics (go_*, process_*).
func (m *Metrics) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Serve listens on addr (TCP) and serves /metrics until ctx ends. An
// address that cannot be listened on is returned at once, before any
// serving, so `upkeep daemon --metrics` fails at startup rather than later.
func Serve(ctx context.Context, addr string, m *Metrics) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return serve(ctx, ln, m)
}

func serve(ctx context.Context, ln net.Listener, m *Metrics) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// A scrape in flight gets a moment to finish; the daemon is shutting down.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	}
	return nil
}
