package notify

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Message
		err  string
	}{
		{in: "READY=1", want: Message{Ready: true}},
		{in: "READY=1\nSTATUS=serving 3 clients\nMAINPID=4242\n", want: Message{Ready: true, Status: "serving 3 clients", HasStatus: true, MainPID: 4242}},
		{in: "WATCHDOG=1", want: Message{Watchdog: true}},
		{in: "WATCHDOG=trigger", want: Message{Trigger: true}},
		{in: "RELOADING=1\nMONOTONIC_USEC=123", want: Message{Reloading: true, Other: []string{"MONOTONIC_USEC"}}},
		{in: "STOPPING=1\n\n", want: Message{Stopping: true}},
		{in: "STATUS=", want: Message{HasStatus: true}},
		{in: "READY=0", want: Message{}},
		{in: "READY", err: `line "READY" is not KEY=VALUE`},
		{in: "=1", err: "is not KEY=VALUE"},
		{in: "MAINPID=abc", err: `MAINPID="abc" is not a process id`},
		{in: "MAINPID=1", err: "is not a process id"},
		{in: "ERRNO=-3", err: "is not an error number"},
		{in: "STATUS=a\x00b", err: "NUL"},
		{in: "STATUS=\xff", err: "not UTF-8"},
		{in: strings.Repeat("x", MaxMessage+1), err: "longer than"},
	} {
		got, err := Parse([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got.Ready != tc.want.Ready || got.Reloading != tc.want.Reloading || got.Stopping != tc.want.Stopping ||
			got.Watchdog != tc.want.Watchdog || got.Trigger != tc.want.Trigger || got.Status != tc.want.Status ||
			got.HasStatus != tc.want.HasStatus || got.MainPID != tc.want.MainPID || strings.Join(got.Other, ",") != strings.Join(tc.want.Other, ",") {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"READY=1", "READY=1\nSTATUS=ok\nMAINPID=77\n", "WATCHDOG=trigger", "ERRNO=2", "X", "STATUS=\xff", "BARRIER=1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if m.MainPID < 0 || m.MainPID == 1 || m.Errno < 0 {
			t.Fatalf("accepted %+v", m)
		}
		if !m.HasStatus && m.Status != "" {
			t.Fatalf("status without HasStatus: %+v", m)
		}
	})
}

// serve listens and collects datagrams on a channel.
func serve(t *testing.T, path string) (*Socket, <-chan Datagram) {
	t.Helper()
	s, err := Listen(path, "upkeep-test/"+filepath.Base(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Datagram, 16)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(func(d Datagram) { ch <- d }) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, ch
}

func next(t *testing.T, ch <-chan Datagram) Datagram {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram within 10s")
	}
	return Datagram{}
}

func TestSocketCredentials(t *testing.T) {
	s, ch := serve(t, filepath.Join(t.TempDir(), "notify", "api-x"))
	if fi, err := os.Stat(s.Addr()); err != nil || fi.Mode()&0o777 != 0o777 {
		t.Fatalf("socket %s: %v %v", s.Addr(), fi, err)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.Addr(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1\nSTATUS=up")); err != nil {
		t.Fatal(err)
	}
	d := next(t, ch)
	if d.Err != nil || !d.Msg.Ready || d.Msg.Status != "up" {
		t.Errorf("got %+v", d)
	}
	if d.From.Pid != os.Getpid() || d.From.Uid != uint32(os.Getuid()) {
		t.Errorf("sender %+v, want pid %d uid %d", d.From, os.Getpid(), os.Getuid())
	}
	if _, err := c.Write([]byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ch); d.Err == nil {
		t.Errorf("garbage accepted: %+v", d)
	}
}

// systemd-notify (Debian's, from package systemd) waits on a barrier by
// default: it exits only once the receiver has closed the descriptor it
// sent, so this also proves Serve closes them.
func TestSystemdNotify(t *testing.T) {
	bin, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify not installed (Debian package systemd)")
	}
	for _, long := range []bool{false, true} {
		dir := t.TempDir()
		if long { // past sun_path: an abstract socket
			dir = filepath.Join(dir, strings.Repeat("d", 100))
		}
		s, ch := serve(t, filepath.Join(dir, "api-x"))
		if long != strings.HasPrefix(s.Addr(), "@") {
			t.Fatalf("long %v: address %q", long, s.Addr())
		}
		cmd := exec.Command(bin, "--ready", "--status=warming up")
		cmd.Env = []string{"NOTIFY_SOCKET=" + s.Addr()}
		out := make(chan error, 1)
		go func() {
			b, err := cmd.CombinedOutput()
			if err != nil {
				err = &exitErr{err, string(b)}
			}
			out <- err
		}()
		d := next(t, ch)
		if d.Err != nil || !d.Msg.Ready || d.Msg.Status != "warming up" {
			t.Errorf("got %+v", d)
		}
		// The sender systemd-notify names is its parent (this test) or itself.
		if d.From.Pid != os.Getpid() && d.From.Pid != cmd.Process.Pid {
			t.Errorf("sender pid %d, neither the test (%d) nor systemd-notify (%d)", d.From.Pid, os.Getpid(), cmd.Process.Pid)
		}
		select {
		case err := <-out:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("systemd-notify did not exit: its barrier was not released")
		}
	}
}

type exitErr struct {
	err error
	out string
}

func (e *exitErr) Error() string { return e.err.Error() + ": " + e.out }
