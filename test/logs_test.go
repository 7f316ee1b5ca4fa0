package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shortLine is `upkeep logs`'s default line: capture time (UTC, ms),
// service, stream, text.
var shortLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([a-z0-9._-]+)\[(out|err)\]: (.*)$`)

// TestLogsInterleaved: a service writing to stdout and stderr in turn has
// its lines shown in the order written (50 ms apart: two pipes are drained
// by two goroutines, so the order is the capture order, exact to the
// index's millisecond), each with its capture time and
// stream, through the daemon; the filters and formats; bad flags exit 2.
func TestLogsInterleaved(t *testing.T) {
	h := newHost(t)
	h.write("www-mix", `script = """
i=0
while [ $i -lt 10 ]; do
  echo "out $i"
  sleep 0.05
  echo "err $i" >&2
  sleep 0.05
  i=$((i+1))
done
echo done
sleep 1000
"""
ready_after = "0s"
`)
	h.write("api-two", `script = "echo two-a; sleep 0.01; echo two-b >&2; exec sleep 1000"
ready_after = "0s"
`)
	h.daemon()
	h.eventually(10*time.Second, "both running", h.allRunning("www-mix", "api-two"))
	h.eventually(10*time.Second, "www-mix's last line", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.root, "var/log/www-mix.log"))
		return bytes.HasSuffix(b, []byte("done\n"))
	})
	out, errOut, code := h.cli("logs", "www-mix", "-n", "-1")
	if code != 0 || errOut != "" {
		t.Fatalf("logs: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 21 {
		t.Fatalf("%d lines, want 21:\n%s", len(lines), out)
	}
	var prev time.Time
	for i, l := range lines {
		m := shortLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q is not time service[stream]: text", i, l)
		}
		at, _ := time.Parse(time.RFC3339Nano, m[1])
		if at.Before(prev) || time.Since(at) > time.Minute {
			t.Fatalf("line %d at %v after %v", i, at, prev)
		}
		prev = at
		want := fmt.Sprintf("www-mix[out]: out %d", i/2)
		if i%2 == 1 {
			want = fmt.Sprintf("www-mix[err]: err %d", i/2)
		}
		if i == 20 {
			want = "www-mix[out]: done"
		}
		if !strings.HasSuffix(l, want) {
			t.Fatalf("line %d is %q, want …%q (the order written):\n%s", i, l, want, out)
		}
	}
	if out, _, code := h.cli("logs", "www-mix", "-n", "3", "-o", "cat"); code != 0 || out != "out 9\nerr 9\ndone\n" {
		t.Errorf("-n 3 -o cat: exit %d, %q", code, out)
	}
	if out, _, code := h.cli("logs", "www-mix", "--stderr", "--grep", `^err [3-5]$`, "-o", "cat"); code != 0 || out != "err 3\nerr 4\nerr 5\n" {
		t.Errorf("--stderr --grep: exit %d, %q", code, out)
	}
	out, _, code = h.cli("logs", "www-mix", "-n", "2", "-o", "json")
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("-o json: %q: %v", l, err)
		}
		got = append(got, m)
	}
	if code != 0 || len(got) != 2 || got[0]["stream"] != "err" || got[0]["line"] != "err 9" || got[1]["exact"] != true || got[1]["service"] != "www-mix" {
		t.Errorf("-o json: exit %d, %v", code, got)
	}
	// --since/--until by capture time, as shown (to the millisecond,
	// both ends included): lines 4 to 8.
	from := shortLine.FindStringSubmatch(lines[4])[1]
	to := shortLine.FindStringSubmatch(lines[8])[1]
	out, _, code = h.cli("logs", "www-mix", "--since", from, "--until", to, "-o", "cat")
	if code != 0 || out != "out 2\nerr 2\nout 3\nerr 3\nout 4\n" {
		t.Errorf("--since %s --until %s: exit %d:\n%s", from, to, code, out)
	}
	if out, _, code := h.cli("logs", "www-mix", "--since", "1h", "-o", "cat"); code != 0 || strings.Count(out, "\n") != 21 {
		t.Errorf("--since 1h: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
	if out, _, code := h.cli("logs", "www-mix", "--until", "1h"); code != 0 || out != "" {
		t.Errorf("--until 1h: exit %d, %q", code, out)
	}
	// No name: every service, merged.
	out, _, code = h.cli("logs", "-n", "-1", "-o", "json")
	services := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		services[fmt.Sprint(m["service"], "/", m["stream"])]++
	}
	if code != 0 || services["www-mix/out"] != 11 || services["www-mix/err"] != 10 || services["api-two/out"] != 1 || services["api-two/err"] != 1 {
		t.Errorf("logs with no name: exit %d, %v", code, services)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"logs", "www-mix", "-n", "abc"}, `invalid value "abc" for -n: not a number`},
		{[]string{"logs", "www-mix", "--since", "soon"}, "--since: want a time like"},
		{[]string{"logs", "www-mix", "-o", "xml"}, "-o: want short, json or cat"},
		{[]string{"logs", "www-mix", "--grep", "("}, "--grep"},
		{[]string{"logs", "www-mix", "--stderr", "--stdout"}, "exclude each other"},
		{[]string{"logs", "../x"}, "service name"},
	} {
		if _, errOut, code := h.cli(tc.args...); code != 2 || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("upkeep %v: exit %d, %q; want 2 and one line with %q", tc.args, code, errOut, tc.msg)
		}
	}
	if _, errOut, code := h.cli("logs", "www-ghost"); code != 1 || !strings.Contains(errOut, "www-ghost: no logs under") {
		t.Errorf("logs www-ghost: exit %d, %q", code, errOut)
	}
}

// TestLogsFollowThroughDaemon: -f through the socket prints the lines a
// service writes after it started, from both streams, until interrupted.
func TestLogsFollowThroughDaemon(t *testing.T) {
	h := newHost(t)
	h.write("www-tick", `script = """
i=0
while true; do echo "tick $i"; echo "tock $i" >&2; i=$((i+1)); sleep 0.05; done
"""
ready_after = "0s"
`)
	h.daemon()
	h.eventually(10*time.Second, "running", h.allRunning("www-tick"))
	cmd := exec.Command(bin, "--root", h.root, "logs", "www-tick", "-f", "-n", "0", "-o", "cat")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	h.eventually(10*time.Second, "followed ticks and tocks", func() bool {
		s := out.String()
		return strings.Count(s, "tick") >= 3 && strings.Count(s, "tock") >= 3
	})
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f after SIGINT: %v, stderr %q", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("logs -f did not end on SIGINT")
	}
	if errb.String() != "" {
		t.Errorf("stderr %q", errb.String())
	}
}

// TestLogsWithoutDaemon: with no daemon the files are read directly, and
// stderr says so, once.
func TestLogsWithoutDaemon(t *testing.T) {
	h := newHost(t)
	dir := filepath.Join(h.root, "var/log")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "www-old.log"), []byte("a\nb\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "www-old.error.log"), []byte("c\n"), 0o644)
	out, errOut, code := h.cli("logs", "www-old", "-o", "cat", "--stdout")
	if code != 0 || out != "a\nb\n" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no daemon answers") || !strings.Contains(errOut, "reading the files") {
		t.Errorf("logs without daemon: exit %d, %q, stderr %q", code, out, errOut)
	}
}

// TestLogsGovernedBySocketGroups: when the daemon runs, the logs come
// through its socket: a member of the read group reads logs the files'
// permissions would refuse them, and a user in neither group gets the
// refusal status gets.
func TestLogsGovernedBySocketGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the CLI as other users")
	}
	h := newHost(t)
	os.Chmod(h.root, 0o755)
	os.Chmod(filepath.Dir(h.root), 0o755)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	pub := filepath.Join(dir, "upkeep")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, b, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(rel, body string) {
		p := filepath.Join(h.root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n")
	write("etc/group", "root:x:0:\nops:x:2000:\nwatchers:x:2001:\n")
	write("etc/upkeep/policy.toml", "[control]\ngroup = \"ops\"\nread_group = \"watchers\"\n")
	h.write("www-a", "script = \"echo secret-out; echo secret-err >&2; exec sleep 1000\"\nready_after = \"0s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "www-a running", h.allRunning("www-a"))
	h.eventually(10*time.Second, "www-a's lines", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.root, "var/log/www-a.error.log"))
		return len(b) > 0
	})
	for _, f := range []string{"www-a.log", "www-a.error.log"} {
		os.Chmod(filepath.Join(h.root, "var/log", f), 0o600) // only root may read the files
	}
	as := func(cred *syscall.Credential, args ...string) (string, string, int) {
		cmd := exec.Command(pub, append([]string{"--root", h.root}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		var outb, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outb, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return outb.String(), errb.String(), code
	}
	watcher := &syscall.Credential{Uid: 1001, Gid: 1001, Groups: []uint32{2001}}
	if out, errOut, code := as(watcher, "logs", "www-a", "-o", "cat"); code != 0 || out != "secret-out\nsecret-err\n" && out != "secret-err\nsecret-out\n" {
		t.Errorf("logs as a watcher: exit %d, %q, stderr %q", code, out, errOut)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	if out, errOut, code := as(nobody, "logs", "www-a"); code != 1 || out != "" || !strings.Contains(errOut, "permission denied: uid 65534 (nobody) is not root or in group \"ops\" or \"watchers\"") {
		t.Errorf("logs as nobody: exit %d, %q, stderr %q", code, out, errOut)
	}
	// Read directly, the files' permissions decide.
	if out, errOut, code := as(watcher, "logs", "www-a", "--direct"); code != 1 || out != "" || !strings.Contains(errOut, "permission denied") {
		t.Errorf("logs --direct as a watcher: exit %d, %q, stderr %q", code, out, errOut)
	}
}

// TestEventsFlags: events takes a service name, -n, --since and --json.
func TestEventsFlags(t *testing.T) {
	h := newHost(t)
	h.write("www-a", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.write("www-b", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "running", h.allRunning("www-a", "www-b"))
	for range 2 {
		if _, errOut, code := h.cli("restart", "www-b"); code != 0 {
			t.Fatalf("restart: %s", errOut)
		}
	}
	events := func(args ...string) []map[string]any {
		t.Helper()
		out, errOut, code := h.cli(append([]string{"events", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("events %v: exit %d, %s", args, code, errOut)
		}
		var es []map[string]any
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if l == "" {
				continue
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("events %v: %q: %v", args, l, err)
			}
			es = append(es, e)
		}
		return es
	}
	all := events()
	if len(all) < 6 {
		t.Fatalf("%d events: %v", len(all), all)
	}
	if last := events("-n", "2"); len(last) != 2 || fmt.Sprint(last) != fmt.Sprint(all[len(all)-2:]) {
		t.Errorf("-n 2: %v, want the last two of %v", last, all)
	}
	for _, e := range events("www-a") {
		if e["service"] != "www-a" {
			t.Errorf("events www-a: %v", e)
		}
	}
	mid := all[len(all)/2]["time"].(string)
	since := events("--since", mid)
	if len(since) == 0 || len(since) >= len(all) {
		t.Errorf("--since %s: %d of %d events", mid, len(since), len(all))
	}
	for _, e := range since {
		if e["time"].(string) < mid {
			t.Errorf("--since %s: %v", mid, e)
		}
	}
	if es := events("--since", "0s"); len(es) != 0 {
		t.Errorf("--since 0s: %v", es)
	}
	for _, args := range [][]string{{"events", "-n", "abc"}, {"events", "--since", "soon"}, {"events", "-n", "-5"}} {
		if _, errOut, code := h.cli(args...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("upkeep %v: exit %d, %q; want 2", args, code, errOut)
		}
	}
}

// TestLogsStalledReader: a client that asks the socket for a service's
// logs and stops reading holds neither the capture, which goes on writing
// the files, nor the daemon's memory.
func TestLogsStalledReader(t *testing.T) {
	h := newHost(t)
	h.write("www-flood", `script = "while :; do seq 1 20000; sleep 0.01; done"
ready_after = "0s"
`)
	d := h.daemon()
	h.eventually(10*time.Second, "running", h.allRunning("www-flood"))
	c, err := net.Dial("unix", filepath.Join(h.root, "run/upkeep/upkeep.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/logs?names=www-flood&n=-1&follow=1 HTTP/1.1\r\nHost: upkeep\r\n\r\n")
	logPath := filepath.Join(h.root, "var/log/www-flood.log")
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	rss := func() int64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				var kb int64
				fmt.Sscan(f[1], &kb)
				return kb << 10
			}
		}
		return 0
	}
	// The reader's socket fills once the daemon has sent what the kernel
	// buffers; from then on its handler waits in a write.
	start, rss0 := size(), rss()
	h.eventually(30*time.Second, "8 MB more captured while the reader stalls", func() bool { return size() > start+8<<20 })
	if grew := rss() - rss0; grew > 32<<20 {
		t.Errorf("the daemon's RSS grew by %d MB with a stalled log reader", grew>>20)
	}
	if out, _, code := h.cli("status", "www-flood"); code != 0 || !strings.Contains(out, "running") {
		t.Errorf("status while a reader stalls: exit %d\n%s", code, out)
	}
}
