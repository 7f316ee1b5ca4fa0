// Package test drives the built upkeep binary the way an operator does:
// real daemons, real services, real signals, on a temp root.
package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"upkeep/internal/proc"
)

// bin is built with -race, so the daemon's own goroutines (a SIGHUP
// reload beside the control server, the sinks, the checks) are
// race-checked by every test that drives it; checkRaces fails a test whose
// daemon or CLI reported one. plainBin is the build users get
// (CGO_ENABLED=0, no race detector), for the figures the detector's shadow
// memory and slowdown would swamp.
var bin, plainBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upkeep-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "upkeep")
	plainBin = filepath.Join(dir, "upkeep-plain")
	for _, b := range []struct {
		out, cgo, why string
		flags         []string
	}{
		// -race needs cgo and a C compiler (gcc; .ci/run installs it).
		// osusergo and netgo keep the Go resolvers the static build has:
		// with libc's, a user lookup goes through NSS (nss_systemd waits
		// about a second for a userdb that is not there in a container).
		{bin, "CGO_ENABLED=1", " (-race needs cgo and gcc: apt-get install gcc)", []string{"-race", "-tags", "osusergo,netgo"}},
		{plainBin, "CGO_ENABLED=0", "", nil},
	} {
		cmd := exec.Command("go", append(append([]string{"build"}, b.flags...), "-o", b.out, "../cmd/upkeep")...)
		cmd.Env = append(os.Environ(), b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %v%s: %v\n%s", b.flags, b.why, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// A race-built program that exits with more than one thread sleeps
	// atexit_sleep_ms (1 s by default) first, so that late reports get
	// out: every provision, doctor and deploy the tests run would cost a
	// second. 50 ms keeps the reports and the suite's time.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=50"))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkRaces fails t when what (a daemon, a command) printed a report of
// the race detector on its stderr. The race-built binary also exits 66
// then, but a daemon's exit status is not always looked at.
func checkRaces(t *testing.T, what, stderr string) {
	t.Helper()
	if i := strings.Index(stderr, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("%s: the race detector found a data race:\n%s", what, stderr[i:])
	}
}

type status struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Error    string `json:"error"`
}

type host struct {
	t    *testing.T
	root string
	// daemonBin, when set, is the binary daemon runs instead of bin.
	daemonBin string
}

func newHost(t *testing.T) *host {
	h := &host{t: t, root: t.TempDir()}
	// Registered first, so it runs after every daemon of the test has been
	// stopped: a test that failed half way (a daemon that could not start
	// again after a crash, say) can leave a service's process behind, and
	// the next run's count of that marker would find it. Services run
	// beneath the root, so what still has its cwd there is ours.
	t.Cleanup(func() { sweep(t, h.root) })
	return h
}

// sweep SIGKILLs every process whose working directory is beneath root.
func sweep(t *testing.T, root string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || (cwd != root && !strings.HasPrefix(cwd, root+"/")) {
			continue
		}
		t.Logf("left behind: pid %d in %s; killed", pid, cwd)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// A daemon killed by the test leaves its cgroups (upkeep-<hash of
	// root>/<service>); the next daemon at this root would clear them, but
	// there is none.
	cg, err := proc.OpenCgroups(root)
	if err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, g := range cg.Existing() {
		g.Kill()
		for g.Remove() != nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	cg.Remove()
}

func (h *host) write(name, body string) {
	dir := filepath.Join(h.root, "var/www", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "service.toml"), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// daemon starts `upkeep daemon` (with args) and stops it (SIGTERM) at
// cleanup.
func (h *host) daemon(args ...string) *exec.Cmd {
	h.t.Helper()
	exe := bin
	if h.daemonBin != "" {
		exe = h.daemonBin
	}
	cmd := exec.Command(exe, append([]string{"--root", h.root, "daemon", "-q"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			h.t.Error("daemon did not stop on SIGTERM")
		}
		checkRaces(h.t, "upkeep daemon", stderr.String())
		if h.t.Failed() {
			h.t.Logf("daemon stderr:\n%s", stderr.String())
		}
	})
	return cmd
}

// cli runs upkeep with args and returns stdout, stderr and the exit code.
func (h *host) cli(args ...string) (string, string, int) {
	cmd := exec.Command(bin, append([]string{"--root", h.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	checkRaces(h.t, "upkeep "+strings.Join(args, " "), errb.String())
	return out.String(), errb.String(), code
}

func (h *host) status() map[string]status {
	out, _, code := h.cli("status", "--json")
	if !answeredCode(code) {
		return nil
	}
	var list []status
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		h.t.Fatalf("status --json: %v\n%s", err, out)
	}
	m := map[string]status{}
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

func (h *host) eventually(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *host) allRunning(names ...string) func() bool {
	return func() bool {
		st := h.status()
		for _, n := range names {
			if st[n].State != "running" {
				return false
			}
		}
		return true
	}
}

// instances counts live processes beneath root (their working directory)
// whose command line is exactly argv.
func instances(root string, argv ...string) int {
	want := strings.Join(argv, "\x00") + "\x00"
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || string(b) != want {
			continue
		}
		// Only this host's: another test binary running the same test at
		// the same time has the same markers beneath a root of its own.
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err != nil || !strings.HasPrefix(cwd+"/", root+"/") {
			continue
		}
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		s := string(st)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] != "Z" {
			n++
		}
	}
	return n
}

func TestDaemonKilledAndRestarted(t *testing.T) {
	h := newHost(t)
	names := []string{"service-a", "service-b", "service-c"}
	for i, n := range names {
		h.write(n, `command = ["/bin/sleep", "`+strconv.Itoa(7000+i)+`"]
ready_after = "0s"
`)
	}
	h.write("service-talk", `script = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done"
ready_after = "0s"
`)
	names = append(names, "service-talk")
	first := h.daemon()
	h.eventually(10*time.Second, "all running", h.allRunning(names...))
	before := h.status()
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()

	start := time.Now()
	h.daemon()
	var up time.Duration
	h.eventually(10*time.Second, "all running again", func() bool {
		for i := range 3 {
			if n := instances(h.root, "/bin/sleep", strconv.Itoa(7000+i)); n > 1 {
				t.Fatalf("service-%c runs %d times", 'a'+i, n)
			}
		}
		st := h.status()
		for _, n := range names {
			if st[n].State != "running" || st[n].Pid == before[n].Pid {
				return false
			}
		}
		up = time.Since(start)
		return true
	})
	t.Logf("all services running again %v after the new daemon was started", up)
	if up > 3*time.Second {
		t.Errorf("took %v to bring services back, want about 1s", up)
	}
	for i := range 3 {
		if n := instances(h.root, "/bin/sleep", strconv.Itoa(7000+i)); n != 1 {
			t.Errorf("service-%c runs %d times, want once", 'a'+i, n)
		}
	}
	for _, n := range names {
		if syscall.Kill(before[n].Pid, 0) == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(before[n].Pid) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("old %s pid %d still alive", n, before[n].Pid)
			}
		}
	}
	// The log goes on in the same file.
	log := filepath.Join(h.root, "var/log/service-talk.log")
	size := func() int64 { fi, _ := os.Stat(log); return fi.Size() }
	s0 := size()
	h.eventually(5*time.Second, "log growing", func() bool { return size() > s0 })
}

func TestSecondDaemonIsRefused(t *testing.T) {
	h := newHost(t)
	h.daemon()
	h.eventually(5*time.Second, "socket", func() bool { _, err := os.Stat(filepath.Join(h.root, "run/upkeep/upkeep.sock")); return err == nil })
	_, stderr, code := h.cli("daemon")
	if code == 0 || !strings.Contains(stderr, "another upkeep daemon") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("second daemon: code %d, stderr %q", code, stderr)
	}
}

func TestCLI(t *testing.T) {
	h := newHost(t)
	if _, stderr, code := h.cli("status"); code != 1 || !strings.Contains(stderr, "no daemon is running") {
		t.Errorf("status without daemon: %d %q", code, stderr)
	}
	h.write("www-web", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	h.write("service-manual", `command = ["/bin/sleep", "1000"]
autostart = false
`)
	h.daemon()
	h.eventually(10*time.Second, "www-web running", h.allRunning("www-web"))

	fi, err := os.Stat(filepath.Join(h.root, "run/upkeep/upkeep.sock"))
	// 0666: each request's peer is checked instead (docs/daemon.md, "Who may use it").
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v (%v), want 0666", fi.Mode().Perm(), err)
	}
	st := h.status()
	if st["service-manual"].State != "stopped" || st["www-web"].Pid == 0 {
		t.Errorf("status: %+v", st)
	}
	out, _, _ := h.cli("status")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "www-web") || !strings.Contains(out, "running") {
		t.Errorf("status table:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"status", "service-nope"}, 1, "unknown service"},
		{[]string{"start", "service-nope"}, 1, "unknown service"},
		{[]string{"start"}, 2, "missing service name"},
		{[]string{"stop", "../etc"}, 2, "service name"},
		{[]string{"signal", "www-web", "NOPE"}, 2, "unknown signal"},
		{[]string{"status", "--bogus"}, 2, "unknown flag"},
		{[]string{"signal", "service-manual", "HUP"}, 1, "not running"},
	} {
		_, stderr, code := h.cli(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("upkeep %v: exit %d stderr %q; want exit %d and one line with %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}

	if _, stderr, code := h.cli("start", "service-manual"); code != 0 {
		t.Fatalf("start: %d %s", code, stderr)
	}
	if s := h.status()["service-manual"]; s.State != "running" {
		t.Errorf("after start (which waits): %s", s.State)
	}
	pid := h.status()["www-web"].Pid
	if _, stderr, code := h.cli("restart", "www-web"); code != 0 {
		t.Fatalf("restart: %d %s", code, stderr)
	}
	if s := h.status()["www-web"]; s.State != "running" || s.Pid == pid {
		t.Errorf("after restart: %+v (old pid %d)", s, pid)
	}
	if _, stderr, code := h.cli("stop", "service-manual", "www-web"); code != 0 {
		t.Fatalf("stop: %d %s", code, stderr)
	}
	for _, n := range []string{"service-manual", "www-web"} {
		if s := h.status()[n]; s.State != "stopped" || s.Pid != 0 {
			t.Errorf("after stop: %+v", s)
		}
	}

	// reload: a new service appears and starts.
	h.write("api-new", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	out, stderr, code := h.cli("reload")
	if code != 0 || !strings.Contains(out, "added: api-new") {
		t.Errorf("reload: %d %q %q", code, out, stderr)
	}
	h.eventually(5*time.Second, "api-new running", h.allRunning("api-new"))
}

func TestValidate(t *testing.T) {
	h := newHost(t)
	h.write("www-ok", `command = ["/bin/true"]`)
	h.write("noprefix", `command = ["/bin/true"]`)
	h.write("service-bad", "command = [\"/bin/true\"]\n\n[stop]\ntimeout = 5\n")
	_, stderr, code := h.cli("validate")
	if code != 1 {
		t.Errorf("validate exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "service-bad/service.toml:4:11: stop.timeout:") {
		t.Errorf("no positioned error for service-bad:\n%s", stderr)
	}
	if !strings.Contains(stderr, "noprefix/service.toml: warning: name \"noprefix\"") {
		t.Errorf("no prefix warning:\n%s", stderr)
	}
	out, stderr, code := h.cli("validate", filepath.Join(h.root, "var/www/www-ok"))
	if code != 0 || !strings.Contains(out, "1 service(s) OK") {
		t.Errorf("validate www-ok: %d %q %q", code, out, stderr)
	}
	if _, _, code := h.cli("validate", "--strict", filepath.Join(h.root, "var/www/noprefix")); code != 1 {
		t.Errorf("--strict accepted a name without prefix")
	}
	out, _, code = h.cli("validate", "--print", filepath.Join(h.root, "var/www/www-ok/service.toml"))
	if code != 0 || !strings.Contains(out, `policy = "always"`) {
		t.Errorf("--print:\n%s", out)
	}
}

func TestSIGTERMStopsEverything(t *testing.T) {
	h := newHost(t)
	h.write("service-x", `script = "sleep 7100 & sleep 7101"
ready_after = "0s"
`)
	d := h.daemon()
	h.eventually(10*time.Second, "running", h.allRunning("service-x"))
	h.eventually(5*time.Second, "children", func() bool { return instances(h.root, "sleep", "7100") == 1 })
	d.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not exit")
	}
	if instances(h.root, "sleep", "7100")+instances(h.root, "sleep", "7101") != 0 {
		t.Error("service processes left after the daemon stopped")
	}
	if _, err := os.Stat(filepath.Join(h.root, "run/upkeep/upkeep.sock")); err == nil {
		t.Error("socket left behind")
	}
}

func TestSIGHUPReloads(t *testing.T) {
	h := newHost(t)
	h.write("service-one", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	d := h.daemon()
	h.eventually(10*time.Second, "service-one running", h.allRunning("service-one"))
	h.write("service-two", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	d.Process.Signal(syscall.SIGHUP)
	h.eventually(10*time.Second, "service-two started by SIGHUP", h.allRunning("service-one", "service-two"))
}

func TestEventsAndChecksInStatus(t *testing.T) {
	h := newHost(t)
	h.write("service-checked", `command = ["/bin/sleep", "1000"]
[[check]]
name = "alive"
type = "exec"
command = ["/bin/true"]
interval = "100ms"
`)
	h.daemon()
	h.eventually(10*time.Second, "running after its check passed", h.allRunning("service-checked"))
	out, _, code := h.cli("status", "service-checked")
	if code != 0 || !strings.Contains(out, "CHECK") || !regexpMatch(`service-checked\s+alive\s+exec\s+ok`, out) {
		t.Errorf("status with checks:\n%s", out)
	}
	out, _, code = h.cli("events", "service-checked")
	if code != 0 || !strings.Contains(out, "stopped -> starting") || !strings.Contains(out, "starting -> running") {
		t.Errorf("events:\n%s", out)
	}
	if _, stderr, code := h.cli("events", "service-nope"); code != 1 || !strings.Contains(stderr, "unknown service") {
		t.Errorf("events for an unknown service: %d %q", code, stderr)
	}

	follow := exec.Command(bin, "--root", h.root, "events", "-f", "--json", "service-checked")
	var buf syncBuffer
	follow.Stdout = &buf
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	h.eventually(5*time.Second, "backlog", func() bool { return strings.Contains(buf.String(), `"state":"running"`) })
	if _, stderr, code := h.cli("restart", "service-checked"); code != 0 {
		t.Fatal(stderr)
	}
	h.eventually(5*time.Second, "followed restart", func() bool { return strings.Contains(buf.String(), `"from":"running","state":"stopping"`) })
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// `upkeep rotate` through the daemon: the captured log moves to NAME.log.1
// (delaycompress keeps it plain), a line written after it lands in a new
// NAME.log, and an unknown service is an error with exit code 1.
func TestRotateThroughDaemon(t *testing.T) {
	h := newHost(t)
	h.write("service-talker", `script = "echo before; read x < rotated; echo after; sleep 1000"
directory = "/"
`)
	fifo := filepath.Join(h.root, "rotated")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	h.daemon()
	log := filepath.Join(h.root, "var/log/service-talker.log")
	h.eventually(10*time.Second, "the first line", func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "before\n"
	})
	out, errOut, code := h.cli("rotate", "service-talker")
	if code != 0 || !strings.Contains(out, "rotated to service-talker.log.1") {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(log + ".1"); err != nil || string(b) != "before\n" {
		t.Errorf("service-talker.log.1 = %q, %v", b, err)
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, "the line after the rotation in a new file", func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "after\n"
	})
	if _, errOut, code := h.cli("rotate", "service-nobody"); code != 1 || !strings.Contains(errOut, "service-nobody") {
		t.Errorf("rotate of an unknown service: exit %d, %q", code, errOut)
	}
	if _, _, code := h.cli("rotate"); code != 2 {
		t.Errorf("rotate without a name: exit %d, want 2", code)
	}
}

// `upkeep logs NAME --file PATH` reads a file the service declares
// ([[log.file]]), its rotated history included, without a daemon; any
// other path is refused.
func TestLogsOfADeclaredFile(t *testing.T) {
	h := newHost(t)
	h.write("www-web", `command = ["/bin/sleep", "1000"]
[log]
rotate = 3
compress = false
[[log.file]]
path = "/var/log/web/access.log"
`)
	dir := filepath.Join(h.root, "var/log/web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "access.log.1"), []byte("a1\na2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "access.log"), []byte("b1\nb2\nb3\n"), 0o644)
	for _, p := range []string{"/var/log/web/access.log", "var/log/web/access.log", filepath.Join(dir, "access.log")} {
		out, errOut, code := h.cli("logs", "www-web", "--file", p, "-n", "4")
		if code != 0 || out != "a2\nb1\nb2\nb3\n" {
			t.Errorf("logs --file %s: exit %d, %q %s", p, code, out, errOut)
		}
	}
	if _, errOut, code := h.cli("logs", "www-web", "--file", "/etc/passwd"); code != 2 || !strings.Contains(errOut, "not one of its files: /var/log/web/access.log") {
		t.Errorf("logs --file /etc/passwd: exit %d, %q", code, errOut)
	}
	if _, _, code := h.cli("logs", "www-web", "--file", "var/log/web/access.log", "--all"); code != 2 {
		t.Errorf("--file with --all: exit %d, want 2", code)
	}
	// A pattern: any file it stands for, not a rotated one.
	h.write("www-web", "command = [\"/bin/sleep\", \"1000\"]\n[log]\nrotate = 3\ncompress = false\n[[log.file]]\npath = \"/var/log/web/*.log\"\n")
	if out, errOut, code := h.cli("logs", "www-web", "--file", "/var/log/web/access.log", "-n", "4"); code != 0 || out != "a2\nb1\nb2\nb3\n" {
		t.Errorf("logs --file of a pattern's file: exit %d, %q %s", code, out, errOut)
	}
	if _, errOut, code := h.cli("logs", "www-web", "--file", "/var/log/web/access.log.1"); code != 2 || !strings.Contains(errOut, "not one of its files: /var/log/web/*.log") {
		t.Errorf("logs --file of a rotated file: exit %d, %q", code, errOut)
	}
	if _, errOut, code := h.cli("logs", "www-web", "--file", "/var/log/web/*.log"); code != 2 || !strings.Contains(errOut, "is a pattern; name one of its files: /var/log/web/access.log") {
		t.Errorf("logs --file of the pattern: exit %d, %q", code, errOut)
	}
}
