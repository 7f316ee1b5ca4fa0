package health

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

func probe(c spec.Check, tg Target, s *ProbeState) Result {
	if c.Name == "" {
		c.Name = c.Type
	}
	if c.Timeout == 0 {
		c.Timeout = spec.Duration(5 * time.Second)
	}
	return Probe(context.Background(), &c, tg, s)
}

func TestHTTPProbe(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprintf(w, "all good on %s", r.Host)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2<<20) + "needle"))
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer tls.Close()

	var s ProbeState
	defer s.Close()
	for _, tc := range []struct {
		name string
		c    spec.Check
		ok   bool
		msg  string
	}{
		{"ok", spec.Check{Type: "http", URL: srv.URL + "/ok"}, true, "HTTP 200"},
		{"body", spec.Check{Type: "http", URL: srv.URL + "/ok", Body: "all good"}, true, "HTTP 200"},
		{"host header", spec.Check{Type: "http", URL: srv.URL + "/ok", Host: "example.org", Body: "on example.org"}, true, "HTTP 200"},
		{"body missing", spec.Check{Type: "http", URL: srv.URL + "/ok", Body: "bad"}, false, `HTTP 200: body does not contain "bad"`},
		{"status", spec.Check{Type: "http", URL: srv.URL + "/missing", StatusMin: 200, StatusMax: 399}, false, "HTTP 404, want 200-399"},
		{"status accepted", spec.Check{Type: "http", URL: srv.URL + "/missing", StatusMin: 404, StatusMax: 404}, true, "HTTP 404"},
		{"redirect not followed", spec.Check{Type: "http", URL: srv.URL + "/moved"}, true, "HTTP 302"},
		{"head", spec.Check{Type: "http", Method: "HEAD", URL: srv.URL + "/ok"}, true, "HTTP 200"},
		{"only 1 MiB read", spec.Check{Type: "http", URL: srv.URL + "/big", Body: "needle"}, false, `HTTP 200: body does not contain "needle"`},
		{"tls unverified", spec.Check{Type: "http", URL: tls.URL}, true, "HTTP 200"},
	} {
		r := probe(tc.c, nil, &s)
		if r.OK != tc.ok || r.Message != tc.msg || r.Check != "http" || r.Latency <= 0 || r.Started.IsZero() {
			t.Errorf("%s: %+v, want ok=%v %q", tc.name, r, tc.ok, tc.msg)
		}
	}
	// Reading a body whole lets the next run reuse the connection.
	before := conns.Load()
	for range 5 {
		if r := probe(spec.Check{Type: "http", URL: srv.URL + "/ok"}, nil, &s); !r.OK {
			t.Fatal(r.Message)
		}
	}
	if n := conns.Load() - before; n > 1 {
		t.Errorf("5 runs opened %d connections, want at most 1", n)
	}

	// Nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r := probe(spec.Check{Type: "http", URL: "http://" + addr + "/"}, nil, nil)
	if r.OK || !strings.HasPrefix(r.Message, "dial tcp "+addr) || !strings.HasSuffix(r.Message, "connection refused") {
		t.Errorf("refused: %+v", r)
	}
}

func TestConnProbe(t *testing.T) {
	ln := lineServer(t, "tcp", "127.0.0.1:0", pong)
	sock := filepath.Join(t.TempDir(), "s.sock")
	lineServer(t, "unix", sock, pong)
	hung := newHungServer(t)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	addr := ln.Addr().String()
	for _, tc := range []struct {
		name string
		c    spec.Check
		ok   bool
		msg  string
	}{
		{"ping", spec.Check{Type: "tcp", Address: addr, Send: "PING\r\n", Expect: "+PONG"}, true, `reply "+PONG\r\n"`},
		{"connect only", spec.Check{Type: "tcp", Address: addr}, true, "connected to " + addr},
		{"wrong reply", spec.Check{Type: "tcp", Address: addr, Send: "HELLO\r\n", Expect: "+PONG"}, false, `reply "-`},
		{"unix ping", spec.Check{Type: "unix", Address: sock, Send: "PING\r\n", Expect: "+PONG"}, true, `reply "+PONG\r\n"`},
		{"unix wrong", spec.Check{Type: "unix", Address: sock, Send: "PONG\n", Expect: "+PONG"}, false, `reply "-`},
		{"no reply", spec.Check{Type: "tcp", Address: hung.ln.Addr().String(), Send: "PING\r\n", Expect: "+PONG", Timeout: spec.Duration(100 * time.Millisecond)}, false, "timeout after 100ms"},
		{"refused", spec.Check{Type: "tcp", Address: refused}, false, "dial tcp " + refused + ": connect: connection refused"},
	} {
		r := probe(tc.c, nil, nil)
		// A wrong reply may arrive in pieces: the message holds what was read.
		if r.OK != tc.ok || !strings.HasPrefix(r.Message, tc.msg) || !tc.ok && strings.HasPrefix(tc.msg, "reply") && !strings.HasSuffix(r.Message, `does not start with "+PONG"`) {
			t.Errorf("%s: %+v, want ok=%v %q", tc.name, r, tc.ok, tc.msg)
		}
	}
}

// testExec runs this package's exec checks and hooks as the test runs.
var testExec = Exec{Reaper: proc.NewReaper()}

func TestExecProbe(t *testing.T) {
	if r := probe(spec.Check{Type: "exec", Command: []string{"true"}}, nil, nil); r.OK || r.Message != errNoReaper.Error() {
		t.Errorf("exec check without a reaper: %+v", r)
	}
	st := NewProbeState("", testExec)
	ok := probe(spec.Check{Type: "exec", Command: []string{"/bin/sh", "-c", "read x; echo out; echo err >&2; exit 0"}}, nil, st)
	if !ok.OK || ok.Message != "exit 0" {
		t.Errorf("exit 0: %+v", ok)
	}
	bad := probe(spec.Check{Type: "exec", Command: []string{"sh", "-c", "exit 3"}}, nil, st)
	if bad.OK || bad.Message != "exit 3" {
		t.Errorf("exit 3: %+v", bad)
	}
	missing := probe(spec.Check{Type: "exec", Command: []string{"no-such-check-program"}}, nil, st)
	if missing.OK || !strings.Contains(missing.Message, "not found") {
		t.Errorf("missing program: %+v", missing)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	r := probe(spec.Check{Name: "script", Type: "exec", Command: []string{"/bin/sh", "-c", `env > "$1"`, "check", envFile}}, nil, NewProbeState("www-test", testExec))
	if env, _ := os.ReadFile(envFile); !r.OK || !strings.Contains(string(env), "UPKEEP_CHECK=script\n") || !strings.Contains(string(env), "UPKEEP_SERVICE=www-test\n") {
		t.Errorf("exec environment: %+v\n%s", r, env)
	}
	// At the timeout the command dies with everything in its group.
	pidFile := filepath.Join(t.TempDir(), "pid")
	const timeout = 500 * time.Millisecond
	slow := probe(spec.Check{Type: "exec", Timeout: spec.Duration(timeout),
		Command: []string{"/bin/sh", "-c", `echo $$ > "$1"; sleep 100 & sleep 100`, "check", pidFile}}, nil, st)
	if slow.OK || slow.Message != "timeout after 500ms" || slow.Latency < timeout || slow.Latency > timeout+2*time.Second {
		t.Errorf("slow: %+v", slow)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the check did not start within its timeout: %v", err)
	}
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	eventually(t, 5*time.Second, "the check's group to die", func() bool { return len(proc.GroupMembers(pgid)) == 0 })
}

func TestResourceProbes(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		// tail holds the whole 50 MB "line"; sleep never reads, so it stays held.
		p := spawn(t, "head -c 50000000 /dev/zero | tail | sleep 100")
		tg := groupOf(p)
		c := spec.Check{Type: "memory", Limit: 20 << 20}
		var r Result
		eventually(t, 10*time.Second, "rss above 20M", func() bool { r = probe(c, tg, nil); return !r.OK })
		if r.Value <= 20<<20 || !strings.HasPrefix(r.Message, "rss ") || !strings.HasSuffix(r.Message, "M > 20.0M") {
			t.Errorf("memory: %+v", r)
		}
		c.Limit = 1 << 40
		if r := probe(c, tg, nil); !r.OK || r.Value <= 20<<20 {
			t.Errorf("under a 1T limit: %+v", r)
		}
	})
	t.Run("children", func(t *testing.T) {
		p := spawn(t, "sleep 100 & sleep 100 & sleep 100 & wait")
		tg := groupOf(p)
		eventually(t, 5*time.Second, "four processes", func() bool { return len(tg.Pids()) == 4 })
		if r := probe(spec.Check{Type: "children", Limit: 2}, tg, nil); r.OK || r.Value != 3 || r.Message != "children 3 > 2" {
			t.Errorf("children over: %+v", r)
		}
		if r := probe(spec.Check{Type: "children", Limit: 3}, tg, nil); !r.OK || r.Message != "children 3" {
			t.Errorf("children at the limit: %+v", r)
		}
	})
	t.Run("fds", func(t *testing.T) {
		plain := spawnArgv(t, 3, "sleep", "100")
		more := spawnArgv(t, 6, "sleep", "100")
		count := func(pids ...int) float64 {
			return probe(spec.Check{Type: "fds", Limit: 1e9}, &target{pids: func() []int { return pids }}, nil).Value
		}
		// Descriptors the test binary inherited without close-on-exec
		// reach both children too, and Spawn returns at exec while the
		// loader still opens files: compare counts taken together, until
		// both processes have settled.
		both := &target{pids: func() []int { return []int{plain.Pid, more.Pid} }}
		var over, at Result
		var a, b float64
		eventually(t, 5*time.Second, "fds of 0-2 and 0-5 to add up", func() bool {
			a, b = count(plain.Pid), count(more.Pid)
			over = probe(spec.Check{Type: "fds", Limit: a + b - 1}, both, nil)
			at = probe(spec.Check{Type: "fds", Limit: a + b}, both, nil)
			return a >= 3 && b-a == 3 && over.Value == a+b && at.Value == a+b && count(plain.Pid) == a && count(more.Pid) == b
		})
		if over.OK || over.Message != fmt.Sprintf("fds %.0f > %.0f", a+b, a+b-1) {
			t.Errorf("fds: %+v", over)
		}
		if !at.OK || at.Message != fmt.Sprintf("fds %.0f", a+b) {
			t.Errorf("fds at the limit: %+v", at)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		busy := groupOf(spawn(t, "while :; do :; done"))
		idle := groupOf(spawn(t, "sleep 100"))
		c := spec.Check{Type: "cpu", Limit: 10}
		var sb, si ProbeState
		if r := probe(c, busy, &sb); !r.OK || r.Value != 0 || probe(c, idle, &si).Value != 0 {
			t.Errorf("first sample: %+v", r)
		}
		var r Result
		eventually(t, 10*time.Second, "the busy loop over 10%", func() bool { r = probe(c, busy, &sb); return !r.OK })
		if r.Value <= 10 || !strings.HasPrefix(r.Message, "cpu ") || !strings.HasSuffix(r.Message, "% > 10.0%") {
			t.Errorf("busy: %+v", r)
		}
		if r = probe(c, idle, &si); !r.OK || r.Value > 10 {
			t.Errorf("idle: %+v", r)
		}
	})
	t.Run("uptime", func(t *testing.T) {
		tg := &target{started: time.Now().Add(-2 * time.Hour)}
		r := probe(spec.Check{Type: "uptime", Limit: 3600}, tg, nil)
		if r.OK || r.Value < 7200 || r.Message != "uptime 2h0m0s > 1h0m0s" {
			t.Errorf("uptime: %+v", r)
		}
		if r := probe(spec.Check{Type: "uptime", Limit: 3 * 86400}, tg, nil); !r.OK {
			t.Errorf("uptime under: %+v", r)
		}
	})
	t.Run("no processes", func(t *testing.T) {
		if r := probe(spec.Check{Type: "memory", Limit: 1}, &target{}, nil); !r.OK || r.Message != "no processes" {
			t.Errorf("no processes: %+v", r)
		}
	})
}

// The memory check through a Monitor: a child above the limit fails it.
func TestMemoryCheckFails(t *testing.T) {
	p := spawn(t, "head -c 50000000 /dev/zero | tail | sleep 100")
	out := make(chan Event, 64)
	c := spec.Check{Name: "rss", Type: "memory", Max: "20M", Limit: 20 << 20, Timeout: spec.Duration(time.Second),
		Interval: spec.Duration(20 * time.Millisecond), Cycles: 2, Within: 2, Recover: 1, Then: "restart"}
	m := Start("www-test", []spec.Check{c}, groupOf(p), out)
	defer m.Stop()
	evs := collect(t, out, 10*time.Second, func(ev Event) bool { return ev.Kind == Failed })
	f := evs[len(evs)-1]
	if f.Streak != 2 || f.Result.Value <= 20<<20 || f.Check.Then != "restart" {
		t.Errorf("Failed = %+v", f)
	}
}

// A server that closes a kept-alive connection while it is idle (without
// saying so) costs the check nothing: the request goes again on a new one.
func TestHTTPProbeStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			buf := make([]byte, 4096)
			conn.Read(buf)
			conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			time.Sleep(20 * time.Millisecond)
			conn.Close()
		}
	}()
	var s ProbeState
	defer s.Close()
	c := spec.Check{Type: "http", URL: "http://" + ln.Addr().String() + "/", Body: "ok"}
	for i := range 3 {
		if r := probe(c, nil, &s); !r.OK || r.Message != "HTTP 200" {
			t.Fatalf("run %d: %+v", i, r)
		}
		time.Sleep(50 * time.Millisecond) // the server has closed by now
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d connections accepted, want 3 (one per run)", n)
	}
}
