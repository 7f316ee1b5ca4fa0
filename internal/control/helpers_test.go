package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/proc"
	"upkeep/internal/supervise"
)

// The test binary doubles as a control client run as another user (or as
// a service): with UPKEEP_TEST_PEER set it sends the requests of
// UPKEEP_TEST_REQS to the socket UPKEEP_TEST_SOCK, one connection each, and
// prints one JSON line per answer.
func TestMain(m *testing.M) {
	if os.Getenv("UPKEEP_TEST_PEER") != "" {
		os.Exit(peerMain())
	}
	code := m.Run()
	if peerBin != "" {
		os.RemoveAll(filepath.Dir(peerBin))
	}
	os.Exit(code)
}

// call is one request a peer makes, and its answer.
type call struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body,omitempty"`
	Code   int    `json:"code,omitempty"`
	Answer string `json:"answer,omitempty"`
}

func peerMain() int {
	once := os.Getenv("UPKEEP_TEST_ONCE")
	if once != "" {
		if _, err := os.Stat(once); err == nil {
			time.Sleep(time.Hour) // a service restarted: it has said its piece
			return 0
		}
		os.WriteFile(once, nil, 0o644)
	}
	if os.Getenv("UPKEEP_TEST_STAY") != "" {
		// As a service that restarts itself: live to print the answer;
		// the stop timeout's SIGKILL ends it.
		signal.Ignore(syscall.SIGTERM)
	}
	if n, _ := strconv.Atoi(os.Getenv("UPKEEP_TEST_HOLD")); n > 0 {
		// Hold n idle connections (the server may close some) until killed.
		held := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("unix", os.Getenv("UPKEEP_TEST_SOCK"))
			if err != nil {
				println("peer:", err.Error())
				return 2
			}
			held = append(held, c)
		}
		fmt.Printf("held %d\n", len(held))
		time.Sleep(time.Hour)
	}
	switch os.Getenv("UPKEEP_TEST_TRICK") {
	case "setuid":
		return peerSetuid()
	case "handoff":
		return peerHandoff()
	}
	var calls []call
	if err := json.Unmarshal([]byte(os.Getenv("UPKEEP_TEST_REQS")), &calls); err != nil {
		println("peer:", err.Error())
		return 2
	}
	c := rawClient(os.Getenv("UPKEEP_TEST_SOCK"))
	for _, cl := range calls {
		req, _ := http.NewRequest(cl.Method, "http://upkeep"+cl.Path, strings.NewReader(cl.Body))
		resp, err := c.Do(req)
		if err != nil {
			cl.Answer = "error: " + err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cl.Code, cl.Answer = resp.StatusCode, string(b)
		}
		line, _ := json.Marshal(cl)
		os.Stdout.Write(append(line, '\n'))
	}
	if os.Getenv("UPKEEP_TEST_STAY") != "" {
		time.Sleep(time.Hour) // as a service: stay up until stopped
	}
	return 0
}

// rawClient is an HTTP client for a unix socket, one connection a request.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

var (
	peerBinOnce sync.Once
	peerBin     string
)

// peerBinary is a copy of the test binary that any user may run (the go
// command builds it in a directory only root can enter).
func peerBinary(t *testing.T) string {
	peerBinOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "upkeep-control-peer-")
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755)
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		peerBin = filepath.Join(dir, "peer")
		if err := os.WriteFile(peerBin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	})
	return peerBin
}

// asUser runs the calls as a process with cred and returns the answers.
// It spawns through the daemon's reaper: the reaper waits for every child
// of the test binary, so os/exec's Wait would find none.
func asUser(t *testing.T, sock string, cred *syscall.Credential, calls ...call) []call {
	t.Helper()
	reqs, _ := json.Marshal(calls)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	p, err := proc.NewReaper().Spawn(proc.Attr{
		Argv:     []string{peerBinary(t), "-test.run=^$"},
		Env:      []string{"UPKEEP_TEST_PEER=1", "UPKEEP_TEST_SOCK=" + sock, "UPKEEP_TEST_REQS=" + string(reqs)},
		Dir:      "/",
		Files:    []uintptr{devnull.Fd(), out.Fd(), 2},
		Cred:     cred,
		CgroupFD: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		syscall.Kill(p.Pid, syscall.SIGKILL)
		t.Fatal("peer did not finish")
	}
	if e := p.Exit(); !e.Success() {
		t.Fatalf("peer: %s", e)
	}
	b, _ := os.ReadFile(out.Name())
	return parseCalls(t, b)
}

func parseCalls(t *testing.T, b []byte) []call {
	t.Helper()
	var got []call
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("peer output %q: %v", sc.Text(), err)
		}
		got = append(got, c)
	}
	return got
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs clients as other users and services in cgroups")
	}
}

// host is a temp root with a real supervise.Daemon behind a control
// socket served as the daemon command serves it.
type host struct {
	t    *testing.T
	root string
	sock string
	d    *supervise.Daemon
	srv  *Server
	// shut stops the server and the daemon before the test ends (and
	// again, harmlessly, at cleanup).
	shut func()
}

func newHost(t *testing.T) *host {
	t.Helper()
	root := t.TempDir()
	// Let other users reach the socket: t.TempDir makes root and its
	// parent 0700.
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Dir(root), 0o755)
	return &host{t: t, root: root, sock: filepath.Join(root, supervise.RunDir, "upkeep.sock")}
}

func (h *host) write(rel, body string) {
	h.t.Helper()
	p := filepath.Join(h.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) service(name, toml string) { h.write("var/www/"+name+"/service.toml", toml) }

// start runs the daemon and serves its socket with o until cleanup.
func (h *host) start(o Options) {
	h.t.Helper()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	d, err := supervise.New(h.root, log)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Load(); err != nil {
		h.t.Fatal(err)
	}
	l, err := Listen(h.sock)
	if err != nil {
		h.t.Fatal(err)
	}
	if o.Log == nil {
		o.Log = log
	}
	srv, err := NewServer(l, d, o)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran, served := make(chan struct{}), make(chan struct{})
	go func() { defer close(ran); d.Run(ctx) }()
	go func() { defer close(served); srv.Serve(ctx) }()
	h.d, h.srv = d, srv
	h.shut = func() {
		cancel()
		<-served
		<-ran
	}
	h.t.Cleanup(h.shut)
}

func (h *host) status(name string) api.Status {
	h.t.Helper()
	st, err := h.d.Status([]string{name})
	if err != nil || len(st) != 1 {
		h.t.Fatalf("status %s: %v", name, err)
	}
	return st[0]
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

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// peerSetuid connects as who it was started as, then becomes nobody and
// only then sends its request: the uid it connected with is not its own any
// more. It prints the raw answer.
func peerSetuid() int {
	c, err := net.Dial("unix", os.Getenv("UPKEEP_TEST_SOCK"))
	if err != nil {
		println("peer:", err.Error())
		return 2
	}
	if err := syscall.Setgroups(nil); err != nil {
		println("peer:", err.Error())
		return 2
	}
	if err := syscall.Setgid(65534); err != nil {
		println("peer:", err.Error())
		return 2
	}
	if err := syscall.Setuid(65534); err != nil {
		println("peer:", err.Error())
		return 2
	}
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: upkeep\r\nConnection: close\r\n\r\n")
	io.Copy(os.Stdout, c)
	return 0
}

// peerHandoff connects, hands the connection to a shell and exits; the
// shell waits until this process is gone, then sends a request on the
// connection and prints the raw answer. The process that connected is
// dead when the daemon looks at it.
func peerHandoff() int {
	c, err := net.Dial("unix", os.Getenv("UPKEEP_TEST_SOCK"))
	if err != nil {
		println("peer:", err.Error())
		return 2
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		println("peer:", err.Error())
		return 2
	}
	sh := exec.Command("/bin/sh", "-c", `while kill -0 `+strconv.Itoa(os.Getpid())+` 2>/dev/null; do sleep 0.01; done
printf 'GET /v1/status HTTP/1.1\r\nHost: upkeep\r\nConnection: close\r\n\r\n' >&3
cat <&3`)
	sh.ExtraFiles = []*os.File{f}
	sh.Stdout = os.Stdout
	if err := sh.Start(); err != nil {
		println("peer:", err.Error())
		return 2
	}
	return 0
}
