// dashbench measures web dashboards in Debian's headless Chromium, for
// bench/dashboard.sh.
//
//	dashbench page -url URL [-pid PID] [-live 60s] [-n 5]
//	    first paint (ms: the first load, and the median of n), page weight
//	    (KB of bodies: document and what it loaded), and, with -pid, that
//	    process's CPU while the page stays open for -live; one JSON line.
//	dashbench ok ADDR
//	    answers /ok, for the services' HTTP checks.
//	dashbench synthetic -addr ADDR [-services 100]
//	    serves upkeep's dashboard from an hour of made-up history (the
//	    daemon keeps an hour; a benchmark cannot wait one), until killed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"upkeep/internal/api"
	"upkeep/internal/dashboard"
	"upkeep/internal/health"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashbench page|synthetic ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "page":
		err = page(os.Args[2:])
	case "synthetic":
		err = synthetic(os.Args[2:])
	case "port":
		// a free loopback port, for the script's servers
		l, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr == nil {
			fmt.Println(l.Addr().(*net.TCPAddr).Port)
			l.Close()
		}
		err = lerr
	case "ok":
		// the services' HTTP checks hit this: 200 on /ok
		err = http.ListenAndServe(os.Args[2], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashbench:", err)
		os.Exit(1)
	}
}

type result struct {
	URL        string  `json:"url"`
	FirstMs    float64 `json:"first_paint_ms_cold"`
	MedianMs   float64 `json:"first_paint_ms_median"`
	WeightKB   float64 `json:"weight_kb"`
	Requests   int     `json:"requests"`
	LiveSecs   float64 `json:"live_secs,omitempty"`
	CPUPercent float64 `json:"cpu_percent_live,omitempty"`
	RSSKB      int64   `json:"rss_kb_live,omitempty"` // the process's VmRSS at the end, page still open
}

func page(args []string) error {
	fs := flag.NewFlagSet("page", flag.ExitOnError)
	url := fs.String("url", "", "page to load")
	pid := fs.Int("pid", 0, "process whose CPU to measure while the page is open")
	live := fs.Duration("live", time.Minute, "how long the page stays open for the CPU figure")
	n := fs.Int("n", 5, "loads for the median")
	fs.Parse(args)
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dashbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.UserDataDir(dir),
		chromedp.NoSandbox, chromedp.WindowSize(1400, 900), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelT := chromedp.NewContext(actx)
	defer cancelT()
	if err := chromedp.Do(ctx); err != nil {
		return err
	}
	r := result{URL: *url}
	var paints []float64
	for i := 0; i < *n; i++ {
		// a new tab each time, the cache of the first kept (as a second visit)
		tctx, cancel := chromedp.NewContext(ctx)
		if err := chromedp.Do(tctx, chromedp.Navigate(*url)); err != nil {
			cancel()
			return err
		}
		fcp, err := waitPaint(tctx)
		if err != nil {
			cancel()
			return err
		}
		paints = append(paints, fcp)
		if i == 0 {
			w, err := chromedp.Run(tctx, chromedp.Evaluate[[]float64](`(function(){
				const n = performance.getEntriesByType("navigation")[0];
				let s = n.decodedBodySize, k = 1;
				for (const e of performance.getEntriesByType("resource")) { s += e.decodedBodySize; k++ }
				return [s, k];
			})()`))
			if err != nil {
				cancel()
				return err
			}
			r.WeightKB, r.Requests = w[0]/1024, int(w[1])
		}
		if i < *n-1 {
			cancel()
			continue
		}
		if *pid > 0 {
			// the last tab stays open and live for the CPU figure
			c0, err := cpuTicks(*pid)
			if err != nil {
				cancel()
				return err
			}
			t0 := time.Now()
			time.Sleep(*live)
			c1, err := cpuTicks(*pid)
			if err != nil {
				cancel()
				return err
			}
			r.LiveSecs = time.Since(t0).Seconds()
			r.RSSKB = rssKB(*pid)
			r.CPUPercent = 100 * float64(c1-c0) / 100 / r.LiveSecs // USER_HZ is 100 on Linux
		}
		cancel()
	}
	r.FirstMs = paints[0]
	slices.Sort(paints)
	r.MedianMs = paints[len(paints)/2]
	return json.NewEncoder(os.Stdout).Encode(r)
}

// waitPaint is the first contentful paint of the loaded page, in ms from
// the navigation's start; a page without content paints its first paint.
func waitPaint(ctx context.Context) (float64, error) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(function(){
			const p = performance.getEntriesByName("first-contentful-paint")[0] || performance.getEntriesByName("first-paint")[0];
			return p ? p.startTime : -1;
		})()`))
		if err == nil && v >= 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("no paint within 10 s")
}

func rssKB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, nil
}

// fake is a daemon with an hour of history for each service.
type fake struct {
	sts  []api.Status
	hist map[string]api.History
}

func synthetic(args []string) error {
	fs := flag.NewFlagSet("synthetic", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	n := fs.Int("services", 100, "services")
	fs.Parse(args)
	now := time.Now()
	f := &fake{hist: map[string]api.History{}}
	for i := 0; i < *n; i++ {
		name := fmt.Sprintf("%s-%03d", []string{"www", "api", "service"}[i%3], i)
		st := api.Status{Name: name, State: api.Running, Pid: 10000 + i, Restarts: i % 4, Since: now.Add(-time.Hour),
			StartedAt: now.Add(-time.Hour), UptimeSeconds: 3600, CPUSeconds: 12, RSSBytes: 20 << 20, Autostart: true}
		var h api.History
		for s := 0; s < 360; s++ { // 10 s samples
			t := now.Add(-time.Hour + time.Duration(s)*10*time.Second)
			h.Samples = append(h.Samples, api.Sample{Time: t, CPUSeconds: float64(s) * (0.5 + float64(s%7)/10), RSSBytes: uint64(18<<20 + (s%13)<<18), Restarts: st.Restarts})
		}
		if i%2 == 0 {
			st.Checks = []health.CheckStatus{{Name: "http", Type: "http", Passes: 3600,
				Last: &health.Result{Check: "http", OK: true, Latency: 2 * time.Millisecond}}}
			for c := 0; c < 1024; c++ { // the daemon keeps the last 1024 runs
				t := now.Add(-time.Duration(1024-c) * 3 * time.Second)
				h.Checks = append(h.Checks, api.CheckResult{Time: t, Check: "http", OK: c%97 != 0, Latency: time.Duration(1+c%5) * time.Millisecond})
			}
		}
		for e := 0; e < 256; e++ {
			t := now.Add(-time.Hour + time.Duration(e)*14*time.Second)
			h.Events = append(h.Events, api.Event{Time: t, Service: name, Kind: "state", State: []string{"starting", "running"}[e%2]})
		}
		f.sts = append(f.sts, st)
		f.hist[name] = h
	}
	s, err := dashboard.New(f, dashboard.Options{Addr: *addr, Started: now.Add(-2 * time.Hour)})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println("http://" + l.Addr().String() + "/")
	return (&http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}).Serve(l)
}

func (f *fake) Status(names []string) ([]api.Status, error) {
	if len(names) == 0 {
		return f.sts, nil
	}
	var out []api.Status
	for _, n := range names {
		i := slices.IndexFunc(f.sts, func(s api.Status) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%s: %w", n, api.ErrUnknown)
		}
		out = append(out, f.sts[i])
	}
	return out, nil
}
func (f *fake) Start(context.Context, []string, bool) error   { return syscall.EPERM }
func (f *fake) Stop(context.Context, []string, bool) error    { return syscall.EPERM }
func (f *fake) Restart(context.Context, []string, bool) error { return syscall.EPERM }
func (f *fake) Rotate([]string) ([]api.Rotated, error)        { return nil, syscall.EPERM }
func (f *fake) Events(string) []api.Event                     { return nil }
func (f *fake) Follow() (<-chan api.Event, func()) {
	ch := make(chan api.Event)
	return ch, func() {}
}
func (f *fake) History(name string) (api.History, error) {
	h, ok := f.hist[name]
	if !ok {
		return h, api.ErrUnknown
	}
	return h, nil
}
