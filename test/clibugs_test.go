package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The "Bugs found" of issue 15, each through the built binary.

// depends_on = ["ghost"] is one error at the entry in validate, in reload
// and at daemon start, with or without a cycle on the host; the daemon
// keeps the service stopped with the reason in status.
func TestUnknownDependency(t *testing.T) {
	h := newHost(t)
	h.write("service-db", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.write("www-app", "command = [\"/bin/sleep\", \"1001\"]\ndepends_on = [\"service-db\", \"ghost\"]\n")
	file := filepath.Join(h.root, "var/www/www-app/service.toml")
	want := file + `:2:29: depends_on: unknown service "ghost" (no var/www/ghost/service.toml)`
	_, stderr, code := h.cli("validate")
	if code != 1 || !strings.Contains(stderr, want+"\n") {
		t.Errorf("validate: exit %d, want 1 and %q:\n%s", code, want, stderr)
	}
	h.daemon()
	h.eventually(10*time.Second, "service-db running", h.allRunning("service-db"))
	st := h.status()
	if s := st["www-app"]; s.State != "stopped" || !strings.Contains(s.Error, want) {
		t.Errorf("www-app at daemon start: %+v, want stopped with %q", s, want)
	}
	out, _, _ := h.cli("status", "www-app")
	if !strings.Contains(out, "definition problems") || !strings.Contains(out, `unknown service "ghost"`) {
		t.Errorf("status www-app does not say why it is stopped:\n%s", out)
	}
	if instances(h.root, "/bin/sleep", "1001") != 0 {
		t.Error("www-app runs despite its unknown dependency")
	}
	if _, stderr, code := h.cli("start", "www-app"); code != 1 || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "www-app: definition is broken, so it is kept stopped: "+want) {
		t.Errorf("start www-app: exit %d, %q", code, stderr)
	}
	// A typo, found at reload: named, with the one it was meant to be.
	h.write("www-typo", "command = [\"/bin/sleep\", \"1002\"]\ndepends_on = [\"service-bd\"]\n")
	out, stderr, code = h.cli("reload")
	if code != 1 || !strings.Contains(out, "broken: www-app www-typo") ||
		!strings.Contains(stderr, `:2:15: depends_on: unknown service "service-bd" (no var/www/service-bd/service.toml); did you mean "service-db"?`) {
		t.Errorf("reload: exit %d\n%s%s", code, out, stderr)
	}
}

// user/group/groups are checked by validate: a warning for an account
// provision creates, an error for one it does not.
func TestValidateAccounts(t *testing.T) {
	h := newHost(t)
	h.write("www-user", "command = [\"/bin/true\"]\nuser = \"nosuchuser\"\n")
	out, stderr, code := h.cli("validate")
	if code != 0 || !strings.Contains(stderr, "www-user/service.toml:2:1: warning: user: user nosuchuser does not exist; `upkeep provision` will create it") {
		t.Errorf("validate of a user provision creates: exit %d\n%s%s", code, out, stderr)
	}
	h.write("www-user", "command = [\"/bin/true\"]\nuser = \"root\"\ngroups = [\"nosuchgroup\"]\n")
	if _, stderr, code := h.cli("validate"); code != 1 || !strings.Contains(stderr, "www-user/service.toml:3:1: groups: group nosuchgroup does not exist") {
		t.Errorf("validate of a missing supplementary group: exit %d\n%s", code, stderr)
	}
}

// Bad usage exits 2 everywhere, with one line in the operator's words.
func TestBadUsageExitsTwo(t *testing.T) {
	h := newHost(t)
	h.write("www-hello", "command = [\"/bin/sleep\", \"1000\"]\n")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"stauts"}, `unknown command "stauts"; did you mean "status"?`},
		{[]string{"xyzzy"}, `unknown command "xyzzy" (upkeep --help lists them)`},
		{[]string{"image", "ad", "x"}, `image: unknown command "ad"; did you mean "add"?`},
		{[]string{"image"}, `image: want a subcommand: add or list`},
		{[]string{"logs", "www-hello", "-n", "abc"}, `invalid value "abc" for -n: not a number`},
		{[]string{"deploy", "www-hello", "--timeout", "5"}, `invalid value "5" for --timeout: not a duration such as "500ms", "5s" or "1m"`},
		{[]string{"status", "--jsn"}, `status: unknown flag --jsn; did you mean --json?`},
		{[]string{"status", "--bogus"}, `status: unknown flag --bogus`},
		{[]string{"start"}, `start: missing service name`},
		{[]string{"signal", "www-hello"}, `signal: want NAME SIGNAL`},
		{[]string{"reload", "extra"}, `reload: too many arguments`},
		{[]string{"rollback", "a", "b"}, `rollback: want one service name`},
		{[]string{"events", "--retry"}, `events: --retry needs -f`},
		{[]string{"stop", "../etc"}, `service name "../etc"`},
	} {
		_, stderr, code := h.cli(tc.args...)
		if code != 2 || stderr != "upkeep: "+tc.msg+"\n" && !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("upkeep %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), code, stderr, tc.msg)
		}
	}
}

// TOML errors in the operator's words, all of a file's at once, sorted,
// with "did you mean" for keys; and for service names on the command line.
func TestDefinitionErrorsInOperatorsWords(t *testing.T) {
	h := newHost(t)
	h.write("www-bad", "# hand-written\nversion = \"1\"\ncommand = \"/bin/sleep 100\"\nready_after = 5\n[restart]\npolcy = \"always\"\n")
	file := filepath.Join(h.root, "var/www/www-bad/service.toml")
	_, stderr, code := h.cli("validate")
	want := file + `:3:11: command: must be a list of strings, e.g. ["/bin/sleep", "100"]` + "\n" +
		file + `:4:15: ready_after: must be a duration string such as "5s", not the number 5` + "\n" +
		file + `:6:1: restart.polcy: unknown key; did you mean "policy"?` + "\n" +
		"upkeep: 3 problem(s) found\n"
	if code != 1 || stderr != want {
		t.Errorf("validate: exit %d\n got:\n%s\nwant:\n%s", code, stderr, want)
	}

	h.write("www-bad", "command = [\"/bin/true\"]\n")
	h.write("www-hello", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "www-hello running", h.allRunning("www-hello"))
	for _, args := range [][]string{{"status", "www-helo"}, {"restart", "www-helo"}, {"events", "www-helo"}} {
		if _, stderr, code := h.cli(args...); code != 1 || stderr != "upkeep: unknown service \"www-helo\"; did you mean \"www-hello\"?\n" {
			t.Errorf("upkeep %s: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
	}
	// Commands that read the host rather than ask the daemon suggest too.
	for _, args := range [][]string{{"logs", "www-helo"}, {"rollback", "www-helo"}, {"export", "systemd", "www-helo", "--out", t.TempDir()}} {
		if _, stderr, code := h.cli(args...); code != 1 || !strings.HasSuffix(stderr, "; did you mean \"www-hello\"?\n") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("upkeep %s: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
	}
}

// events -f ends with "daemon stopped" and exit 0 when the daemon stops;
// with --retry it follows the next daemon, without repeating the backlog.
func TestEventsFollowOutlivesTheDaemon(t *testing.T) {
	h := newHost(t)
	h.write("www-hello", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	d := h.daemon()
	h.eventually(10*time.Second, "www-hello running", h.allRunning("www-hello"))

	plain := exec.Command(bin, "--root", h.root, "events", "-f")
	retry := exec.Command(bin, "--root", h.root, "events", "-f", "--retry")
	var plainOut, plainErr, retryOut, retryErr syncBuffer
	plain.Stdout, plain.Stderr = &plainOut, &plainErr
	retry.Stdout, retry.Stderr = &retryOut, &retryErr
	for _, c := range []*exec.Cmd{plain, retry} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { retry.Process.Kill(); retry.Wait() })
	h.eventually(5*time.Second, "the backlog followed", func() bool {
		return strings.Contains(plainOut.String(), "-> running") && strings.Contains(retryOut.String(), "-> running")
	})
	d.Process.Signal(syscall.SIGTERM)
	plainDone := make(chan error, 1)
	go func() { plainDone <- plain.Wait() }()
	select {
	case err := <-plainDone:
		if err != nil || plainErr.String() != "upkeep: daemon stopped\n" {
			t.Errorf("events -f when the daemon stopped: %v, stderr %q", err, plainErr.String())
		}
	case <-time.After(30 * time.Second):
		plain.Process.Kill()
		t.Fatal("events -f did not end with the daemon")
	}
	d.Wait()
	h.eventually(10*time.Second, "--retry says it waits", func() bool {
		return strings.Contains(retryErr.String(), "daemon stopped; waiting for it to come back (--retry)")
	})
	before := strings.Count(retryOut.String(), "-> running")
	h.daemon()
	h.eventually(15*time.Second, "--retry follows the new daemon", func() bool {
		return strings.Count(retryOut.String(), "-> running") == before+1
	})
	if retry.ProcessState != nil {
		t.Error("events -f --retry ended")
	}
}

// A check that fails once while its service comes up, then passes, shows
// no FAILURES: the start grace does not count.
func TestHealthyStartShowsNoCheckFailures(t *testing.T) {
	h := newHost(t)
	h.write("www-slow", `script = "sleep 0.3; touch up; exec sleep 1000"
[[check]]
name = "up"
type = "exec"
command = ["/bin/test", "-f", "up"]
interval = "50ms"
`)
	h.daemon()
	h.eventually(10*time.Second, "www-slow running", h.allRunning("www-slow"))
	out, _, code := h.cli("status", "--json", "www-slow")
	var st []struct {
		Checks []struct {
			Passes   int `json:"passes"`
			Failures int `json:"failures"`
			Last     struct {
				OK bool `json:"ok"`
			} `json:"last"`
		} `json:"checks"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || len(st[0].Checks) != 1 {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	if c := st[0].Checks[0]; c.Failures != 0 || c.Passes < 1 {
		t.Errorf("after a healthy start: %+v, want no failures", c)
	}
	table, _, _ := h.cli("status", "www-slow")
	if !regexpMatch(`www-slow\s+up\s+exec\s+ok\s+\S+\s+0\s+\d+\s+0\s`, table) {
		t.Errorf("status table does not show FAILURES 0:\n%s", table)
	}
	// The first probe really failed: the marker was not there yet.
	if b, _ := os.ReadFile(filepath.Join(h.root, "var/log/upkeep.log")); !regexp.MustCompile(`check failed.*www-slow`).Match(b) {
		t.Logf("daemon log has no early check failure (the service was quick): the test proves less")
	}
}

// A deploy shows its progress on stderr and fails as soon as the service
// is judged failed — a check past its cycles, the start limit (fatal) —
// not at the end of its 60 s timeout, and rolls back with the reason.
// After the rollback RESTARTS and LAST EXIT are the old release's, not
// the failed one's.
func TestDeployFailsFast(t *testing.T) {
	h := newHostHome(t)
	h.must("provision")
	h.daemon()
	h.eventually(10*time.Second, "daemon socket", func() bool { return h.exists("run/upkeep/upkeep.sock") })
	h.image("www-ff", map[string]string{"service.toml": "version = \"1.0.0\"\ncommand = [\"/bin/sleep\", \"7301\"]\nready_after = \"0s\"\n"})
	h.image("www-ff", map[string]string{"service.toml": `version = "2.0.0"
command = ["/bin/sleep", "7302"]
[[check]]
type = "tcp"
address = "127.0.0.1:1"
interval = "100ms"
timeout = "100ms"
grace = "0s"
cycles = 2
`})
	h.image("www-ff", map[string]string{"service.toml": `version = "3.0.0"
script = "exit 3"
[restart]
backoff = "10ms"
limit = 3
`})
	h.must("deploy", "www-ff@1.0.0")

	for _, tc := range []struct {
		version, reason string
	}{
		{"2.0.0", `www-ff: check tcp-1 failed 2 of 2 cycles: .*connection refused; then restart`},
		{"3.0.0", `www-ff: fatal\W+exit 3\W+started 3 times within 1m0s`}, // the daemon's words or the event's: whichever is first
	} {
		start := time.Now()
		out, stderr, code := h.up("deploy", "www-ff@"+tc.version)
		took := time.Since(start)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if code != 1 || !regexp.MustCompile(`^upkeep: deploy of www-ff `+tc.version+` failed \(`+tc.reason+`\); rolled back to 1.0.0$`).MatchString(last) {
			t.Errorf("deploy %s: exit %d, last line %q\nstdout:\n%s\nstderr:\n%s", tc.version, code, last, out, stderr)
		}
		if took > 20*time.Second {
			t.Errorf("deploy %s took %v to fail: it waited for the timeout", tc.version, took)
		}
		t.Logf("deploy %s failed and rolled back in %v", tc.version, took)
		if !strings.Contains(stderr, "www-ff: stopped -> starting") && !strings.Contains(stderr, "-> starting (pid") {
			t.Errorf("deploy %s shows no state change:\n%s", tc.version, stderr)
		}
		if strings.Contains(stderr, "deadline exceeded") {
			t.Errorf("deploy %s: %s", tc.version, stderr)
		}
		s := h.status()["www-ff"]
		if s.State != "running" || !strings.HasSuffix(cmdline(s.Pid), "7301") {
			t.Errorf("after the rollback from %s: %+v (%s), want 1.0.0 running", tc.version, s, cmdline(s.Pid))
		}
		if s.Restarts != 0 || s.LastExit != "" {
			t.Errorf("after the rollback from %s: restarts %d, last exit %q; the failed release's, want 0 and none", tc.version, s.Restarts, s.LastExit)
		}
	}
	out, _, _ := h.cli("status", "www-ff")
	if !regexpMatch(`www-ff\s+running\s+\d+\s+\S+\s+0\s+-\s`, out) {
		t.Errorf("status after the rollbacks:\n%s", out)
	}
}
