package dashboard

import (
	"fmt"
	"html/template"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"upkeep/internal/api"
)

// window is how far back the plots reach: the hour of history the daemon
// keeps, or less while the daemon is younger (at least five minutes), so
// a new daemon's data is not squeezed into the right edge.
func (s *Server) window(now time.Time) time.Time {
	return now.Add(-min(max(now.Sub(s.o.Started), 5*time.Minute), time.Hour))
}

// row is one service as the host page shows it.
type row struct {
	api.Status
	CPU      float64 // percent of one core over the last sample interval
	Spark    sparks
	Actions  bool
	Uptime   string
	RSS      string
	Flapping bool // restarted within the last ten minutes
	recent   int  // check runs within the last minute
}

type sparks struct{ CPU, RSS, Latency template.HTML }

// hostFigures are the daemon's own.
type hostFigures struct {
	Uptime       string
	RSS          string
	Services     int
	Running      int
	Failed       int
	ChecksPerSec float64
}

// seriesSource is the daemon's cheaper read of what plots need: only the
// window, no events, handed over without copies. Used when the backend
// has it; History otherwise.
type seriesSource interface {
	Series(name string, since time.Time, onSample func(api.Sample), onCheck func(api.CheckResult)) error
}

// traces are a service's three plotted series, folded to n points each.
type traces struct {
	cpu, rss, lat *trace
	recent        int // check runs within the last minute
}

// traces reads name's samples and check runs in [t0, now] into traces of
// at most about n points: CPU % from the cumulative seconds of successive
// samples, RSS, and check latency with failures marked.
func (s *Server) traces(name string, t0, now time.Time, n int) traces {
	tr := traces{cpu: newTrace(t0, now, n), rss: newTrace(t0, now, n), lat: newTrace(t0, now, n)}
	minute := now.Add(-time.Minute)
	var prev api.Sample
	onSample := func(x api.Sample) {
		tr.rss.add(x.Time, float64(x.RSSBytes), false)
		if dt := x.Time.Sub(prev.Time).Seconds(); !prev.Time.IsZero() && dt > 0 && x.CPUSeconds >= prev.CPUSeconds { // a restart resets the counter
			tr.cpu.add(x.Time, 100*(x.CPUSeconds-prev.CPUSeconds)/dt, false)
		}
		prev = x
	}
	onCheck := func(c api.CheckResult) {
		tr.lat.add(c.Time, float64(c.Latency)/float64(time.Millisecond), !c.OK)
		if !c.Time.Before(minute) {
			tr.recent++
		}
	}
	if src, ok := s.b.(seriesSource); ok {
		_ = src.Series(name, t0, onSample, onCheck)
		return tr
	}
	h, _ := s.b.History(name)
	for _, x := range h.Samples {
		onSample(x)
	}
	for _, c := range h.Checks {
		onCheck(c)
	}
	return tr
}

func (s *Server) rows(sts []api.Status) []row {
	now := time.Now()
	t0 := s.window(now)
	out := make([]row, 0, len(sts))
	for _, st := range sts {
		out = append(out, s.makeRow(st, s.traces(st.Name, t0, now, sparkW/2), now))
	}
	return out
}

// makeRow: flapping is judged from the status, the rest from tr.
func (s *Server) makeRow(st api.Status, tr traces, now time.Time) row {
	r := row{Status: st, Actions: s.o.Actions, RSS: size(st.RSSBytes)}
	if st.State == api.Running {
		r.Uptime = age(time.Duration(st.UptimeSeconds * float64(time.Second)))
	}
	r.CPU = tr.cpu.lastValue()
	r.Spark.CPU = spark(tr.cpu)
	r.Spark.RSS = spark(tr.rss)
	r.Spark.Latency = spark(tr.lat)
	r.recent = tr.recent
	// restarted within ten minutes, or waiting to be
	r.Flapping = st.State == api.Backoff || (st.Restarts > 0 && !st.StartedAt.IsZero() && now.Sub(st.StartedAt) < 10*time.Minute)
	return r
}

// host sums the rows into the daemon's figures; checks per second are
// those of the last minute, from the histories the rows were made from.
func (s *Server) host(rows []row) hostFigures {
	f := hostFigures{Uptime: age(time.Since(s.o.Started)), Services: len(rows), RSS: size(selfRSS())}
	runs := 0
	for _, r := range rows {
		switch r.State {
		case api.Running:
			f.Running++
		case api.Fatal, api.Backoff:
			f.Failed++
		}
		runs += r.recent
	}
	f.ChecksPerSec = float64(runs) / time.Minute.Seconds()
	return f
}

func (s *Server) hostPage(w http.ResponseWriter, r *http.Request) {
	sts, err := s.b.Status(nil)
	if err != nil {
		httpError(w, err)
		return
	}
	rows := s.rows(sts)
	s.render(w, "host.html", map[string]any{
		"Rows": rows, "Host": s.host(rows), "CSRF": s.csrf,
		"Actions": s.o.Actions, "Authed": s.authed(r), "Filter": r.URL.Query().Get("filter"),
	})
}

func (s *Server) rowsFragment(w http.ResponseWriter, r *http.Request) {
	sts, err := s.b.Status(nil)
	if err != nil {
		httpError(w, err)
		return
	}
	s.render(w, "rows", s.rows(sts))
}

// servicePage: the service's figures, its plots on one time axis, its
// recent events and the tails of its two log files.
func (s *Server) servicePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	sts, err := s.b.Status([]string{name})
	if err != nil {
		httpError(w, err)
		return
	}
	h, err := s.b.History(name)
	if err != nil {
		httpError(w, err)
		return
	}
	now := time.Now()
	ev := slices.Clone(h.Events)
	slices.Reverse(ev)
	if len(ev) > 50 {
		ev = ev[:50]
	}
	t0 := s.window(now)
	s.render(w, "service.html", map[string]any{
		"Row": s.makeRow(sts[0], s.traces(name, t0, now, sparkW/2), now), "Plots": s.plots(name, h.Events, t0, now), "Events": ev,
		"CSRF": s.csrf, "Actions": s.o.Actions, "Authed": s.authed(r),
	})
}

func (s *Server) plotsFragment(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.b.Status([]string{name}); err != nil {
		httpError(w, err)
		return
	}
	now := time.Now()
	s.render(w, "plots", s.plots(name, s.b.Events(name), s.window(now), now))
}

// plots are the service page's charts, all on [t0, now], with the state
// changes among events marked across each.
func (s *Server) plots(name string, events []api.Event, t0, now time.Time) []template.HTML {
	tr := s.traces(name, t0, now, chartPoints)
	var marks []mark
	for _, e := range events {
		if e.Kind == "state" {
			marks = append(marks, mark{e.Time, e.State})
		}
	}
	return []template.HTML{
		chart("CPU", "%", tr.cpu, marks),
		chart("RSS", "B", tr.rss, marks),
		chart("check latency", "ms", tr.lat, marks),
	}
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	var names []string
	if n := r.URL.Query().Get("name"); n != "" {
		names = strings.Split(n, ",")
	}
	sts, err := s.b.Status(names)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, sts)
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	svc := r.URL.Query().Get("service")
	if svc != "" {
		if _, err := s.b.Status([]string{svc}); err != nil {
			httpError(w, err)
			return
		}
	}
	ev := s.b.Events(svc)
	if ev == nil {
		ev = []api.Event{}
	}
	writeJSON(w, ev)
}

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	h, err := s.b.History(r.PathValue("name"))
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, h)
}

var funcs = template.FuncMap{
	"bytes": size,
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	"ms":    func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) },
	"clock": func(t time.Time) string { return t.Local().Format("15:04:05") },
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return age(time.Since(t))
	},
	"lower": strings.ToLower,
	"list":  func(s ...string) []string { return s },
	"acts":  func() []string { return []string{"start", "stop", "restart", "rotate"} },
	"page":  func(title, csrf string) map[string]string { return map[string]string{"Title": title, "CSRF": csrf} },
}

func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// selfRSS is the daemon's resident set, from /proc/self/statm.
func selfRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res uint64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * uint64(os.Getpagesize())
}
