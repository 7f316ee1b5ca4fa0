package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// The operator's CLI, as systemctl users expect it: --all and patterns,
// one line per service, status's exit 3, is-active and is-failed,
// --version, completion, man pages and --help (golden), colour, progress
// on a terminal, the first run.

// goldenUpdate is -update (rewrite the golden files in testdata/). It is
// looked up rather than owned, so another file of the package may define
// the same flag.
func goldenUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

// answeredCode: status's exit when the daemon answered, 0 (all in their
// wanted state) or 3 (not).
func answeredCode(code int) bool { return code == 0 || code == 3 }

type fullStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Pid       int       `json:"pid"`
	Since     time.Time `json:"since"`
	StartedAt time.Time `json:"started_at"`
}

func (h *host) fullStatus() map[string]fullStatus {
	h.t.Helper()
	out, stderr, code := h.cli("status", "--json")
	if !answeredCode(code) {
		h.t.Fatalf("status --json: exit %d %s", code, stderr)
	}
	var list []fullStatus
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		h.t.Fatalf("status --json: %v\n%s", err, out)
	}
	m := map[string]fullStatus{}
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

// TestManyAtOnce: --all and patterns for start, stop, restart, status and
// rotate, acting in dependency order, with one line per service.
func TestManyAtOnce(t *testing.T) {
	h := newHost(t)
	sleeper := "command = [\"/bin/sleep\", \"1000\"]\nautostart = false\nready_after = \"0s\"\n"
	h.write("www-a", sleeper+"depends_on = [\"www-b\"]\n")
	h.write("www-b", sleeper)
	h.write("api-c", sleeper)
	h.daemon()
	h.eventually(10*time.Second, "the daemon answering", func() bool { _, _, code := h.cli("status"); return code == 0 })

	out, stderr, code := h.cli("start", "www-*")
	if code != 0 {
		t.Fatalf("start 'www-*': exit %d %s", code, stderr)
	}
	st := h.fullStatus()
	want := "www-b: running (pid " + itoa(st["www-b"].Pid) + ")\nwww-a: running (pid " + itoa(st["www-a"].Pid) + ")\n"
	if out != want || stderr != "" {
		t.Errorf("start 'www-*' printed %q (stderr %q), want %q: one line per service, dependencies first", out, stderr, want)
	}
	if st["api-c"].State != "stopped" {
		t.Errorf("api-c, which the pattern does not match, is %s", st["api-c"].State)
	}
	// www-a was spawned only once www-b ran.
	if a, b := st["www-a"].StartedAt, st["www-b"].Since; a.Before(b) {
		t.Errorf("www-a started at %v, before its dependency www-b ran (%v)", a, b)
	}

	out, _, code = h.cli("status", "www-*")
	if code != 0 || !strings.Contains(out, "www-a") || !strings.Contains(out, "www-b") || strings.Contains(out, "api-c") {
		t.Errorf("status 'www-*': exit %d\n%s", code, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("status to a pipe has escape codes: %q", out)
	}
	// api-c is stopped on purpose (autostart = false): in its wanted state.
	if _, stderr, code := h.cli("status"); code != 0 {
		t.Errorf("status with one service stopped on purpose: exit %d %s, want 0", code, stderr)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"start", "zz-*"}, 1, `no service matches "zz-*"`},
		{[]string{"status", "zz-*"}, 1, `no service matches "zz-*"`},
		{[]string{"rotate", "zz-*"}, 1, `no service matches "zz-*"`},
		{[]string{"stop", "www-["}, 2, `pattern "www-["`},
		{[]string{"stop", "www-nope"}, 1, "unknown service"},
		{[]string{"restart", "--all", "www-a"}, 2, "NAME or --all, not both"},
		{[]string{"stop"}, 2, "missing service name"},
	} {
		out, stderr, code := h.cli(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("upkeep %q: exit %d stderr %q; want exit %d and one line with %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if out != "" {
			t.Errorf("upkeep %q printed %q on stdout", tc.args, out)
		}
	}

	if out, stderr, code := h.cli("start", "--all", "-q"); code != 0 || out != "" {
		t.Errorf("start --all -q: exit %d stdout %q stderr %q, want silence", code, out, stderr)
	}
	if st := h.fullStatus(); st["api-c"].State != "running" {
		t.Errorf("after start --all: api-c %s", st["api-c"].State)
	}

	out, stderr, code = h.cli("rotate", "www-*")
	if code != 0 || !strings.Contains(out, "www-a") || strings.Contains(out, "api-c") {
		t.Errorf("rotate 'www-*': exit %d %s\n%s", code, stderr, out)
	}

	old := h.fullStatus()
	out, stderr, code = h.cli("restart", "www-?")
	st = h.fullStatus()
	if code != 0 || out != "www-b: running (pid "+itoa(st["www-b"].Pid)+")\nwww-a: running (pid "+itoa(st["www-a"].Pid)+")\n" {
		t.Errorf("restart 'www-?': exit %d %q %q", code, out, stderr)
	}
	if st["www-a"].Pid == old["www-a"].Pid || st["www-b"].Pid == old["www-b"].Pid || st["api-c"].Pid != old["api-c"].Pid {
		t.Errorf("restart 'www-?': pids %v, were %v; want www-a and www-b restarted, api-c left alone", st, old)
	}

	// A stop of a dependency stops its dependents first, and says so.
	out, stderr, code = h.cli("stop", "www-b")
	if code != 0 || out != "www-a: stopped\nwww-b: stopped\n" {
		t.Errorf("stop www-b: exit %d %q %q; want www-a (which depends on it) stopped first", code, out, stderr)
	}
	if _, stderr, code := h.cli("start", "-q", "www-a"); code != 0 {
		t.Fatalf("start www-a: %d %s", code, stderr)
	}
	out, stderr, code = h.cli("stop", "--all")
	if code != 0 {
		t.Fatalf("stop --all: exit %d %s", code, stderr)
	}
	// Dependents first: www-a before www-b.
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(lines, []string{"www-a: stopped", "www-b: stopped", "api-c: stopped"}) {
		t.Errorf("stop --all printed %q", out)
	}
	st = h.fullStatus()
	if a, b := st["www-a"].Since, st["www-b"].Since; b.Before(a) {
		t.Errorf("www-b stopped at %v, before www-a that depends on it (%v)", b, a)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStatusExitCodes: status exits 3 when a service is not in its
// wanted state, silently; is-active and is-failed answer scripts.
func TestStatusExitCodes(t *testing.T) {
	h := newHost(t)
	h.write("www-up", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.write("www-bad", "command = [\"/bin/false\"]\n[restart]\npolicy = \"never\"\n")
	h.write("service-off", "command = [\"/bin/sleep\", \"1000\"]\nautostart = false\n")
	h.daemon()
	h.eventually(10*time.Second, "www-up running, www-bad exited", func() bool {
		st := h.status()
		return st["www-up"].State == "running" && st["www-bad"].State == "exited"
	})
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // "" : not checked
	}{
		{[]string{"status", "www-up"}, 0, ""},
		{[]string{"status", "service-off"}, 0, ""},
		{[]string{"status", "www-bad"}, 3, ""},
		{[]string{"status"}, 3, ""},
		{[]string{"status", "--json", "www-bad"}, 3, ""},
		{[]string{"status", "--json", "www-up"}, 0, ""},
		{[]string{"is-active", "www-up"}, 0, "running\n"},
		{[]string{"is-active", "www-up", "service-off"}, 3, "running\nstopped\n"},
		{[]string{"is-active", "www-nope"}, 3, "unknown\n"},
		{[]string{"is-active", "-q", "www-bad"}, 3, "-"},
		{[]string{"is-active", "-q", "www-up"}, 0, "-"},
		{[]string{"is-failed", "www-bad"}, 0, "exited\n"},
		{[]string{"is-failed", "www-up", "www-bad"}, 0, "running\nexited\n"},
		{[]string{"is-failed", "www-up"}, 1, "running\n"},
		{[]string{"is-failed", "service-off"}, 1, "stopped\n"},
	} {
		out, stderr, code := h.cli(tc.args...)
		if code != tc.code || stderr != "" {
			t.Errorf("upkeep %q: exit %d stderr %q, want exit %d and nothing on stderr", tc.args, code, stderr, tc.code)
		}
		if tc.stdout == "-" && out != "" || tc.stdout != "" && tc.stdout != "-" && out != tc.stdout {
			t.Errorf("upkeep %q printed %q, want %q", tc.args, out, strings.TrimPrefix(tc.stdout, "-"))
		}
	}
	if _, stderr, code := h.cli("is-active"); code != 2 || !strings.Contains(stderr, "missing service name") {
		t.Errorf("is-active without a name: exit %d %q", code, stderr)
	}
}

// ptyCommand runs cmd with the files named in on (stdout, stderr) on one
// pseudo-terminal, and returns what the terminal received.
func ptyCommand(t *testing.T, cmd *exec.Cmd, stdout, stderr bool) (string, error) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	var pipe bytes.Buffer
	cmd.Stdout, cmd.Stderr = &pipe, &pipe
	if stdout {
		cmd.Stdout = tty
	}
	if stderr {
		cmd.Stderr = tty
	}
	if err := cmd.Start(); err != nil {
		tty.Close()
		t.Fatal(err)
	}
	tty.Close() // the child holds it now; EOF (EIO) on master once it exits
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, master); close(done) }()
	werr := cmd.Wait()
	<-done
	if pipe.Len() > 0 {
		t.Logf("%v, not on the terminal: %s", cmd.Args, pipe.String())
	}
	return got.String(), werr
}

// TestProgressOnTerminal: a stop waiting out its timeout counts down on
// stderr when stderr is a terminal, and prints nothing extra otherwise.
func TestProgressOnTerminal(t *testing.T) {
	h := newHost(t)
	h.write("api-slow", "script = \"trap '' TERM; while :; do sleep 0.1; done\"\nready_after = \"0s\"\n[stop]\ntimeout = \"2s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "api-slow running", h.allRunning("api-slow"))

	out, stderr, code := h.cli("stop", "api-slow")
	if code != 0 || out != "api-slow: stopped\n" || stderr != "" {
		t.Errorf("stop to pipes: exit %d stdout %q stderr %q; want one line and an empty stderr", code, out, stderr)
	}
	if _, stderr, code := h.cli("start", "api-slow"); code != 0 {
		t.Fatalf("start: %d %s", code, stderr)
	}
	got, err := ptyCommand(t, exec.Command(bin, "--root", h.root, "stop", "api-slow"), false, true)
	if err != nil {
		t.Fatalf("stop on a terminal: %v\n%q", err, got)
	}
	if !regexp.MustCompile(`waiting: api-slow stopping \(SIGKILL in [0-2]s\)`).MatchString(got) {
		t.Errorf("stop on a terminal showed no countdown: %q", got)
	}
	if !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("the progress line was not cleared at the end: %q", got)
	}
	if _, stderr, code := h.cli("start", "api-slow"); code != 0 {
		t.Fatalf("start: %d %s", code, stderr)
	}
	if got, err := ptyCommand(t, exec.Command(bin, "--root", h.root, "stop", "-q", "api-slow"), true, true); err != nil || got != "" {
		t.Errorf("stop -q on a terminal: %v %q, want nothing", err, got)
	}
}

// TestColour: state words are coloured on a terminal, not in a pipe
// (TestManyAtOnce) and not with NO_COLOR.
func TestColour(t *testing.T) {
	h := newHost(t)
	h.write("www-up", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "www-up running", h.allRunning("www-up"))
	status := func(env ...string) string {
		cmd := exec.Command(bin, "--root", h.root, "status")
		cmd.Env = append(os.Environ(), env...)
		got, err := ptyCommand(t, cmd, true, false)
		if err != nil {
			t.Fatalf("status on a terminal: %v %q", err, got)
		}
		return got
	}
	env := []string{"TERM=xterm"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "NO_COLOR=") {
			env = append(env, e)
		}
	}
	cmd := exec.Command(bin, "--root", h.root, "status")
	cmd.Env = env
	got, err := ptyCommand(t, cmd, true, false)
	if err != nil || !strings.Contains(got, "\x1b[32mrunning\x1b[0m") {
		t.Errorf("status on a terminal: %v; want running in green: %q", err, got)
	}
	// The columns line up as they do without colour.
	plain, _, _ := h.cli("status")
	stripped := strings.ReplaceAll(regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(got, ""), "\r\n", "\n")
	if strings.Fields(strings.Split(stripped, "\n")[1])[1] != "running" || len(strings.Split(stripped, "\n")[1]) != len(strings.Split(plain, "\n")[1]) {
		t.Errorf("coloured table does not line up:\n%s\nplain:\n%s", stripped, plain)
	}
	if got := status("NO_COLOR=1"); strings.Contains(got, "\x1b") {
		t.Errorf("NO_COLOR=1 and still escapes: %q", got)
	}
	if got := status("TERM=dumb"); strings.Contains(got, "\x1b") {
		t.Errorf("TERM=dumb and still escapes: %q", got)
	}

	// logs: the time dim and stderr's mark red on a terminal; plain in a
	// pipe and under NO_COLOR.
	h.write("www-err", "script = \"echo to-out; echo to-err >&2; exec sleep 1000\"\nready_after = \"0s\"\n")
	h.cli("reload")
	h.eventually(10*time.Second, "www-err's two lines", func() bool {
		out, _, _ := h.cli("logs", "www-err")
		return strings.Contains(out, "to-out") && strings.Contains(out, "to-err")
	})
	cmd = exec.Command(bin, "--root", h.root, "logs", "www-err")
	cmd.Env = env
	got, err = ptyCommand(t, cmd, true, false)
	if err != nil || !strings.Contains(got, "\x1b[31m[err]\x1b[0m: to-err") || !strings.Contains(got, "\x1b[2m") || strings.Contains(got, "\x1b[31m[out]") {
		t.Errorf("logs on a terminal: %v; want [err] red and times dim: %q", err, got)
	}
	if plain, _, _ := h.cli("logs", "www-err"); strings.Contains(plain, "\x1b") {
		t.Errorf("logs in a pipe has escapes: %q", plain)
	}
	cmd = exec.Command(bin, "--root", h.root, "logs", "www-err")
	cmd.Env = append(env, "NO_COLOR=1")
	if got, _ := ptyCommand(t, cmd, true, false); strings.Contains(got, "\x1b") {
		t.Errorf("logs with NO_COLOR=1 has escapes: %q", got)
	}
}

// TestVersion: --version names the version, the commit and Go's release.
func TestVersion(t *testing.T) {
	h := newHost(t)
	out, stderr, code := h.cli("--version")
	if code != 0 || !regexp.MustCompile(`^upkeep version \S+ \(commit \S+, (dirty, )?go1\.\S+, linux/\w+\)\n$`).MatchString(out) {
		t.Errorf("--version: exit %d %q %q", code, out, stderr)
	}
	if !strings.Contains(out, runtime.Version()+",") {
		t.Errorf("--version %q does not name %s, the Go it was built with", out, runtime.Version())
	}
	// A release build's version and commit, as the Makefile sets them.
	exe := filepath.Join(t.TempDir(), "upkeep")
	build := exec.Command("go", "build", "-ldflags", "-X main.buildVersion=1.2.3 -X main.buildCommit=0123456789ab-dirty", "-o", exe, "../cmd/upkeep")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := exec.Command(exe, "--version").Output()
	if want := "upkeep version 1.2.3 (commit 0123456789ab, dirty, " + runtime.Version() + ", linux/" + runtime.GOARCH + ")\n"; err != nil || string(b) != want {
		t.Errorf("release build --version: %v %q, want %q", err, b, want)
	}
}

// TestCompletion: the completion scripts, and what they offer, from the
// root's services with no daemon running.
func TestCompletion(t *testing.T) {
	h := newHost(t)
	for _, n := range []string{"www-hello", "api-app", "service-db"} {
		h.write(n, "command = [\"/bin/true\"]\n")
	}
	os.MkdirAll(filepath.Join(h.root, "var/www/.releases/www-hello"), 0o755)
	os.MkdirAll(filepath.Join(h.root, "var/www/not-a-service"), 0o755) // no service.toml
	complete := func(args ...string) []string {
		t.Helper()
		out, stderr, code := h.cli(append([]string{"__complete"}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %q: exit %d %s", args, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
			t.Fatalf("__complete %q: no directive: %q", args, out)
		}
		return lines[:len(lines)-1]
	}
	services := []string{"api-app", "service-db", "www-hello"}
	for _, cmd := range []string{"start", "stop", "restart", "status", "rotate", "is-active", "logs"} {
		if got := complete(cmd, ""); !slices.Equal(got, services) {
			t.Errorf("%s offers %q, want %q", cmd, got, services)
		}
	}
	if got := complete("stop", "www-hello", ""); !slices.Equal(got, []string{"api-app", "service-db"}) {
		t.Errorf("stop www-hello offers %q: a name already given again", got)
	}
	if got := complete("validate", ""); !slices.Equal(got, services) {
		t.Errorf("validate offers %q", got)
	}
	if got := complete("signal", ""); !slices.Equal(got, services) {
		t.Errorf("signal offers %q for its first argument", got)
	}
	if got := complete("signal", "www-hello", ""); !slices.Contains(got, "HUP") || !slices.Contains(got, "TERM") || !slices.Contains(got, "USR1") || slices.Contains(got, "www-hello") {
		t.Errorf("signal www-hello offers %q, want signal names", got)
	}
	if got := complete("export", ""); !slices.Equal(got, []string{"systemd", "kubernetes", "nomad"}) {
		t.Errorf("export offers %q, want its targets", got)
	}
	if got := complete("export", "systemd", ""); !slices.Equal(got, services) {
		t.Errorf("export systemd offers %q", got)
	}
	for shell, mark := range map[string]string{"bash": "__start_upkeep", "zsh": "#compdef upkeep", "fish": "complete -c upkeep"} {
		out, _, code := h.cli("completion", shell)
		if code != 0 || !strings.Contains(out, mark) {
			t.Errorf("completion %s: exit %d, no %q in the script", shell, code, mark)
		}
	}
	// bash itself, through the script: what a Tab after "upkeep start "
	// offers. Cobra's script needs the bash-completion package's helpers.
	const helpers = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(helpers); err != nil {
		t.Logf("not run through bash: no %s (apt-get install bash-completion)", helpers)
	} else if _, err := exec.LookPath("bash"); err == nil {
		script, _, _ := h.cli("completion", "bash")
		f := filepath.Join(t.TempDir(), "upkeep.bash")
		os.WriteFile(f, []byte(script), 0o644)
		sh := `source ` + helpers + `; source "$1"; PATH="$(dirname "$2"):$PATH"; COMP_WORDS=(upkeep --root "$3" start ""); COMP_CWORD=4; COMP_LINE="upkeep --root $3 start "; COMP_POINT=${#COMP_LINE}; __start_upkeep upkeep "" start; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "-c", sh, "bash", f, bin, h.root)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "www-hello") || !strings.Contains(string(out), "api-app") {
			t.Errorf("bash completion of start: %v\n%s", err, out)
		}
	}
}

// TestHelpAndManGolden: --help of every command and one man page, against
// testdata/ (go test ./test -run Golden -update rewrites them).
func TestHelpAndManGolden(t *testing.T) {
	env := []string{"HOME=/home/operator", "SOURCE_DATE_EPOCH=0", "PATH=" + os.Getenv("PATH")}
	dir := t.TempDir()
	// __man is in -tags man builds only (make man).
	manBin := filepath.Join(t.TempDir(), "upkeep-man")
	build := exec.Command("go", "build", "-tags", "man", "-o", manBin, "../cmd/upkeep")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags man: %v\n%s", err, b)
	}
	man := exec.Command(manBin, "__man", dir)
	man.Env = env
	if out, err := man.CombinedOutput(); err != nil {
		t.Fatalf("__man: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(pages) < 20 {
		t.Fatalf("__man wrote %d pages", len(pages))
	}
	golden := func(rel string, got []byte) {
		t.Helper()
		p := filepath.Join("testdata", rel)
		if goldenUpdate() {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%v (go test ./test -run Golden -update writes it)", err)
			return
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the output (go test ./test -run Golden -update rewrites it):\n--- got\n%s\n--- want\n%s", p, got, want)
		}
	}
	status, _ := os.ReadFile(filepath.Join(dir, "upkeep-status.1"))
	if !bytes.Contains(status, []byte(".SH NAME\nupkeep-status")) {
		t.Errorf("upkeep-status.1 is not a man page:\n%s", status)
	}
	golden("man/upkeep-status.1", status)
	var names []string
	for _, p := range pages {
		// upkeep-image-add.1 → upkeep image add --help
		args := strings.Split(strings.TrimSuffix(filepath.Base(p), ".1"), "-")[1:]
		// Commands with a dash in their name (is-active) come back whole.
		args = joinDashed(args)
		name := strings.TrimSuffix(filepath.Base(p), ".1")
		names = append(names, name)
		cmd := exec.Command(bin, append(args, "--help")...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("upkeep %s --help: %v", strings.Join(args, " "), err)
			continue
		}
		golden(filepath.Join("help", name+".txt"), out)
	}
	// Every golden file has its command still.
	old, _ := filepath.Glob(filepath.Join("testdata", "help", "*.txt"))
	for _, o := range old {
		if n := strings.TrimSuffix(filepath.Base(o), ".txt"); !slices.Contains(names, n) {
			if goldenUpdate() {
				os.Remove(o)
			} else {
				t.Errorf("%s: no such command any more", o)
			}
		}
	}
}

// joinDashed puts back together the words of commands whose names have a
// dash: is-active, is-failed.
func joinDashed(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		if words[i] == "is" && i+1 < len(words) {
			out = append(out, "is-"+words[i+1])
			i++
			continue
		}
		out = append(out, words[i])
	}
	return out
}

// TestFirstRun: provision makes a missing root but not a missing home
// (and names the --home it used); validate takes a service's name.
func TestFirstRun(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "host")
	home := filepath.Join(base, "operator")
	os.Mkdir(home, 0o755)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = "/"
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	out, _, code := run("--root", root, "--home", home, "provision", "--dry-run")
	if !strings.Contains(out, "mkdir -m 0755 "+root) {
		t.Errorf("provision --dry-run with a missing root: exit %d, no mkdir of the root in:\n%s", code, out)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("--dry-run made the root (%v)", err)
	}
	out, stderr, code := run("--root", root, "--home", home, "provision")
	if code != 0 || !strings.Contains(out, "created the root "+root) {
		t.Errorf("provision with a missing root: exit %d\n%s%s", code, out, stderr)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/www")); err != nil || !fi.IsDir() {
		t.Errorf("no var/www in the new root: %v", err)
	}
	missing := filepath.Join(base, "nobody-home")
	out, stderr, code = run("--root", root, "--home", missing, "provision")
	if code != 1 || !strings.Contains(out+stderr, missing+": the operator's home (--home) does not exist") {
		t.Errorf("provision with a missing --home: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("provision made the missing home (%v)", err)
	}
	if _, stderr, code = run("--root", filepath.Join(base, "no/such/parent"), "--home", home, "provision"); code != 1 || !strings.Contains(stderr, "create the root") {
		t.Errorf("provision under a missing parent: exit %d %q", code, stderr)
	}

	os.MkdirAll(filepath.Join(root, "var/www/www-blog"), 0o755)
	os.WriteFile(filepath.Join(root, "var/www/www-blog/service.toml"), []byte("command = [\"/bin/true\"]\n"), 0o644)
	if out, stderr, code := run("--root", root, "validate", "www-blog"); code != 0 || out != "1 service(s) OK\n" {
		t.Errorf("validate www-blog (a name, from /): exit %d %q %q", code, out, stderr)
	}
	if _, stderr, code := run("--root", root, "validate", "www-nope"); code != 2 || !strings.Contains(stderr, "www-nope is neither a path nor a service under "+filepath.Join(root, "var/www")) {
		t.Errorf("validate www-nope: exit %d %q", code, stderr)
	}
}

// TestDemoKeep: the hint demo --keep prints names a command that works
// (for this binary, its path; after go run, go run itself: see
// keepCommand), and Ctrl-C ends the demo with nothing left behind.
func TestDemoKeep(t *testing.T) {
	tmp := t.TempDir()
	t.Cleanup(func() { sweep(t, tmp) })
	cmd := exec.Command(bin, "demo", "--keep")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	hint := regexp.MustCompile(`^  (\S+) --root (\S+) status$`)
	sc := bufio.NewScanner(stdout)
	var exe, root string
	for sc.Scan() {
		if m := hint.FindStringSubmatch(sc.Text()); m != nil {
			exe, root = m[1], m[2]
		}
		if strings.HasPrefix(sc.Text(), "Ctrl-C stops") {
			break
		}
	}
	if exe != bin {
		t.Fatalf("the --keep hint names %q, want this binary %q (stderr %s)", exe, bin, stderr.String())
	}
	out, err := exec.Command(exe, "--root", root, "status").Output()
	if err != nil || !regexp.MustCompile(`(?m)^www-hello\s+running`).Match(out) {
		t.Errorf("the hint's command: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo --keep after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(rest), "api-worker first (it depends on www-hello)") {
		t.Errorf("no shutdown line after Ctrl-C:\n%s", rest)
	}
	checkRaces(t, "upkeep demo --keep", stderr.String())
}

// TestStatusWatch: status --watch redraws the table until Ctrl-C (exit 0),
// and a service added meanwhile shows up in a later frame.
func TestStatusWatch(t *testing.T) {
	h := newHost(t)
	h.write("www-a", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.daemon()
	h.eventually(10*time.Second, "www-a running", h.allRunning("www-a"))
	if _, errOut, code := h.cli("status", "--watch", "--json"); code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--watch --json: exit %d %q, want 2", code, errOut)
	}
	cmd := exec.Command(bin, "--root", h.root, "status", "--watch", "--interval", "200ms")
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	frames := func() int { return strings.Count(out.String(), "every 200ms: upkeep status") }
	h.eventually(10*time.Second, "two frames", func() bool { return frames() >= 2 })
	h.write("www-b", "command = [\"/bin/sleep\", \"1000\"]\nready_after = \"0s\"\n")
	h.cli("reload")
	h.eventually(10*time.Second, "www-b in a later frame", func() bool {
		f := strings.Split(out.String(), "every 200ms: upkeep status")
		return len(f) > 2 && strings.Contains(f[len(f)-2], "www-b")
	})
	if strings.Contains(out.String(), "\x1b") {
		t.Error("--watch into a pipe wrote escape codes")
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("status --watch after Ctrl-C: %v, want exit 0", err)
	}
}
