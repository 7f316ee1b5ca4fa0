package control

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIdentify: what checking a request's peer costs (pidfd from the
// socket, /proc/PID/status, the poll), without the service lookup.
func BenchmarkIdentify(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "s")
	l, err := Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ll := newLimitListener(l.(*net.UnixListener), 16, 16, 0, time.Millisecond)
	c, err := net.Dial("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	conn, err := ll.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pc := conn.(*peerConn)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identify(pc, nil); err != nil {
			b.Fatal(err)
		}
	}
}
