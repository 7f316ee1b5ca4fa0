package boot

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/spec"
)

func svc(name, timeout string, deps ...string) *spec.Service {
	d, _ := time.ParseDuration(timeout)
	return &spec.Service{Name: name, DependsOn: deps, Stop: spec.Stop{Timeout: spec.Duration(d)}}
}

func TestLongestChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		svcs []*spec.Service
		want time.Duration
	}{
		{"none", nil, 0},
		{"parallel", []*spec.Service{svc("a", "3s"), svc("b", "9s")}, 9 * time.Second},
		{"chain", []*spec.Service{svc("db", "3s"), svc("api", "7s", "db"), svc("www", "1s", "api"), svc("solo", "10s")}, 11 * time.Second},
		{"diamond", []*spec.Service{svc("db", "2s"), svc("a", "5s", "db"), svc("b", "1s", "db"), svc("top", "1s", "a", "b")}, 8 * time.Second},
		{"unknown dependency", []*spec.Service{svc("a", "2s", "gone")}, 2 * time.Second},
		{"cycle", []*spec.Service{svc("a", "2s", "b"), svc("b", "3s", "a")}, 5 * time.Second},
	} {
		m := map[string]*spec.Service{}
		for _, s := range tc.svcs {
			m[s.Name] = s
		}
		if got := LongestChain(m); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCounts(t *testing.T) {
	st := func(s api.State, auto bool) api.Status { return api.Status{State: s, Autostart: auto} }
	for _, tc := range []struct {
		in      []api.Status
		settled bool
		status  string
	}{
		{nil, true, "0 running, 0 failed"},
		{[]api.Status{st(api.Running, true), st(api.Fatal, true), st(api.Stopped, false)}, true, "1 running, 1 failed"},
		{[]api.Status{st(api.Running, true), st(api.Starting, true)}, false, "1 running, 0 failed, 1 starting"},
		{[]api.Status{st(api.Stopped, true)}, false, "0 running, 0 failed"}, // not started yet
		{[]api.Status{st(api.Backoff, true), st(api.Starting, false)}, true, "0 running, 1 failed, 1 starting"},
	} {
		settled, status := Counts(tc.in)
		if settled != tc.settled || status != tc.status {
			t.Errorf("Counts(%v) = %v %q, want %v %q", tc.in, settled, status, tc.settled, tc.status)
		}
	}
}

func TestParseInit(t *testing.T) {
	for _, ok := range []string{"", "auto", "systemd", "sysv", "openrc", "none"} {
		if _, err := ParseInit(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if _, err := ParseInit("upstart"); err == nil || !strings.Contains(err.Error(), "--boot=upstart") {
		t.Errorf("upstart: %v", err)
	}
}

func TestSealed(t *testing.T) {
	f, err := Render(Systemd, Options{Binary: "/usr/bin/upkeep", StopTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !Sealed(f.Data) {
		t.Fatal("a rendered file is not sealed")
	}
	edited := strings.Replace(string(f.Data), "Restart=always", "Restart=no", 1)
	if Sealed([]byte(edited)) {
		t.Error("an edited file still counts as ours")
	}
	if Sealed([]byte("[Unit]\n")) {
		t.Error("a file without a checksum counts as ours")
	}
}

func FuzzSealed(f *testing.F) {
	f.Add("# upkeep-checksum: sha256:\n[Unit]\n")
	f.Add("no tag at all\n")
	f.Fuzz(func(t *testing.T, s string) {
		sealed := Seal([]byte(s))
		if strings.Contains(s, checksumTag) && !Sealed(sealed) {
			t.Errorf("Seal(%q) is not Sealed", s)
		}
		_ = Sealed([]byte(s)) // never panics
	})
}

func TestNotifierFromEnv(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "n")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", addr)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", "")
	n, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Watchdog != 1500*time.Millisecond {
		t.Errorf("watchdog interval %v, want half of 3 s", n.Watchdog)
	}
	if os.Getenv("NOTIFY_SOCKET") != "" || os.Getenv("WATCHDOG_USEC") != "" {
		t.Error("the environment was not unset")
	}
	if err := n.Send("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "READY=1" {
		t.Errorf("got %q %v", buf[:k], err)
	}
	for _, bad := range [][2]string{{"relative", ""}, {addr, "abc"}, {addr, "0"}} {
		t.Setenv("NOTIFY_SOCKET", bad[0])
		t.Setenv("WATCHDOG_USEC", bad[1])
		if n, err := FromEnv(); err == nil && bad[1] != "" || err == nil && bad[0] == "relative" {
			n.Close()
			t.Errorf("NOTIFY_SOCKET=%s WATCHDOG_USEC=%s accepted", bad[0], bad[1])
		}
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if n, err := FromEnv(); n != nil || err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v %v", n, err)
	}
	var none *Notifier
	if none.Send("READY=1") != nil || none.Close() != nil {
		t.Error("a nil notifier is not a no-op")
	}
}
