package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"upkeep/internal/api"
)

// browser starts Debian's headless Chromium (never a downloaded one) and
// returns a tab's context; it and the browser end with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: .ci/run installs Debian's chromium")
		}
		t.Skip("needs chromium (apt-get install chromium): drives the pages in a real browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
		chromedp.NoSandbox, // as root, Chromium refuses to start with its sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// shots is where the screenshots go: $UPKEEP_SCREENSHOTS when set (CI
// keeps them), else the test's temp dir.
func shots(t *testing.T) string {
	if d := os.Getenv("UPKEEP_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func TestBrowser(t *testing.T) {
	ctx := browser(t)
	svcs := services(okServer(t))
	for i := 1; i <= 8; i++ {
		svcs[fmt.Sprintf("service-worker-%d", i)] = `command = ["/bin/sleep", "1000"]`
	}
	h := newHost(t, svcs)
	h.waitRunning("www-hello", "api-ticker")
	const token = "browser-token"
	ts := h.serve(Options{Actions: true, Token: token})
	eventually(t, 5*time.Second, "check results", func() bool {
		hist, _ := h.d.History("www-hello")
		return len(hist.Checks) >= 5
	})
	dir := shots(t)

	// The host page lists every service with its state.
	var rows int
	var state string
	run(t, ctx, "host page",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#row-www-hello`)),
		into(&rows, chromedp.Evaluate[int](`document.querySelectorAll("#rows tr").length`)),
		into(&state, attr(`#row-www-hello`, "data-state")),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[int](`window.__same = "page"; 0`)(ctx, tg)
			return err
		}),
	)
	if rows != len(svcs) || state != "running" {
		t.Fatalf("host page: %d rows (want %d), www-hello %q", rows, len(svcs), state)
	}
	screenshot(t, ctx, filepath.Join(dir, "dashboard-host.png"))

	// Filtering by prefix hides the others.
	var shown int
	run(t, ctx, "filter",
		chromedp.Click(chromedp.CSS(`button[data-prefix="service-"]`)),
		into(&shown, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("#rows tr")).filter(r => !r.hidden).length`)),
		chromedp.Click(chromedp.CSS(`button[data-prefix="service-"]`)),
	)
	if shown != 8 {
		t.Errorf("filter service-: %d rows shown, want 8", shown)
	}

	// A crash shows on the open page without a reload: the row leaves
	// running, then comes back with a new pid.
	old := h.status("www-hello").Pid
	kill(t, old)
	var same string
	run(t, ctx, "crash seen live",
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(function(){const r=document.getElementById("row-www-hello");
			return r && r.dataset.state==="running" && !r.innerHTML.includes(">%d<")})()`, old),
			chromedp.WithPollingTimeout(5*time.Second)),
		into(&same, chromedp.Evaluate[string](`window.__same || "reloaded"`)),
	)
	if same != "page" {
		t.Error("the page was reloaded to show the crash")
	}

	// Restart from the page, after logging in with the token.
	before := h.status("www-hello")
	run(t, ctx, "log in",
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), token),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
		// the form's answer is a new page, without the form; live updates
		// replace rows, so the button is found and clicked in the page
		waitJS(`!document.querySelector('input[name="token"]') &&
			!!document.querySelector('button[data-act="restart"][data-name="www-hello"]')`, 5*time.Second),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector('button[data-act="restart"][data-name="www-hello"]').click(); true`)(ctx, tg)
			return err
		}),
	)
	eventually(t, 10*time.Second, "www-hello restarted from the page", func() bool {
		st := h.status("www-hello")
		return st.Pid != before.Pid && st.State == api.Running
	})
	var msg string
	run(t, ctx, "restart message",
		chromedp.Poll[chromedp.Void](`document.getElementById("msg").textContent.endsWith("done")`, chromedp.WithPollingTimeout(5*time.Second)),
		into(&msg, chromedp.Text(chromedp.CSS(`#msg`))),
	)
	t.Log("page says:", msg)

	// The service page draws its plots with data points.
	var points string
	run(t, ctx, "service page",
		chromedp.Navigate(ts.URL+"/service/www-hello"),
		chromedp.WaitVisible(chromedp.CSS(`svg[data-title="check latency"] polyline`)),
		into(&points, attr(`svg[data-title="check latency"]`, "data-points")),
		chromedp.Poll[chromedp.Void](`document.getElementById("events").children.length > 0`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if n, _ := strconv.Atoi(points); n < 5 {
		t.Errorf("latency plot has %s points", points)
	}
	screenshot(t, ctx, filepath.Join(dir, "dashboard-service.png"))
	t.Logf("screenshots in %s", dir)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot", into(&png, chromedp.FullScreenshot(100)))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// into runs a and keeps its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		*dst = v
		return chromedp.Void{}, err
	}
}

// attr is an element's attribute value.
func attr(sel, name string) chromedp.Action[string] {
	return func(ctx context.Context, t *chromedp.Target) (string, error) {
		r, err := chromedp.AttributeValue(chromedp.CSS(sel), name)(ctx, t)
		return r.Value, err
	}
}

// waitJS evaluates expr until it is true, through navigations (which
// fail an evaluation in flight: tried again).
func waitJS(expr string, within time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(within)
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, tg)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if time.Now().After(deadline) {
				return chromedp.Void{}, fmt.Errorf("not within %s: %s (last error %v)", within, expr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
