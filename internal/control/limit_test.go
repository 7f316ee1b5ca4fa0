package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/proc"
)

// self lets the test's own user in when the tests do not run as root.
func self() Access { return Access{Self: uint32(os.Geteuid())} }

const (
	crasher = `command = ["/bin/sh", "-c", "sleep 0.05; exit 1"]
autostart = true
[restart]
policy = "always"
backoff = "10ms"
max_backoff = "20ms"
limit = 100000
window = "1s"
`
	sleeper = "command = [\"/bin/sleep\", \"1000\"]\nautostart = true\n"
)

// dialIdle opens n connections that send nothing and closes them at cleanup.
func dialIdle(t *testing.T, sock string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

func openFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

func (h *host) stops(name string) (n int) {
	for _, e := range h.d.Events(name) {
		if e.Kind == "state" && e.State == "stopping" {
			n++
		}
	}
	return n
}

// TestIdleConnectionsDoNotStopSupervision: 2,500 clients connect and sit
// idle; status still answers and a crashing service is still restarted.
func TestIdleConnectionsDoNotStopSupervision(t *testing.T) {
	const n = 2500
	h := newHost(t)
	h.service("www-crash", crasher)
	h.service("www-ok", sleeper)
	// Idle clients are dropped after ReadHeaderTimeout: long enough here
	// to hold them all however slowly a loaded machine dials them.
	h.start(Options{Access: self(), ReadHeaderTimeout: time.Minute})
	eventually(t, 5*time.Second, "www-crash restarting", func() bool { return h.status("www-crash").Restarts > 0 })
	fds0 := openFDs()
	dialIdle(t, h.sock, n)
	eventually(t, 10*time.Second, fmt.Sprintf("%d connections admitted", n), func() bool { open, _, _ := h.srv.Conns(); return open == n })
	r0 := h.status("www-crash").Restarts
	c := NewClient(h.sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	st, err := c.Status(ctx, nil)
	if err != nil || len(st) != 2 {
		t.Fatalf("status with %d idle connections: %v %v", n, st, err)
	}
	t.Logf("status with %d idle connections: %s; descriptors: %d more in the test process (both ends)", n, time.Since(t0), openFDs()-fds0)
	eventually(t, 10*time.Second, "www-crash restarted while the connections are held", func() bool { return h.status("www-crash").Restarts >= r0+3 })
	if err := c.Restart(ctx, []string{"www-ok"}, ActOptions{Wait: true}); err != nil {
		t.Errorf("restart with %d idle connections: %v", n, err)
	}
	if open, evicted, refused := h.srv.Conns(); evicted != 0 || refused != 0 {
		t.Errorf("under the cap: %d open, %d evicted, %d refused", open, evicted, refused)
	}
}

// TestConnectionCap: past MaxConns the oldest idle connections are closed
// to make room, so the count stays bounded and status still answers; when
// every slot is busy (event streams), a new connection waits AdmitWait and
// is closed.
func TestConnectionCap(t *testing.T) {
	const max = 64
	h := newHost(t)
	h.service("www-ok", sleeper)
	h.start(Options{Access: self(), MaxConns: max, AdmitWait: 50 * time.Millisecond})
	conns := dialIdle(t, h.sock, 300)
	c := NewClient(h.sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Status(ctx, nil); err != nil {
		t.Fatalf("status past the cap: %v", err)
	}
	open, evicted, _ := h.srv.Conns()
	if open > max || evicted < 300-max {
		t.Errorf("%d open (cap %d), %d evicted", open, max, evicted)
	}
	// The first connections were the oldest idle ones: closed by the server.
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("oldest idle connection: read %v, want it closed", err)
	}

	// Fill every slot with event streams: busy, so nothing can be evicted.
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	for range max {
		go c.Events(sctx, "", true, func(api.Event) {})
	}
	eventually(t, 10*time.Second, "every slot busy with a stream", func() bool {
		h.srv.l.mu.Lock()
		defer h.srv.l.mu.Unlock()
		busy := 0
		for pc := range h.srv.l.conns {
			if !pc.idle {
				busy++
			}
		}
		return busy == max
	})
	if _, err := rawClient(h.sock).Get("http://upkeep/v1/status"); err == nil {
		t.Error("status answered with every slot busy")
	}
	if _, _, refused := h.srv.Conns(); refused == 0 {
		t.Error("no connection refused with every slot busy")
	}
	stop()
	eventually(t, 10*time.Second, "status once the streams end", func() bool {
		_, err := c.Status(ctx, nil)
		return err == nil
	})
}

// TestPerUIDCap: one user's flood of connections (nobody's, from a real
// process) is held to PerUID, and root still gets in.
func TestPerUIDCap(t *testing.T) {
	needRoot(t)
	const perUID = 32
	h := newHost(t)
	h.service("www-ok", sleeper)
	h.start(Options{PerUID: perUID})
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := proc.NewReaper().Spawn(proc.Attr{
		Argv:     []string{peerBinary(t), "-test.run=^$"},
		Env:      []string{"UPKEEP_TEST_PEER=1", "UPKEEP_TEST_SOCK=" + h.sock, "UPKEEP_TEST_HOLD=300", "UPKEEP_TEST_REQS=[]"},
		Dir:      "/",
		Files:    []uintptr{devnull.Fd(), w.Fd(), 2},
		Cred:     nobody,
		CgroupFD: -1,
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(p.Pid, syscall.SIGKILL); <-p.Done() })
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held 300" {
		t.Fatalf("holder: %q %v", line, err)
	}
	eventually(t, 10*time.Second, "nobody held to the per-uid cap", func() bool {
		h.srv.l.mu.Lock()
		defer h.srv.l.mu.Unlock()
		return h.srv.l.byUID[nobody.Uid] == perUID
	})
	if got := asUser(t, h.sock, nil, getStatus); got[0].Code != http.StatusOK {
		t.Errorf("root's status during nobody's flood: %+v", got[0])
	}
}

// TestSlowClientsAreDropped: a header or a body trickled a byte at a time
// is cut at ReadHeaderTimeout or ReadTimeout, and the trickled request does
// nothing; meanwhile others are answered.
func TestSlowClientsAreDropped(t *testing.T) {
	h := newHost(t)
	h.service("www-ok", sleeper)
	h.start(Options{Access: self(), ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond})
	eventually(t, 5*time.Second, "www-ok running", func() bool { return h.status("www-ok").State == api.Running })
	for _, tc := range []struct {
		name, head, drip string
		answer           string // the status line expected before the close, if any
	}{
		{"header", "GET /v1/status HTTP/1.1\r\nHost: upkeep\r\n", "X-Slow: 1\r\n", ""},
		{"body", "POST /v1/restart HTTP/1.1\r\nHost: upkeep\r\nContent-Length: 10000\r\n\r\n", "{", "HTTP/1.1 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("unix", h.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := io.WriteString(c, tc.drip); err != nil {
							return
						}
					}
				}
			}()
			// Others are served while it trickles.
			if _, err := NewClient(h.sock).Status(context.Background(), nil); err != nil {
				t.Errorf("status during a slow client: %v", err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's bound, far past the server's
			got, err := io.ReadAll(c)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("the server kept a trickling client past its timeouts (read %q)", got)
			}
			if !strings.HasPrefix(string(got), tc.answer) {
				t.Errorf("answer %q, want %q…", got, tc.answer)
			}
		})
	}
	if n := h.stops("www-ok"); n != 0 {
		t.Errorf("the trickled restart stopped www-ok %d times", n)
	}
}

// TestOversizedBody: a 2 MiB body gets 413 and changes nothing.
func TestOversizedBody(t *testing.T) {
	h := newHost(t)
	h.service("www-ok", sleeper)
	h.start(Options{Access: self()})
	eventually(t, 5*time.Second, "www-ok running", func() bool { return h.status("www-ok").State == api.Running })
	body := `{"names":["www-ok"],"wait":false,"signal":"` + strings.Repeat("A", 2<<20) + `"}`
	for _, path := range []string{"/v1/restart", "/v1/signal", "/v1/status"} {
		c, err := net.Dial("unix", h.sock)
		if err != nil {
			t.Fatal(err)
		}
		method := "POST"
		if path == "/v1/status" {
			method = "GET"
		}
		go fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: upkeep\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "request body too large") {
			t.Errorf("%s %s with 2 MiB: %s %s", method, path, resp.Status, b)
		}
		c.Close()
	}
	if n := h.stops("www-ok"); n != 0 {
		t.Errorf("an oversized restart stopped www-ok %d times", n)
	}
	if _, err := NewClient(h.sock).Status(context.Background(), nil); err != nil {
		t.Errorf("status after: %v", err)
	}
}

// TestEventStreamOutlivesTimeouts: `events -f` keeps streaming past the
// read and idle timeouts (only each write has a deadline).
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	h := newHost(t)
	h.service("www-ok", sleeper)
	o := Options{Access: self(), ReadHeaderTimeout: 100 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond}
	h.start(o)
	eventually(t, 5*time.Second, "www-ok running", func() bool { return h.status("www-ok").State == api.Running })
	c := NewClient(h.sock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan api.Event, 100)
	ended := make(chan error, 1)
	go func() { ended <- c.Events(ctx, "www-ok", true, func(e api.Event) { got <- e }) }()
	// Let every timeout of the server pass several times over.
	select {
	case err := <-ended:
		t.Fatalf("stream ended early: %v", err)
	case <-time.After(5 * o.ReadTimeout):
	}
	for len(got) > 0 {
		<-got // the backlog
	}
	if err := c.Restart(context.Background(), []string{"www-ok"}, ActOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-got:
			if e.State == "running" {
				return
			}
		case err := <-ended:
			t.Fatalf("stream ended: %v", err)
		case <-deadline:
			t.Fatal("no event of the restart on a stream older than the timeouts")
		}
	}
}
