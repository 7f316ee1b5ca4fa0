package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/proc"
)

const (
	passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n"
	group  = "root:x:0:\nupkeep:x:2000:alice\nupkeep-ro:x:2001:bob\nnogroup:x:65534:\n"
)

var (
	nobody = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	alice  = &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{2000}} // in upkeep, a supplementary group
	bob    = &syscall.Credential{Uid: 1001, Gid: 1001, Groups: []uint32{2001}} // in upkeep-ro
	carol  = &syscall.Credential{Uid: 1002, Gid: 2000, Groups: []uint32{}}     // upkeep as her own gid
)

func credHost(t *testing.T) *host {
	needRoot(t)
	h := newHost(t)
	h.write("etc/passwd", passwd)
	h.write("etc/group", group)
	acc, err := ResolveAccess(h.root, "upkeep", "upkeep-ro")
	if err != nil {
		t.Fatal(err)
	}
	h.service("www-a", `command = ["/bin/sleep", "1000"]`+"\nautostart = true\n")
	h.start(Options{Access: acc})
	eventually(t, 5*time.Second, "www-a running", func() bool { return h.status("www-a").State.String() == "running" })
	return h
}

var (
	getStatus = call{Method: "GET", Path: "/v1/status"}
	restartA  = call{Method: "POST", Path: "/v1/restart", Body: `{"names":["www-a"],"wait":true,"timeout":"10s"}`}
)

func errorOf(c call) string {
	var eb errorBody
	json.Unmarshal([]byte(c.Answer), &eb)
	return eb.Error
}

// TestPeerCredentials: real clients running as other users, with their
// groups set by the kernel (setgroups through syscall.Credential), against
// a real daemon. Root and admin-group members may act, read-group members
// only read, everyone else is refused with who they are and what is needed.
func TestPeerCredentials(t *testing.T) {
	h := credHost(t)
	pid := func() int { return h.status("www-a").Pid }

	t.Run("root", func(t *testing.T) {
		before := pid()
		got := asUser(t, h.sock, nil, getStatus, restartA)
		if got[0].Code != http.StatusOK || got[1].Code != http.StatusOK {
			t.Fatalf("root: %+v", got)
		}
		if pid() == before {
			t.Error("root's restart did not restart www-a")
		}
	})
	t.Run("nobody", func(t *testing.T) {
		before := pid()
		got := asUser(t, h.sock, nobody, getStatus, restartA)
		for i, want := range []string{
			`permission denied: uid 65534 (nobody) is not root or in group "upkeep" or "upkeep-ro"`,
			`permission denied: uid 65534 (nobody) is not root or in group "upkeep"`,
		} {
			if got[i].Code != http.StatusForbidden || errorOf(got[i]) != want {
				t.Errorf("%s %s as nobody: %d %q, want 403 %q", got[i].Method, got[i].Path, got[i].Code, errorOf(got[i]), want)
			}
		}
		if pid() != before {
			t.Error("nobody's restart restarted www-a")
		}
	})
	t.Run("read group", func(t *testing.T) {
		before := pid()
		got := asUser(t, h.sock, bob, getStatus, restartA, call{Method: "GET", Path: "/v1/history?name=www-a"}, call{Method: "GET", Path: "/v1/events"})
		if got[0].Code != http.StatusOK || !strings.Contains(got[0].Answer, `"www-a"`) {
			t.Errorf("status as bob: %+v", got[0])
		}
		want := `permission denied: uid 1001 (bob) may only read (group "upkeep-ro"); restart needs root or group "upkeep"`
		if got[1].Code != http.StatusForbidden || errorOf(got[1]) != want {
			t.Errorf("restart as bob: %d %q, want 403 %q", got[1].Code, errorOf(got[1]), want)
		}
		if got[2].Code != http.StatusOK || got[3].Code != http.StatusOK || !strings.Contains(got[3].Answer, `"www-a"`) {
			t.Errorf("history and events as bob: %+v", got[2:])
		}
		if pid() != before {
			t.Error("bob's restart restarted www-a")
		}
	})
	for name, cred := range map[string]*syscall.Credential{"admin group (supplementary)": alice, "admin group (gid)": carol} {
		t.Run(name, func(t *testing.T) {
			before := pid()
			got := asUser(t, h.sock, cred, restartA)
			if got[0].Code != http.StatusOK {
				t.Fatalf("restart as uid %d: %+v", cred.Uid, got[0])
			}
			if pid() == before {
				t.Error("the admin's restart did not restart www-a")
			}
		})
	}
}

// TestAccessWithoutGroups: an admin group that is not in etc/group lets
// only root in, and says so.
func TestAccessWithoutGroups(t *testing.T) {
	needRoot(t)
	h := newHost(t)
	h.write("etc/passwd", passwd)
	h.write("etc/group", "root:x:0:\n")
	acc, err := ResolveAccess(h.root, "upkeep", "")
	if err == nil || !strings.Contains(err.Error(), `control group "upkeep": not in `+filepath.Join(h.root, "etc/group")) {
		t.Errorf("ResolveAccess: %v", err)
	}
	h.start(Options{Access: acc})
	got := asUser(t, h.sock, alice, getStatus)
	if want := `permission denied: uid 1000 (alice) is not root`; got[0].Code != http.StatusForbidden || errorOf(got[0]) != want {
		t.Errorf("status as alice: %d %q, want 403 %q", got[0].Code, errorOf(got[0]), want)
	}
	if got := asUser(t, h.sock, nil, getStatus); got[0].Code != http.StatusOK {
		t.Errorf("status as root: %+v", got[0])
	}
}

// TestServiceProcessesKeptToTheirService: a service's own process, even
// running as root, reads only its own service and acts only on itself.
func TestServiceProcessesKeptToTheirService(t *testing.T) {
	needRoot(t)
	h := newHost(t)
	reqs, _ := json.Marshal([]call{
		{Method: "GET", Path: "/v1/status"},
		{Method: "GET", Path: "/v1/status?names=www-b"},
		{Method: "GET", Path: "/v1/events?service=www-b"},
		{Method: "GET", Path: "/v1/history?name=www-b"},
		{Method: "POST", Path: "/v1/restart", Body: `{"names":["www-b"]}`},
		{Method: "POST", Path: "/v1/stop", Body: `{"names":["www-a","www-b"]}`},
		{Method: "POST", Path: "/v1/reload", Body: `{}`},
		{Method: "POST", Path: "/v1/rotate", Body: `{"all":true}`},
		{Method: "POST", Path: "/v1/restart", Body: `{"names":["www-a"]}`},
	})
	marker := filepath.Join(h.root, "said")
	h.service("www-a", fmt.Sprintf(`command = [%q, "-test.run=^$"]
autostart = true
env = { UPKEEP_TEST_PEER = "1", UPKEEP_TEST_SOCK = %q, UPKEEP_TEST_REQS = %q, UPKEEP_TEST_ONCE = %q, UPKEEP_TEST_STAY = "1" }
[stop]
timeout = "1s"
`, peerBinary(t), h.sock, reqs, marker))
	h.service("www-b", "command = [\"/bin/sleep\", \"1000\"]\nautostart = true\n")
	h.start(Options{})
	var got []call
	eventually(t, 5*time.Second, "all nine answers in www-a's log", func() bool {
		b, _ := readFile(filepath.Join(h.root, "var/log/www-a.log"))
		got = parseCalls(t, b)
		return len(got) >= 9
	})
	var st []map[string]any
	if got[0].Code != http.StatusOK || json.Unmarshal([]byte(got[0].Answer), &st) != nil || len(st) != 1 || st[0]["name"] != "www-a" {
		t.Errorf("status from www-a: %d %s, want only www-a", got[0].Code, got[0].Answer)
	}
	for _, c := range got[1:8] {
		if c.Code != http.StatusForbidden || !strings.Contains(errorOf(c), `permission denied: a process of service "www-a" may only`) {
			t.Errorf("%s %s %s from www-a: %d %q, want 403", c.Method, c.Path, c.Body, c.Code, c.Answer)
		}
	}
	if c := got[8]; c.Code != http.StatusOK {
		t.Errorf("www-a restarting itself: %d %s", c.Code, c.Answer)
	}
	stops := func(name string) (n int) {
		for _, e := range h.d.Events(name) {
			if e.Kind == "state" && e.State == "stopping" {
				n++
			}
		}
		return n
	}
	eventually(t, 10*time.Second, "www-a restarted itself", func() bool { return stops("www-a") == 1 && h.status("www-a").State.String() == "running" })
	if n := stops("www-b"); n != 0 {
		t.Errorf("www-b stopped %d times", n)
	}
	if r := h.status("www-b").Restarts; r != 0 || h.status("www-b").State.String() != "running" {
		t.Errorf("www-b was touched: %+v", h.status("www-b"))
	}
}

// TestPeerThatChanged: the peer the kernel recorded at connect must still
// be there, as it was, when the request is judged. A process that connects
// as root and then becomes nobody is refused; so is a connection whose
// connecting process has exited (here handed to a shell that sends the
// request once its parent is gone): its pid could be anyone's by then.
func TestPeerThatChanged(t *testing.T) {
	h := credHost(t)
	run := func(trick string) string {
		out := filepath.Join(t.TempDir(), "out")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p, err := proc.NewReaper().Spawn(proc.Attr{
			Argv:     []string{peerBinary(t), "-test.run=^$"},
			Env:      []string{"UPKEEP_TEST_PEER=1", "UPKEEP_TEST_SOCK=" + h.sock, "UPKEEP_TEST_TRICK=" + trick, "PATH=/usr/bin:/bin"},
			Dir:      "/",
			Files:    []uintptr{0, f.Fd(), 2},
			CgroupFD: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		var b []byte
		eventually(t, 10*time.Second, trick+": an answer", func() bool {
			b, _ = os.ReadFile(out)
			return bytes.Contains(b, []byte("\r\n\r\n{"))
		})
		t.Logf("%s: %s", trick, b[bytes.Index(b, []byte("\r\n\r\n"))+4:])
		return string(b)
	}
	if got := run("setuid"); !strings.HasPrefix(got, "HTTP/1.1 403") || !strings.Contains(got, "connected as uid 0 and is uid 65534 now") {
		t.Errorf("a peer that changed its uid: %q", got)
	}
	if got := run("handoff"); !strings.HasPrefix(got, "HTTP/1.1 403") || !strings.Contains(got, "has exited") && !strings.Contains(got, "is gone") {
		t.Errorf("a connection whose peer has exited: %q", got)
	}
}

// TestPeerWithoutPeerPidfd: the same checks as on a kernel before 6.5,
// where the pidfd is opened by pid after the fact.
func TestPeerWithoutPeerPidfd(t *testing.T) {
	noPeerPidfd.Store(true)
	t.Cleanup(func() { noPeerPidfd.Store(false) })
	h := credHost(t)
	if got := asUser(t, h.sock, nil, getStatus); got[0].Code != http.StatusOK {
		t.Errorf("root: %+v", got[0])
	}
	if got := asUser(t, h.sock, nobody, getStatus); got[0].Code != http.StatusForbidden {
		t.Errorf("nobody: %+v", got[0])
	}
	if got := asUser(t, h.sock, bob, getStatus, restartA); got[0].Code != http.StatusOK || got[1].Code != http.StatusForbidden {
		t.Errorf("read group: %+v", got)
	}
}

// TestStartedAfter: the fallback's test of a pid's process being newer
// than the connection.
func TestStartedAfter(t *testing.T) {
	t0 := time.Now()
	if startedAfter(os.Getpid(), t0) {
		t.Error("the test process started after now?")
	}
	for time.Since(t0) < 50*time.Millisecond {
		time.Sleep(5 * time.Millisecond) // /proc's start times are in 10 ms ticks: be clearly later
	}
	p, err := proc.NewReaper().Spawn(proc.Attr{Argv: []string{"/bin/sleep", "1000"}, Files: []uintptr{0, 1, 2}, CgroupFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(p.Pid, syscall.SIGKILL); <-p.Done() }()
	if !startedAfter(p.Pid, t0) {
		t.Errorf("pid %d, started 50 ms after t0, is not newer", p.Pid)
	}
	if startedAfter(p.Pid, time.Now()) {
		t.Errorf("pid %d is newer than now", p.Pid)
	}
	if !startedAfter(1<<30, t0) {
		t.Error("a pid that does not exist is not refused")
	}
}
