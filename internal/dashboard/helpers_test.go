package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/supervise"
)

// host is a temp root with a real daemon supervising real processes.
type host struct {
	t    *testing.T
	root string
	d    *supervise.Daemon
}

func newHost(t *testing.T, services map[string]string) *host {
	t.Helper()
	h := newHostTB(t, services)
	h.t = t
	return h
}

func newHostTB(t testing.TB, services map[string]string) *host {
	t.Helper()
	h := &host{root: t.TempDir()}
	for name, body := range services {
		p := filepath.Join(h.root, "var/www", name, "service.toml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	d, err := supervise.New(h.root, slog.New(slog.NewTextHandler(out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	h.d = d
	return h
}

// serve serves the dashboard on a real loopback listener.
func (h *host) serve(o Options) *httptest.Server {
	h.t.Helper()
	o.Root = h.root
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := New(h.d, o)
	if err != nil {
		h.t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	h.t.Cleanup(func() { ts.CloseClientConnections(); ts.Close() })
	return ts
}

func (h *host) status(name string) api.Status {
	h.t.Helper()
	st, err := h.d.Status([]string{name})
	if err != nil || len(st) != 1 {
		h.t.Fatalf("status %s: %v", name, err)
	}
	return st[0]
}

func (h *host) waitRunning(names ...string) {
	h.t.Helper()
	for _, n := range names {
		eventually(h.t, 10*time.Second, n+" running", func() bool { return h.status(n).State == api.Running })
	}
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// okServer answers /ok on a loopback port for the services' checks.
func okServer(t *testing.T) string { return okServerB(t) }

func okServerB(t testing.TB) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(ts.Close)
	return ts.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, body := get(t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// follow reads server-sent events from url until the test ends.
func follow(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	ch := make(chan sseEvent, 256)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(l, "event: "):
				ev.name = l[len("event: "):]
			case strings.HasPrefix(l, "data: "):
				data = append(data, l[len("data: "):])
			}
		}
	}()
	return ch
}

// waitFor returns the first event from ch that ok accepts.
func waitFor(t *testing.T, ch <-chan sseEvent, within time.Duration, what string, ok func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended before %s", what)
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("not within %s: %s", within, what)
		}
	}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
