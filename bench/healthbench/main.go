// Command healthbench is the helper of bench/health.sh: the HTTP servers the
// health checks hit, and the measurements of the checks' schedule and of
// failure-to-restart latency.
//
//	healthbench serve -n 500 -ports-out F -ctl SOCK
//	    one process listening on n ports of 127.0.0.1 (ephemeral, listed in F,
//	    one a line), answering GET /ok with 200. A control API on the unix
//	    socket SOCK makes one port fail (HTTP 500, or "hang": accept and never
//	    answer) and heal, and reports when requests arrived.
//	healthbench lateness -sock UPKEEP_SOCK -from NS -to NS
//	    late_ns of every check run in [from, to) of every service, from the
//	    daemon's /v1/history: count, p50, p99, p99.9, max.
//	healthbench arrivals -ctl SOCK -from NS -to NS -interval 1s [-exclude PORT]
//	    the same seen from the server: how late each request arrived against
//	    a fixed-rate schedule fitted to its port's arrivals.
//	healthbench restart -ctl SOCK -port P -mode 500|hang -n 10
//	        (-upkeep UPKEEP_SOCK -name NAME | -pidfile F)
//	    make the port fail, time until the service runs with a new pid, heal;
//	    n times. With -upkeep also the daemon's own event times.
//	healthbench usage -pid P -secs S
//	    CPU (utime+stime of the process, % of one core) over S seconds, RSS.
//	healthbench freeport
//
// Nothing here talks to anything but 127.0.0.1 and unix sockets. Every
// subcommand is bounded.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: healthbench serve|lateness|arrivals|restart|usage|freeport ...")
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(args)
	case "lateness":
		err = cmdLateness(args)
	case "arrivals":
		err = cmdArrivals(args)
	case "restart":
		err = cmdRestart(args)
	case "usage":
		err = cmdUsage(args)
	case "freeport":
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			fmt.Println(l.Addr().(*net.TCPAddr).Port)
			l.Close()
		}
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "healthbench: "+msg)
	os.Exit(1)
}

// ---------------------------------------------------------------- stats

// percentile by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func summary(xs []float64) string {
	over := 0
	for _, x := range xs {
		if x > 50 {
			over++
		}
	}
	return fmt.Sprintf("n=%d p50=%.3f p99=%.3f p999=%.3f max=%.3f over50=%d", len(xs),
		percentile(xs, 50), percentile(xs, 99), percentile(xs, 99.9), percentile(xs, 100), over)
}

// ---------------------------------------------------------------- serve

type port struct {
	mu       sync.Mutex
	mode     string        // "" (healthy), "500", "hang"
	healed   chan struct{} // closed on heal: releases hung requests
	arrivals []int64       // unix ns of each /ok request
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	n := fs.Int("n", 500, "ports")
	portsOut := fs.String("ports-out", "", "file to list the ports in, one a line")
	ctlPath := fs.String("ctl", "", "unix socket of the control API")
	life := fs.Duration("life", 2*time.Hour, "exit after this long whatever happens")
	_ = fs.Parse(args)
	if *portsOut == "" || *ctlPath == "" {
		return errors.New("serve: -ports-out and -ctl are required")
	}
	ports := map[int]*port{}
	var list []int
	var b strings.Builder
	for i := 0; i < *n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("serve: listener %d: %w", i, err)
		}
		pn := l.Addr().(*net.TCPAddr).Port
		p := &port{healed: make(chan struct{})}
		ports[pn] = p
		list = append(list, pn)
		fmt.Fprintf(&b, "%d\n", pn)
		mux := http.NewServeMux()
		mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
			now := time.Now().UnixNano()
			p.mu.Lock()
			p.arrivals = append(p.arrivals, now)
			mode, healed := p.mode, p.healed
			p.mu.Unlock()
			switch mode {
			case "500":
				http.Error(w, "failing on purpose", http.StatusInternalServerError)
			case "hang":
				select { // accept, read the request, never answer
				case <-r.Context().Done():
				case <-healed:
				}
			default:
				io.WriteString(w, "ok\n")
			}
		})
		go (&http.Server{Handler: mux}).Serve(l)
	}
	if err := os.WriteFile(*portsOut+".tmp", []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(*portsOut+".tmp", *portsOut); err != nil {
		return err
	}

	get := func(w http.ResponseWriter, r *http.Request) *port {
		pn, _ := strconv.Atoi(r.URL.Query().Get("port"))
		p := ports[pn]
		if p == nil {
			http.Error(w, "no such port", http.StatusNotFound)
		}
		return p
	}
	ctl := http.NewServeMux()
	ctl.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		if p := get(w, r); p != nil {
			p.mu.Lock()
			p.mode = r.URL.Query().Get("mode")
			onset := time.Now().UnixNano() // from here on, every request fails
			p.mu.Unlock()
			fmt.Fprintln(w, onset)
		}
	})
	ctl.HandleFunc("POST /heal", func(w http.ResponseWriter, r *http.Request) {
		if p := get(w, r); p != nil {
			p.mu.Lock()
			if p.mode != "" {
				p.mode = ""
				close(p.healed)
				p.healed = make(chan struct{})
			}
			p.mu.Unlock()
			fmt.Fprintln(w, time.Now().UnixNano())
		}
	})
	ctl.HandleFunc("GET /arrivals", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		out := map[string][]int64{}
		for _, pn := range list {
			p := ports[pn]
			p.mu.Lock()
			var a []int64
			for _, t := range p.arrivals {
				if t >= from && t < to {
					a = append(a, t)
				}
			}
			p.mu.Unlock()
			out[strconv.Itoa(pn)] = a
		}
		json.NewEncoder(w).Encode(out)
	})
	os.Remove(*ctlPath)
	cl, err := net.Listen("unix", *ctlPath)
	if err != nil {
		return err
	}
	go (&http.Server{Handler: ctl}).Serve(cl)
	time.Sleep(*life)
	return nil
}

// ---------------------------------------------------------------- unix-socket clients

func unixClient(path string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			},
			MaxIdleConnsPerHost: 4,
		},
	}
}

func getJSON(c *http.Client, path string, out any) error {
	resp, err := c.Get("http://x" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func postInt(c *http.Client, path string) (int64, error) {
	resp, err := c.Post("http://x"+path, "text/plain", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// What the bench reads of upkeep's API (a subset of its JSON).
type checkStatus struct {
	Name string `json:"name"`
	Last *struct {
		OK bool `json:"ok"`
	} `json:"last"`
}

type status struct {
	Name     string        `json:"name"`
	State    string        `json:"state"`
	Pid      int           `json:"pid"`
	Restarts int           `json:"restarts"`
	Since    time.Time     `json:"since"`
	Checks   []checkStatus `json:"checks"`
}

type history struct {
	Checks []struct {
		Time    time.Time `json:"time"`
		OK      bool      `json:"ok"`
		Latency int64     `json:"latency_ns"`
		Late    int64     `json:"late_ns"`
	} `json:"checks"`
	Events []struct {
		Time    time.Time `json:"time"`
		Kind    string    `json:"kind"`
		State   string    `json:"state"`
		Message string    `json:"message"`
		Pid     int       `json:"pid"`
	} `json:"events"`
}

// ---------------------------------------------------------------- lateness

func cmdLateness(args []string) error {
	fs := flag.NewFlagSet("lateness", flag.ExitOnError)
	sock := fs.String("sock", "", "upkeep's control socket")
	from := fs.Int64("from", 0, "window start, unix ns")
	to := fs.Int64("to", math.MaxInt64, "window end, unix ns")
	raw := fs.String("raw", "", "file for every lateness (ms), one a line")
	_ = fs.Parse(args)
	c := unixClient(*sock)
	var sts []status
	if err := getJSON(c, "/v1/status", &sts); err != nil {
		return err
	}
	var late []float64
	failed, services := 0, 0
	lateSecs, failSecs := map[int64]int{}, map[int64]int{}
	var first, last time.Time
	for _, s := range sts {
		var h history
		if err := getJSON(c, "/v1/history?name="+s.Name, &h); err != nil {
			return err
		}
		services++
		for _, r := range h.Checks {
			if t := r.Time.UnixNano(); t < *from || t >= *to {
				continue
			}
			late = append(late, ms(time.Duration(r.Late)))
			if time.Duration(r.Late) > 50*time.Millisecond {
				lateSecs[r.Time.Unix()]++
			}
			if !r.OK {
				failed++
				failSecs[r.Time.Unix()]++
			}
			if first.IsZero() || r.Time.Before(first) {
				first = r.Time
			}
			if r.Time.After(last) {
				last = r.Time
			}
		}
	}
	if *raw != "" {
		var b strings.Builder
		for _, x := range late {
			fmt.Fprintf(&b, "%.3f\n", x)
		}
		_ = os.WriteFile(*raw, []byte(b.String()), 0o644)
	}
	// the seconds in which runs were late or failed: isolated stragglers,
	// or the whole daemon held up at once?
	worst := func(m map[int64]int) string {
		type sec struct {
			t int64
			n int
		}
		var ss []sec
		for t, n := range m {
			ss = append(ss, sec{t, n})
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].n > ss[j].n || ss[i].n == ss[j].n && ss[i].t < ss[j].t })
		var parts []string
		for i := 0; i < len(ss) && i < 5; i++ {
			parts = append(parts, fmt.Sprintf("%s:%d", time.Unix(ss[i].t, 0).UTC().Format("15:04:05"), ss[i].n))
		}
		return strings.Join(parts, ",")
	}
	span := ""
	if !first.IsZero() {
		span = fmt.Sprintf(" first=%s last=%s", first.UTC().Format("15:04:05"), last.UTC().Format("15:04:05"))
	}
	fmt.Printf("services=%d failed_runs=%d late_secs=%d fail_secs=%d%s %s worst_late=%s worst_fail=%s\n", services, failed,
		len(lateSecs), len(failSecs), span, summary(late), worst(lateSecs), worst(failSecs))
	return nil
}

// ---------------------------------------------------------------- arrivals

// cmdArrivals: per port, fit the fixed-rate schedule t0 + k*interval to
// each stretch of regular arrivals (k from rounding, t0 the earliest
// a-k*interval), and report how far each arrival is behind it. The fit
// makes this a jitter measure: a constant delay of every run is not seen.
func cmdArrivals(args []string) error {
	fs := flag.NewFlagSet("arrivals", flag.ExitOnError)
	ctl := fs.String("ctl", "", "the server's control socket")
	from := fs.Int64("from", 0, "window start, unix ns")
	to := fs.Int64("to", math.MaxInt64, "window end, unix ns")
	interval := fs.Duration("interval", time.Second, "the checks' interval")
	exclude := fs.String("exclude", "", "comma-separated ports to leave out")
	_ = fs.Parse(args)
	ex := map[string]bool{}
	for _, p := range strings.Split(*exclude, ",") {
		ex[p] = true
	}
	var all map[string][]int64
	if err := getJSON(unixClient(*ctl), fmt.Sprintf("/arrivals?from=%d&to=%d", *from, *to), &all); err != nil {
		return err
	}
	iv := int64(*interval)
	var late, periods []float64
	ports, breaks, reqs := 0, 0, 0
	maxGap := time.Duration(0)
	for pn, a := range all {
		if ex[pn] || len(a) < 2 {
			continue
		}
		ports++
		reqs += len(a)
		periods = append(periods, ms(time.Duration(a[len(a)-1]-a[0]))/float64(len(a)-1))
		// A schedule is fitted to each stretch of regular arrivals; a gap
		// off the interval by more than half of it (a restart, which starts
		// a new schedule, or a stall) ends a stretch and counts as a break.
		seg := []int64{a[0]}
		flush := func() {
			if len(seg) < 2 {
				return
			}
			base := int64(math.MaxInt64)
			ks := make([]int64, len(seg))
			for i, t := range seg {
				ks[i] = int64(math.Round(float64(t-seg[0]) / float64(iv)))
				base = min(base, t-ks[i]*iv)
			}
			for i, t := range seg {
				late = append(late, ms(time.Duration(t-ks[i]*iv-base)))
			}
		}
		for i := 1; i < len(a); i++ {
			gap := a[i] - a[i-1]
			maxGap = max(maxGap, time.Duration(gap))
			if gap < iv/2 || gap > iv+iv/2 {
				breaks++
				flush()
				seg = seg[:0]
			}
			seg = append(seg, a[i])
		}
		flush()
	}
	mean := 0.0
	for _, p := range periods {
		mean += p / float64(len(periods))
	}
	fmt.Printf("ports=%d requests=%d mean_period_ms=%.1f max_gap_ms=%.1f breaks=%d %s\n",
		ports, reqs, mean, ms(maxGap), breaks, summary(late))
	return nil
}

// ---------------------------------------------------------------- restart

func cmdRestart(args []string) error {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	ctl := fs.String("ctl", "", "the server's control socket")
	pn := fs.Int("port", 0, "the port the service's check hits")
	mode := fs.String("mode", "500", "how the server fails: 500 or hang")
	n := fs.Int("n", 10, "trials")
	upSock := fs.String("upkeep", "", "upkeep's control socket (with -name)")
	name := fs.String("name", "", "the upkeep service")
	pidfile := fs.String("pidfile", "", "instead of upkeep: the service's pid file (monit)")
	settle := fs.Duration("settle", 1500*time.Millisecond, "healthy time before a trial (plus a random 0–1 s)")
	poll := fs.Duration("poll", 2*time.Millisecond, "poll interval")
	each := fs.Duration("each", 20*time.Second, "bound for one trial")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound for the whole run")
	raw := fs.String("raw", "", "file for one line per trial")
	before := fs.String("before", "", "shell command to run before each trial (e.g. `upkeep restart NAME`, which resets the backoff)")
	_ = fs.Parse(args)
	if *ctl == "" || *pn == 0 || (*pidfile == "") == (*upSock == "" || *name == "") {
		return errors.New("restart: -ctl, -port and either -upkeep with -name or -pidfile are required")
	}
	srv := unixClient(*ctl)
	var up *http.Client
	if *upSock != "" {
		up = unixClient(*upSock)
	}
	end := time.Now().Add(*timeout)

	// look returns the service's pid now and whether it is up and healthy.
	look := func() (pid int, healthy bool, err error) {
		if up != nil {
			var sts []status
			if err := getJSON(up, "/v1/status?names="+*name, &sts); err != nil || len(sts) != 1 {
				return 0, false, err
			}
			s := sts[0]
			ok := s.State == "running" && s.Pid != 0
			for _, c := range s.Checks {
				ok = ok && c.Last != nil && c.Last.OK
			}
			return s.Pid, ok, nil
		}
		b, err := os.ReadFile(*pidfile)
		if err != nil {
			return 0, false, nil
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			return 0, false, nil
		}
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if !strings.Contains(string(st), "(sleep)") { // not exec'd yet
			return 0, false, nil
		}
		return pid, true, nil
	}
	gone := func(pid int) bool { // the old process is stopping, or gone
		if up != nil {
			var sts []status
			if err := getJSON(up, "/v1/status?names="+*name, &sts); err != nil || len(sts) != 1 {
				return false
			}
			return sts[0].State != "running" || sts[0].Pid != pid
		}
		var st syscall.Stat_t
		return syscall.Stat("/proc/"+strconv.Itoa(pid), &st) != nil
	}

	var lats, stops, starts []float64
	var lines []string
	failures := 0
	for i := 0; i < *n && time.Now().Before(end); i++ {
		// a healthy service, up for settle + a random fraction of a second,
		// so that the failure's onset falls anywhere in the check's cycle
		if *before != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, "sh", "-c", *before).CombinedOutput()
			cancel()
			if err != nil {
				return fmt.Errorf("restart: -before: %v: %s", err, strings.TrimSpace(string(out)))
			}
		}
		var old int
		var healthySince time.Time
		for {
			if time.Now().After(end) {
				return fmt.Errorf("restart: the service was not healthy for %v before the bound", *settle)
			}
			pid, ok, err := look()
			if err != nil {
				return err
			}
			if ok && pid == old && !healthySince.IsZero() && time.Since(healthySince) >= *settle {
				break
			}
			if !ok {
				old, healthySince = 0, time.Time{}
			} else if pid != old || healthySince.IsZero() {
				old, healthySince = pid, time.Now()
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		onsetNS, err := postInt(srv, fmt.Sprintf("/fail?port=%d&mode=%s", *pn, *mode))
		if err != nil {
			return err
		}
		onset := time.Unix(0, onsetNS)
		healed := false
		heal := func() {
			if !healed {
				if _, err := postInt(srv, fmt.Sprintf("/heal?port=%d", *pn)); err == nil {
					healed = true
				}
			}
		}
		var seen time.Time
		newPid := 0
		for time.Since(onset) < *each {
			if !healed && gone(old) {
				heal() // the restart is under way: the new run must find a healthy server
			}
			if pid, _, err := look(); err == nil && pid != 0 && pid != old {
				seen, newPid = time.Now(), pid
				break
			}
			time.Sleep(*poll)
		}
		heal()
		if newPid == 0 {
			failures++
			lines = append(lines, fmt.Sprintf("trial=%d no new pid within %v", i+1, *each))
			continue
		}
		lat := ms(seen.Sub(onset))
		lats = append(lats, lat)
		line := fmt.Sprintf("trial=%d onset=%s old=%d new=%d onset_to_new_pid_ms=%.1f", i+1,
			onset.UTC().Format("15:04:05.000"), old, newPid, lat)
		if up != nil {
			var h history
			if err := getJSON(up, "/v1/history?name="+*name, &h); err == nil {
				var stopAt, startAt time.Time
				backoff := ""
				for _, e := range h.Events {
					if e.Kind != "state" || e.Time.Before(onset) {
						continue
					}
					switch {
					case e.State == "stopping" && stopAt.IsZero():
						stopAt = e.Time
					case e.State == "backoff" && backoff == "":
						backoff = e.Message
					case e.State == "starting" && startAt.IsZero():
						startAt = e.Time
					}
				}
				if !stopAt.IsZero() {
					stops = append(stops, ms(stopAt.Sub(onset)))
					line += fmt.Sprintf(" onset_to_stopping_ms=%.1f", ms(stopAt.Sub(onset)))
				}
				if !startAt.IsZero() {
					starts = append(starts, ms(startAt.Sub(onset)))
					line += fmt.Sprintf(" onset_to_starting_ms=%.1f", ms(startAt.Sub(onset)))
				}
				if i := strings.Index(backoff, "restart in "); i >= 0 {
					line += " backoff=" + strings.TrimPrefix(backoff[i:], "restart in ")
				}
			}
		}
		lines = append(lines, line)
	}
	if *raw != "" {
		_ = os.WriteFile(*raw, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	pr := func(xs []float64) string {
		return fmt.Sprintf("p50=%.1f max=%.1f min=%.1f", percentile(xs, 50), percentile(xs, 100), percentile(xs, 0))
	}
	out := fmt.Sprintf("n=%d failures=%d new_pid: %s", len(lats), failures, pr(lats))
	if len(stops) > 0 {
		out += " | stopping_event: " + pr(stops)
	}
	if len(starts) > 0 {
		out += " | starting_event: " + pr(starts)
	}
	fmt.Println(out)
	return nil
}

// ---------------------------------------------------------------- usage

func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s, nil
}

func rssKB(pid int) uint64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// cmdUsage: CPU of each pid over -secs (10 ms ticks), and RSS at the end.
func cmdUsage(args []string) error {
	fs := flag.NewFlagSet("usage", flag.ExitOnError)
	secs := fs.Float64("secs", 60, "window")
	_ = fs.Parse(args)
	var pids []int
	var t0 []uint64
	for _, a := range fs.Args() {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("usage: bad pid %q", a)
		}
		t, err := cpuTicks(pid)
		if err != nil {
			return err
		}
		pids, t0 = append(pids, pid), append(t0, t)
	}
	start := time.Now()
	time.Sleep(time.Duration(*secs * float64(time.Second)))
	wall := time.Since(start).Seconds()
	for i, pid := range pids {
		t, err := cpuTicks(pid)
		if err != nil {
			return err
		}
		d := t - t0[i]
		fmt.Printf("pid=%d cpu_ticks=%d cpu_pct=%.2f wall_s=%.1f rss_kb=%d\n", pid, d, float64(d)/100/wall*100, wall, rssKB(pid))
	}
	return nil
}
