package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"upkeep/internal/api"
	"upkeep/internal/paths"
)

func services(okURL string) map[string]string {
	return map[string]string{
		"www-hello": fmt.Sprintf(`command = ["/bin/sleep", "1000"]
[restart]
policy = "always"
backoff = "10ms"
[[check]]
type = "http"
url = "%s/ok"
interval = "100ms"
timeout = "1s"
`, okURL),
		"api-ticker": `script = """
n=0
while true; do n=$((n+1)); echo "tick $n"; echo "warn $n" >&2; sleep 0.05; done
"""
ready_after = "50ms"
`,
	}
}

var pointsRE = regexp.MustCompile(`data-points="(\d+)"`)

func TestHostPageListsEveryService(t *testing.T) {
	h := newHost(t, services(okServer(t)))
	h.waitRunning("www-hello", "api-ticker")
	ts := h.serve(Options{})
	eventually(t, 5*time.Second, "check results in the history", func() bool {
		hist, _ := h.d.History("www-hello")
		return len(hist.Checks) >= 3
	})

	code, page := get(t, ts.URL+"/")
	if code != 200 {
		t.Fatalf("GET /: %d\n%s", code, page)
	}
	for _, name := range []string{"www-hello", "api-ticker"} {
		st := h.status(name)
		row := regexp.MustCompile(`(?s)<tr id="row-` + name + `".*?</tr>`).FindString(page)
		if row == "" {
			t.Fatalf("no row for %s in the host page", name)
		}
		if !strings.Contains(row, `data-state="running"`) || !strings.Contains(row, `st-running">running<`) {
			t.Errorf("%s's row does not say running:\n%s", name, row)
		}
		if !strings.Contains(row, ">"+strconv.Itoa(st.Pid)+"<") {
			t.Errorf("%s's row lacks its pid %d:\n%s", name, st.Pid, row)
		}
	}
	// The checked service's latency sparkline has points; the host's own
	// figures are there.
	row := regexp.MustCompile(`(?s)<tr id="row-www-hello".*?</tr>`).FindString(page)
	ms := pointsRE.FindAllStringSubmatch(row, -1)
	if len(ms) != 3 {
		t.Fatalf("want 3 sparklines (CPU, RSS, latency) in the row, got %d", len(ms))
	}
	if n, _ := strconv.Atoi(ms[2][1]); n < 3 {
		t.Errorf("latency sparkline has %d points, want ≥ 3", n)
	}
	if !strings.Contains(page, "<b>2</b> services") || !strings.Contains(page, "checks/s") {
		t.Errorf("host figures missing:\n%s", page)
	}
	if strings.Contains(page, `data-act=`) {
		t.Error("action buttons shown with actions off")
	}

	// The JSON behind the page is the daemon's own.
	var sts []api.Status
	getJSON(t, ts.URL+"/api/status", &sts)
	if len(sts) != 2 {
		t.Fatalf("/api/status: %d services", len(sts))
	}
	var hist api.History
	getJSON(t, ts.URL+"/api/history/www-hello", &hist)
	if len(hist.Checks) < 3 || len(hist.Events) == 0 {
		t.Errorf("/api/history: %d checks, %d events", len(hist.Checks), len(hist.Events))
	}
	var evs []api.Event
	getJSON(t, ts.URL+"/api/events?service=api-ticker", &evs)
	for _, e := range evs {
		if e.Service != "api-ticker" {
			t.Errorf("/api/events?service=api-ticker gave %s's event", e.Service)
		}
	}
	if len(evs) == 0 {
		t.Error("/api/events: none for api-ticker")
	}
	for _, u := range []string{"/api/history/ghost", "/service/ghost", "/api/logs/ghost", "/api/events?service=ghost"} {
		if code, _ := get(t, ts.URL+u); code != 404 {
			t.Errorf("GET %s: %d, want 404", u, code)
		}
	}
}

func TestServicePageDrawsPlots(t *testing.T) {
	h := newHost(t, services(okServer(t)))
	h.waitRunning("www-hello")
	ts := h.serve(Options{})
	eventually(t, 5*time.Second, "check results", func() bool {
		hist, _ := h.d.History("www-hello")
		return len(hist.Checks) >= 3
	})
	code, page := get(t, ts.URL+"/service/www-hello")
	if code != 200 {
		t.Fatalf("%d\n%s", code, page)
	}
	lat := regexp.MustCompile(`data-points="(\d+)" data-title="check latency"`).FindStringSubmatch(page)
	if lat == nil {
		t.Fatalf("no latency chart:\n%s", page)
	}
	if n, _ := strconv.Atoi(lat[1]); n < 3 {
		t.Errorf("latency chart has %d points", n)
	}
	if !strings.Contains(page, `class="mark st-running"`) {
		t.Error("no state-change mark on the charts")
	}
	if !strings.Contains(page, `id="log-out"`) || !strings.Contains(page, `id="log-err"`) {
		t.Error("no log tails")
	}
}

// A crash reaches an open stream as the service's row, within a second.
func TestStreamSendsStateChangeWithinASecond(t *testing.T) {
	h := newHost(t, services(okServer(t)))
	h.waitRunning("www-hello")
	ts := h.serve(Options{})
	ch := follow(t, ts.URL+"/api/stream")
	old := h.status("www-hello").Pid
	kill(t, old)
	killed := time.Now()
	ev := waitFor(t, ch, time.Second, "a row for www-hello not running", func(e sseEvent) bool {
		if e.name != "row" {
			return false
		}
		var r struct {
			Name, State string
		}
		json.Unmarshal([]byte(e.data), &r)
		return r.Name == "www-hello" && r.State != "running"
	})
	t.Logf("row after %v: %.80s", time.Since(killed), ev.data)
	waitFor(t, ch, 2*time.Second, "a row for www-hello running again", func(e sseEvent) bool {
		return e.name == "row" && strings.Contains(e.data, `"state":"running"`) && strings.Contains(e.data, `"name":"www-hello"`) &&
			!strings.Contains(e.data, ">"+strconv.Itoa(old)+"<")
	})
}

func TestActionsNeedTokenAndCSRF(t *testing.T) {
	h := newHost(t, services(okServer(t)))
	h.waitRunning("www-hello")
	const token = "s3cret-token"
	ts := h.serve(Options{Actions: true, Token: token})
	s, _ := New(h.d, Options{Actions: true, Token: token, Addr: "127.0.0.1:0"})
	csrf := s.csrf

	post := func(path string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode, string(buf[:n])
	}
	pid := h.status("www-hello").Pid
	refused := []struct {
		why  string
		code int
		hdr  map[string]string
	}{
		{"no credentials", 401, map[string]string{"X-Upkeep-CSRF": csrf}},
		{"wrong token", 401, map[string]string{"Authorization": "Bearer nope", "X-Upkeep-CSRF": csrf}},
		{"wrong token cookie", 401, map[string]string{"Cookie": authCookie + "=nope", "X-Upkeep-CSRF": csrf}},
		{"no CSRF", 403, map[string]string{"Authorization": "Bearer " + token}},
		{"wrong CSRF", 403, map[string]string{"Authorization": "Bearer " + token, "X-Upkeep-CSRF": "0" + csrf[1:]}},
		{"other origin", 403, map[string]string{"Authorization": "Bearer " + token, "X-Upkeep-CSRF": csrf, "Origin": "http://evil.example"}},
		{"cross-site fetch", 403, map[string]string{"Cookie": authCookie + "=" + token, "X-Upkeep-CSRF": csrf, "Sec-Fetch-Site": "cross-site"}},
	}
	for _, r := range refused {
		if code, body := post("/api/act/www-hello/restart", r.hdr); code != r.code {
			t.Errorf("%s: %d %s, want %d", r.why, code, body, r.code)
		}
	}
	if got := h.status("www-hello"); got.Pid != pid || got.Restarts != 0 {
		t.Fatalf("a refused request changed the service: pid %d→%d, restarts %d", pid, got.Pid, got.Restarts)
	}
	if code, _ := get(t, ts.URL+"/api/act/www-hello/restart"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET of an action: %d, want 405", code)
	}
	if code, _ := post("/api/act/www-hello/reboot", map[string]string{"Authorization": "Bearer " + token, "X-Upkeep-CSRF": csrf}); code != 404 {
		t.Errorf("unknown action: %d, want 404", code)
	}
	if code, _ := post("/api/act/ghost/restart", map[string]string{"Authorization": "Bearer " + token, "X-Upkeep-CSRF": csrf}); code != 404 {
		t.Errorf("unknown service: %d, want 404", code)
	}

	// The login form sets the cookie the page's requests then carry.
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(ts.URL)
	cookie := func() string {
		for _, c := range jar.Cookies(base) {
			if c.Name == authCookie {
				return c.Value
			}
		}
		return ""
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(ts.URL+"/login", map[string][]string{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("login without the form's CSRF: %d, want 403", resp.StatusCode)
	}
	resp, err = c.PostForm(ts.URL+"/login", map[string][]string{"token": {token}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || cookie() != token {
		t.Fatalf("login: %d, cookie %q", resp.StatusCode, cookie())
	}
	req, _ := http.NewRequest("POST", ts.URL+"/api/act/www-hello/restart", nil)
	req.Header.Set("X-Upkeep-CSRF", csrf)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("restart with the cookie and CSRF: %d", resp.StatusCode)
	}
	if got := h.status("www-hello"); got.Pid == pid || got.State != api.Running {
		t.Errorf("after restart: pid %d (was %d), %s", got.Pid, pid, got.State)
	}
}

func TestActionsOff(t *testing.T) {
	h := newHost(t, services(okServer(t)))
	h.waitRunning("www-hello")
	ts := h.serve(Options{})
	pid := h.status("www-hello").Pid
	req, _ := http.NewRequest("POST", ts.URL+"/api/act/www-hello/stop", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || h.status("www-hello").Pid != pid {
		t.Errorf("stop with actions off: %d, pid %d→%d", resp.StatusCode, pid, h.status("www-hello").Pid)
	}
}

func TestBeyondLoopbackNeedsBasicAuth(t *testing.T) {
	h := newHost(t, map[string]string{"www-a": `command = ["/bin/sleep", "1000"]`})
	if _, err := New(h.d, Options{Addr: "0.0.0.0:9642"}); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("0.0.0.0 without auth: %v", err)
	}
	if _, err := New(h.d, Options{Addr: "[::]:9642"}); err == nil {
		t.Fatal("[::] without auth accepted")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ts := h.serve(Options{Addr: "0.0.0.0:9642", BasicUser: "ops", BasicHash: string(hash)})
	for _, u := range []string{"/", "/api/status", "/static/app.js", "/service/www-a"} {
		code, _ := get(t, ts.URL+u)
		if code != 401 {
			t.Errorf("GET %s without auth on a remote bind: %d, want 401", u, code)
		}
	}
	for _, pw := range []string{"pw", "wrong"} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/status", nil)
		req.SetBasicAuth("ops", pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[string]int{"pw": 200, "wrong": 401}[pw]; resp.StatusCode != want {
			t.Errorf("basic auth %q: %d, want %d", pw, resp.StatusCode, want)
		}
	}
}

// The tail starts with the file's last lines and follows it across a
// rename (logrotate's create) and a truncation (copytruncate).
func TestLogTailFollowsRotation(t *testing.T) {
	h := newHost(t, map[string]string{"www-a": `command = ["/bin/sleep", "1000"]`})
	h.waitRunning("www-a")
	ts := h.serve(Options{})
	log := paths.Log(h.root, "www-a")
	var b strings.Builder
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&b, "old %d\n", i)
	}
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ch := follow(t, ts.URL+"/api/logs/www-a?file=out")
	first := waitFor(t, ch, 2*time.Second, "the first lines", func(e sseEvent) bool { return e.name == "lines" })
	lines := strings.Split(first.data, "\n")
	if len(lines) != tailLines || lines[0] != "old 51" || lines[len(lines)-1] != "old 150" {
		t.Fatalf("tail started with %d lines %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}
	appendTo(t, log, "after 1\n")
	waitFor(t, ch, 2*time.Second, "an appended line", func(e sseEvent) bool { return e.data == "after 1" })
	// rename rotation: the rest of the old file, then the new one
	appendTo(t, log, "last of old\n")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, log, "first of new\n")
	got := ""
	waitFor(t, ch, 3*time.Second, "the new file's line", func(e sseEvent) bool {
		got += e.data + "\n"
		return strings.Contains(got, "first of new")
	})
	if !strings.Contains(got, "last of old") {
		t.Errorf("the old file's last line was lost across the rename: %q", got)
	}
	// copytruncate
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the tail see the shorter file before it grows again
	appendTo(t, log, "after truncate\n")
	waitFor(t, ch, 3*time.Second, "a line after truncation", func(e sseEvent) bool { return strings.Contains(e.data, "after truncate") })
}

func TestPolicyBasicAuth(t *testing.T) {
	// The policy parses [http]; this checks the dashboard reads what
	// policy gives: a good hash authenticates, a bad one never loads.
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	h := newHost(t, map[string]string{"www-a": `command = ["/bin/sleep", "1000"]`})
	s, err := New(h.d, Options{Addr: "127.0.0.1:0", BasicUser: "ops", BasicHash: string(hash)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("ops", "pw")
	if !s.authed(req) || !s.authed(req) { // the second from the cache
		t.Error("good basic auth refused")
	}
	req.SetBasicAuth("ops", "pw2")
	if s.authed(req) {
		t.Error("wrong password accepted after a good one was cached")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestTraceKeepsSpikesAndFailures(t *testing.T) {
	t1 := time.Now()
	t0 := t1.Add(-time.Hour)
	tr := newTrace(t0, t1, 60)
	few := newTrace(t0, t1, 60)
	for i := 0; i < 360; i++ {
		v, bad := 1.0, i == 200
		if i == 100 {
			v = 50
		}
		tr.add(t0.Add(time.Duration(i)*10*time.Second), v, bad)
		if i < 10 {
			few.add(t0.Add(time.Duration(i)*time.Minute), v, bad)
		}
	}
	tr.add(t0.Add(-time.Second), 99, false) // outside: ignored
	if len(tr.pts) > 61 || len(tr.pts) < 55 || tr.count != 360 {
		t.Fatalf("%d points from %d, want about 60 from 360", len(tr.pts), tr.count)
	}
	spike, failed := false, false
	for _, p := range tr.pts {
		spike = spike || p.v == 50
		failed = failed || p.bad
	}
	if !spike || !failed || tr.top != 50 {
		t.Errorf("spike kept %v, failure kept %v, top %v", spike, failed, tr.top)
	}
	if len(few.pts) != 10 {
		t.Errorf("points a bucket apart were folded to %d", len(few.pts))
	}
}
