package health

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// Nothing here may use os/exec: proc's reaper owns wait4 for the test
// binary, as it does for the daemon.

// eventually polls cond every 10 ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

// collect reads events until last returns true for one (included) or the
// deadline passes.
func collect(t *testing.T, ch <-chan Event, within time.Duration, last func(Event) bool) []Event {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	var evs []Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
			if last(ev) {
				return evs
			}
		case <-deadline.C:
			t.Fatalf("timed out after %s; events so far:\n%s", within, dump(evs))
			return nil
		}
	}
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		name := "-"
		if ev.Check != nil {
			name = ev.Check.Name
		}
		b.WriteString("  " + ev.Kind.String() + " " + name + " ok=" + boolStr(ev.Result.OK) + " " + ev.Result.Message + "\n")
	}
	return b.String()
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// ranCount returns a stop condition: the n-th Ran event of check name.
func nthRan(name string, n int) func(Event) bool {
	seen := 0
	return func(ev Event) bool {
		if ev.Kind == Ran && ev.Check != nil && ev.Check.Name == name {
			seen++
		}
		return seen >= n
	}
}

// target is a fixed Target.
type target struct {
	pids    func() []int
	started time.Time
}

func (t *target) Pids() []int {
	if t.pids == nil {
		return nil
	}
	return t.pids()
}
func (t *target) Started() time.Time { return t.started }

// scriptedHTTP answers the n-th request (1-based) with status(n).
func scriptedHTTP(t *testing.T, status func(n int64) int) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := status(n.Add(1))
		w.WriteHeader(code)
		io.WriteString(w, "status "+http.StatusText(code)+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func httpCheck(name, url string, interval time.Duration, cycles, within int) spec.Check {
	return spec.Check{
		Name: name, Type: "http", URL: url, Method: "GET", Status: "200-399", StatusMin: 200, StatusMax: 399,
		Timeout: spec.Duration(2 * time.Second), Interval: spec.Duration(interval),
		Cycles: cycles, Within: within, Recover: 1, Then: "restart",
	}
}

// lineServer answers every line it reads with reply(line); it serves on
// network ("tcp" or "unix") at addr.
func lineServer(t *testing.T, network, addr string, reply func(string) string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					io.WriteString(c, reply(strings.TrimSpace(sc.Text())))
				}
			}()
		}
	}()
	return ln
}

func pong(line string) string {
	if line == "PING" {
		return "+PONG\r\n"
	}
	return "-ERR unknown command\r\n"
}

// hungServer accepts connections and never answers; open counts the
// connections it holds.
type hungServer struct {
	ln   net.Listener
	open atomic.Int64
	wg   sync.WaitGroup
}

func newHungServer(t *testing.T) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.open.Add(1)
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer h.open.Add(-1)
				defer c.Close()
				io.Copy(io.Discard, c) // until the client hangs up
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); h.wg.Wait() })
	return h
}

// spawn starts a shell command in its own group through the reaper and
// kills the group at cleanup.
func spawn(t *testing.T, script string) *proc.Process {
	t.Helper()
	return spawnArgv(t, 3, "/bin/sh", "-c", script)
}

// spawnArgv starts argv with files descriptors 0 to files-1 on /dev/null.
func spawnArgv(t *testing.T, files int, argv ...string) *proc.Process {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	fds := make([]uintptr, files)
	for i := range fds {
		fds[i] = devnull.Fd()
	}
	p, err := proc.NewReaper().Spawn(proc.Attr{Argv: argv, Files: fds, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.SignalGroup(p.Pid, syscall.SIGKILL)
		<-p.Done()
	})
	return p
}

// groupOf is a Target of the live members of p's process group.
func groupOf(p *proc.Process) *target {
	return &target{pids: func() []int { return proc.GroupMembers(p.Pid) }, started: time.Now()}
}
