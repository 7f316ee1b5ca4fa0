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

func (s *Server) rows(sts []api.Status) []row {
	now := time.Now()
	out := make([]row, 0, len(sts))
	for _, st := range sts {
		h, _ := s.b.History(st.Name)
		out = append(out, s.makeRow(st, h, now))
	}
	return out
}

func (s *Server) makeRow(st api.Status, h api.History, now time.Time) row {
	r := row{Status: st, Actions: s.o.Actions, RSS: size(st.RSSBytes)}
	if st.State == api.Running {
		r.Uptime = age(time.Duration(st.UptimeSeconds * float64(time.Second)))
	}
	cpu, rss := series(h.Samples)
	if n := len(cpu); n > 0 {
		r.CPU = cpu[n-1].v
	}
	t0 := s.window(now)
	r.Spark.CPU = spark(cpu, t0, now)
	r.Spark.RSS = spark(rss, t0, now)
	r.Spark.Latency = spark(latencies(h.Checks), t0, now)
	for _, c := range h.Checks {
		if now.Sub(c.Time) < time.Minute {
			r.recent++
		}
	}
	for _, e := range h.Events {
		if e.Kind == "state" && e.State == api.Backoff.String() && now.Sub(e.Time) < 10*time.Minute {
			r.Flapping = true
		}
	}
	return r
}

// series makes CPU % (from the cumulative seconds of successive samples)
// and RSS points from the history's samples.
func series(ss []api.Sample) (cpu, rss []point) {
	for i, s := range ss {
		rss = append(rss, point{t: s.Time, v: float64(s.RSSBytes)})
		if i == 0 {
			continue
		}
		p := ss[i-1]
		dt := s.Time.Sub(p.Time).Seconds()
		if dt <= 0 || s.CPUSeconds < p.CPUSeconds { // a restart resets the counter
			continue
		}
		cpu = append(cpu, point{t: s.Time, v: 100 * (s.CPUSeconds - p.CPUSeconds) / dt})
	}
	return cpu, rss
}

func latencies(cs []api.CheckResult) []point {
	out := make([]point, 0, len(cs))
	for _, c := range cs {
		out = append(out, point{c.Time, float64(c.Latency) / float64(time.Millisecond), !c.OK})
	}
	return out
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
	s.render(w, "service.html", map[string]any{
		"Row": s.makeRow(sts[0], h, now), "Plots": plots(h, s.window(now), now), "Events": ev,
		"CSRF": s.csrf, "Actions": s.o.Actions, "Authed": s.authed(r),
	})
}

func (s *Server) plotsFragment(w http.ResponseWriter, r *http.Request) {
	h, err := s.b.History(r.PathValue("name"))
	if err != nil {
		httpError(w, err)
		return
	}
	now := time.Now()
	s.render(w, "plots", plots(h, s.window(now), now))
}

// plots are the service page's charts, all on [t0, now].
func plots(h api.History, t0, now time.Time) []template.HTML {
	cpu, rss := series(h.Samples)
	var marks []mark
	for _, e := range h.Events {
		if e.Kind == "state" {
			marks = append(marks, mark{e.Time, e.State})
		}
	}
	return []template.HTML{
		chart("CPU", "%", cpu, marks, t0, now),
		chart("RSS", "B", rss, marks, t0, now),
		chart("check latency", "ms", latencies(h.Checks), marks, t0, now),
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
