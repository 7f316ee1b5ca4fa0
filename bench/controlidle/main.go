// Command controlidle measures the control socket under idle connections:
// it starts `upkeep daemon` on a temp root with a few services, opens N
// connections that send nothing (as a flood of clients that connect and
// sit), and while they are held times `status` requests and reads the
// daemon's descriptors and RSS from /proc. Everything stays on the temp
// root's unix socket; the daemon is stopped at the end.
//
//	go run ./bench/controlidle -bin /tmp/upkeep -n 0,1000,2000,5000
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"upkeep/internal/paths"
)

func main() {
	bin := flag.String("bin", "upkeep", "the upkeep binary (CGO_ENABLED=0 build)")
	ns := flag.String("n", "0,1000,2000,5000", "idle connections to hold, comma-separated")
	reqs := flag.Int("reqs", 200, "status requests timed per N")
	svcs := flag.Int("services", 10, "services the daemon runs")
	flag.Parse()
	if err := run(*bin, *ns, *reqs, *svcs); err != nil {
		fmt.Fprintln(os.Stderr, "controlidle:", err)
		os.Exit(1)
	}
}

func run(bin, ns string, reqs, svcs int) error {
	root, err := os.MkdirTemp("", "upkeep-controlidle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for i := range svcs {
		dir := paths.Service(root, fmt.Sprintf("www-%d", i))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "service.toml"), []byte("command = [\"/bin/sleep\", \"100000\"]\nautostart = true\n"), 0o644)
	}
	d := exec.Command(bin, "--root", root, "daemon", "-q")
	d.Stderr = os.Stderr
	if err := d.Start(); err != nil {
		return err
	}
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()
	sock := paths.Socket(root)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}, Timeout: 10 * time.Second}
	status := func() error {
		resp, err := client.Get("http://upkeep/v1/status")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status: %s", resp.Status)
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); status() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon did not answer")
		}
	}
	// The daemon hands its start-up burst back to the kernel a second after
	// it starts (supervise.settle): measure after that.
	time.Sleep(2 * time.Second)
	base, _ := fdsAndRSS(d.Process.Pid)
	fmt.Printf("%-8s %-9s %-9s %-9s %-8s %-8s %s\n", "idle", "held", "p50", "p99", "max", "fds", "rss")
	for _, f := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("unix", sock)
			if err != nil {
				return fmt.Errorf("dial %d: %w", len(conns), err)
			}
			conns = append(conns, c)
		}
		// Idle clients are dropped after ReadHeaderTimeout (5 s): time
		// within that window.
		var lat []time.Duration
		for range reqs {
			t0 := time.Now()
			if err := status(); err != nil {
				return fmt.Errorf("status with %d idle: %w", n, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		fds, rss := fdsAndRSS(d.Process.Pid)
		held := n - closedByServer(conns)
		fmt.Printf("%-8d %-9d %-9s %-9s %-8s %-8d %.1fM\n", n, held, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), fds, float64(rss)/(1<<20))
		for _, c := range conns {
			c.Close()
		}
		// The next N starts once the daemon has closed its ends.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if fds, _ := fdsAndRSS(d.Process.Pid); fds <= base+8 {
				break
			}
		}
	}
	return nil
}

// closedByServer counts connections the daemon has closed (evicted).
func closedByServer(conns []net.Conn) int {
	n := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !os.IsTimeout(err) {
			n++
		}
	}
	return n
}

func fdsAndRSS(pid int) (int, uint64) {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var rss uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	return len(es), rss
}
