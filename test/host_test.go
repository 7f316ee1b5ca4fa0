package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests drive the host commands (provision, doctor, image, deploy,
// rollback, releases, overlay, remove) on a temp root and a temp home.

type hostHome struct {
	*host
	home string
}

func newHostHome(t *testing.T) *hostHome {
	t.Helper()
	// A binary whose host commands are broken or unregistered is a
	// regression to report, not a reason to skip: a skip here read as ok.
	if _, stderr, code := (&host{t: t, root: t.TempDir()}).cli("provision", "--help"); code != 0 {
		t.Fatalf("upkeep provision --help: exit %d (are the host commands registered in cmd/upkeep/main.go?): %s", code, stderr)
	}
	h := &hostHome{host: newHost(t), home: t.TempDir()}
	// These tests are about deploy's mechanics: a policy that lets their
	// services run as root and lay files anywhere in etc/ and srv/ (the
	// built-in deny rules still hold). policy_test.go tests the policy.
	writeTree(t, h.root, map[string]string{"etc/upkeep/policy.toml": lenientPolicy})
	return h
}

const lenientPolicy = "[overlay]\nallow = [\"etc/\", \"srv/\"]\n[images]\nallow_root = true\n"

// up runs upkeep with --home.
func (h *hostHome) up(args ...string) (string, string, int) {
	return h.cli(append([]string{"--home", h.home}, args...)...)
}

func (h *hostHome) must(args ...string) string {
	h.t.Helper()
	out, stderr, code := h.up(args...)
	if code != 0 {
		h.t.Fatalf("upkeep %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// image writes a service directory (files: path -> content) and adds it
// with `upkeep image add DIR`.
func (h *hostHome) image(name string, files map[string]string) {
	h.t.Helper()
	dir := filepath.Join(h.t.TempDir(), name)
	writeTree(h.t, dir, files)
	h.must("image", "add", dir)
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *hostHome) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(h.root, rel))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func (h *hostHome) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(h.root, rel))
	return err == nil
}

func (h *hostHome) current(name string) string {
	target, _ := os.Readlink(filepath.Join(h.root, "var/www", name))
	return target
}

// cmdline is the command line of pid, NULs as spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func TestProvisionIsIdempotent(t *testing.T) {
	h := newHostHome(t)
	h.write("www-one", "command = [\"/bin/sleep\", \"1000\"]\n")
	out := h.must("provision")
	for _, want := range []string{"var/www", "var/log", "var/db", "run/upkeep", "service", "image", "script", "var/db/www-one", "ln -sfn"} {
		if !strings.Contains(out, want) {
			t.Errorf("first provision does not mention %q:\n%s", want, out)
		}
	}
	if out := h.must("provision"); strings.TrimSpace(out) != "nothing to do: the layout is in place" {
		t.Errorf("second provision:\n%s", out)
	}
	for link, want := range map[string]string{
		"service/www-one":       filepath.Join(h.root, "var/www/www-one"),
		"log/www-one.log":       filepath.Join(h.root, "var/log/www-one.log"),
		"log/www-one.error.log": filepath.Join(h.root, "var/log/www-one.error.log"),
		"db/www-one":            filepath.Join(h.root, "var/db/www-one"),
	} {
		if got, err := os.Readlink(filepath.Join(h.home, link)); err != nil || got != want {
			t.Errorf("~/%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(h.root, "var/db/www-one")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("var/db/www-one: %v %v", fi, err)
	}
	if out := h.must("doctor"); !strings.Contains(out, "ok") {
		t.Errorf("doctor on a provisioned host:\n%s", out)
	}

	// Break it in four ways; doctor names each with its fix; provision
	// fixes them; a stale link of a removed service goes too.
	os.RemoveAll(filepath.Join(h.home, "log"))
	os.Remove(filepath.Join(h.home, "service/www-one"))
	os.Symlink("/nowhere", filepath.Join(h.home, "service/www-one"))
	os.Chmod(filepath.Join(h.root, "var/www"), 0o777)
	os.Symlink(filepath.Join(h.root, "var/www/www-gone"), filepath.Join(h.home, "service/www-gone"))
	out, _, code := h.up("doctor")
	if code != 1 {
		t.Errorf("doctor on a broken host: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		filepath.Join(h.home, "log") + ": missing directory\n  fix: mkdir -p -m 0755 " + filepath.Join(h.home, "log"),
		filepath.Join(h.home, "service/www-one") + ": points to /nowhere, want " + filepath.Join(h.root, "var/www/www-one"),
		"fix: ln -sfn " + filepath.Join(h.root, "var/www/www-one") + " " + filepath.Join(h.home, "service/www-one"),
		filepath.Join(h.root, "var/www") + ": group- or world-writable (0777)\n  fix: chmod go-w " + filepath.Join(h.root, "var/www"),
		filepath.Join(h.home, "service/www-gone") + ": stale symlink",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
	h.must("provision")
	if out, _, code := h.up("doctor"); code != 0 {
		t.Errorf("doctor after provision: exit %d\n%s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(h.home, "service/www-gone")); err == nil {
		t.Error("stale link kept")
	}
	if out := h.must("provision"); !strings.Contains(out, "nothing to do") {
		t.Errorf("provision after the repair:\n%s", out)
	}
}

// A service naming a user that does not exist: provision --dry-run shows
// the useradd it would run (and creates nothing; tests never make users).
func TestProvisionUserDryRun(t *testing.T) {
	h := newHostHome(t)
	// The first name of the series that no account has: the test never
	// skips because a host happens to have one of them.
	user := "upkeep-test-nouser"
	for i := 1; exec.Command("getent", "passwd", user).Run() == nil; i++ {
		user = "upkeep-test-nouser" + strconv.Itoa(i)
	}
	h.write("service-u", "command = [\"/bin/sleep\", \"1000\"]\nuser = \""+user+"\"\n")
	out := h.must("provision", "--dry-run")
	if !strings.Contains(out, "would run: useradd --system --no-create-home --home-dir "+filepath.Join(h.root, "var/db/service-u")) || !strings.Contains(out, "--user-group "+user+"\n") {
		t.Errorf("dry run:\n%s", out)
	}
	if exec.Command("getent", "passwd", user).Run() == nil {
		t.Fatalf("dry run created user %s", user)
	}
	if h.exists("var/www/.releases") || h.exists("var/db") {
		t.Error("dry run changed the root")
	}
	if entries, _ := os.ReadDir(h.home); len(entries) != 0 {
		t.Errorf("dry run changed the home: %d entries", len(entries))
	}
}

func appTOML(version, arg string, extra string) string {
	return "version = \"" + version + "\"\ncommand = [\"/bin/sleep\", \"" + arg + "\"]\nready_after = \"0s\"\ncopy = [\"etc/app/copied.conf\"]\n" + extra
}

// The whole cycle through a running daemon: deploy, deploy a new version,
// a version whose check never passes (rolled back), one that crashes
// (rolled back), then rollback by hand.
func TestDeployRollbackThroughDaemon(t *testing.T) {
	h := newHostHome(t)
	h.must("provision")
	h.daemon()
	h.eventually(10*time.Second, "daemon socket", func() bool { return h.exists("run/upkeep/upkeep.sock") })

	h.image("www-app", map[string]string{
		"service.toml":                appTOML("1.0.0", "7101", ""),
		"config/etc/app/www-app.conf": "v1",
		"config/etc/app/only-v1.conf": "v1",
		"config/etc/app/copied.conf":  "copy v1",
	})
	h.image("www-app", map[string]string{
		"service.toml":                appTOML("2.0.0", "7102", "[[check]]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\ninterval = \"100ms\"\n"),
		"config/etc/app/www-app.conf": "v2",
		"config/etc/app/only-v2.conf": "v2",
		"config/etc/app/copied.conf":  "copy v2",
	})
	h.image("www-app", map[string]string{
		"service.toml":                appTOML("3.0.0", "7103", "[[check]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n"),
		"config/etc/app/www-app.conf": "v3",
		"config/etc/app/only-v3.conf": "v3",
		"config/etc/app/copied.conf":  "copy v3",
	})
	h.image("www-app", map[string]string{
		"service.toml":                "version = \"4.0.0\"\nscript = \"exit 3\"\nrestart = { policy = \"never\" }\ncopy = [\"etc/app/copied.conf\"]\n",
		"config/etc/app/www-app.conf": "v4",
		"config/etc/app/copied.conf":  "copy v4",
	})

	running := func(arg string) {
		t.Helper()
		s := h.status()["www-app"]
		if s.State != "running" || !strings.HasSuffix(cmdline(s.Pid), arg) {
			t.Fatalf("www-app: %s pid %d (%q), want running %s", s.State, s.Pid, cmdline(s.Pid), arg)
		}
	}
	overlay := func(v string, present, absent []string) {
		t.Helper()
		if got := h.read("etc/app/www-app.conf"); got != v {
			t.Errorf("etc/app/www-app.conf reads %q, want %q", got, v)
		}
		if got := h.read("etc/app/copied.conf"); got != "copy "+v {
			t.Errorf("etc/app/copied.conf reads %q, want %q", got, "copy "+v)
		}
		if fi, err := os.Lstat(filepath.Join(h.root, "etc/app/copied.conf")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("etc/app/copied.conf is not a copy: %v", err)
		}
		for _, p := range present {
			if !h.exists(p) {
				t.Errorf("%s missing", p)
			}
		}
		for _, p := range absent {
			if h.exists(p) {
				t.Errorf("%s still there", p)
			}
		}
	}

	out := h.must("deploy", "www-app@1.0.0")
	if !strings.Contains(out, "www-app 1.0.0 is up") {
		t.Errorf("deploy 1.0.0:\n%s", out)
	}
	running("7101")
	overlay("v1", []string{"etc/app/only-v1.conf"}, nil)
	if got, _ := os.Readlink(filepath.Join(h.root, "etc/app/www-app.conf")); got != filepath.Join(h.root, "var/www/www-app/config/etc/app/www-app.conf") {
		t.Errorf("overlay link -> %q", got)
	}
	if got, _ := os.Readlink(filepath.Join(h.home, "service/www-app")); got != filepath.Join(h.root, "var/www/www-app") {
		t.Errorf("~/service/www-app -> %q", got)
	}

	pid1 := h.status()["www-app"].Pid
	h.must("deploy", "www-app@2.0.0")
	running("7102")
	if h.status()["www-app"].Pid == pid1 {
		t.Error("2.0.0 runs with the pid of 1.0.0")
	}
	overlay("v2", []string{"etc/app/only-v2.conf"}, []string{"etc/app/only-v1.conf"})
	if h.current("www-app") != ".releases/www-app/2.0.0" {
		t.Errorf("var/www/www-app -> %s", h.current("www-app"))
	}

	// 3.0.0 starts but its check never passes: it stays starting until the
	// timeout, and 2.0.0 comes back with its overlay.
	start := time.Now()
	out, stderr, code := h.up("deploy", "www-app@3.0.0", "--timeout", "2s")
	// The error is the last line of stderr, with the reason; the lines
	// before it are the progress of the wait (issue 15: no more silence and
	// "context deadline exceeded").
	lastLine := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if code != 1 || !regexp.MustCompile(`^upkeep: deploy of www-app 3.0.0 failed \(www-app did not come up within 2s \(still starting; last check failure: tcp-1: .*connection refused\)\); rolled back to 2.0.0\n$`).MatchString(lastLine) ||
		!strings.Contains(stderr, "www-app: check tcp-1 failed: ") || strings.Contains(stderr, "deadline exceeded") {
		t.Fatalf("deploy 3.0.0: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	t.Logf("a failing deploy and its rollback took %v", time.Since(start))
	running("7102")
	overlay("v2", []string{"etc/app/only-v2.conf"}, []string{"etc/app/only-v3.conf", "etc/app/only-v1.conf"})
	if h.current("www-app") != ".releases/www-app/2.0.0" {
		t.Errorf("after the rollback var/www/www-app -> %s", h.current("www-app"))
	}

	// 4.0.0 exits at once: the daemon says so, no need to wait for a timeout.
	start = time.Now()
	if _, stderr, code := h.up("deploy", "www-app@4.0.0", "--timeout", "30s"); code != 1 || !strings.Contains(stderr, "rolled back to 2.0.0") {
		t.Fatalf("deploy 4.0.0: exit %d %s", code, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a crashing release took %v to roll back", d)
	}
	running("7102")
	overlay("v2", nil, nil)

	out = h.must("releases", "www-app")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("releases:\n%s", out)
	}
	for i, want := range []string{"1.0.0 .* ok", "^\\* +2.0.0 .* ok", "3.0.0 .* failed", "4.0.0 .* failed"} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("releases line %d %q does not match %q", i+1, lines[i+1], want)
		}
	}

	// By hand: back from 2.0.0 to 1.0.0.
	h.must("rollback", "www-app")
	running("7101")
	overlay("v1", []string{"etc/app/only-v1.conf"}, []string{"etc/app/only-v2.conf"})
	if _, stderr, code := h.up("rollback", "www-app"); code != 1 || !strings.Contains(stderr, "no earlier release") {
		t.Errorf("rollback past the first release: %d %s", code, stderr)
	}
}

// Without a daemon, deploy switches and says the service starts with the
// daemon.
func TestDeployWithoutDaemon(t *testing.T) {
	h := newHostHome(t)
	h.image("www-quiet", map[string]string{"service.toml": "version = \"0.1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"})
	out := h.must("deploy", "www-quiet")
	if !strings.Contains(out, "no daemon is running") || h.current("www-quiet") != ".releases/www-quiet/0.1" {
		t.Errorf("deploy without daemon:\n%s\nvar/www/www-quiet -> %s", out, h.current("www-quiet"))
	}
	// Redeploying the same image reuses the release.
	if out := h.must("deploy", "www-quiet@0.1"); !strings.Contains(out, "already unpacked") {
		t.Errorf("redeploy:\n%s", out)
	}
}

// Conflicts stop a deploy before anything switches, with the full list;
// --force takes the files over.
func TestOverlayConflicts(t *testing.T) {
	h := newHostHome(t)
	writeTree(t, h.root, map[string]string{"etc/app/mine.conf": "the operator's", "etc/app/hers.conf": "the operator's too"})
	h.image("www-a", map[string]string{
		"service.toml":             "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
		"config/etc/app/mine.conf": "a",
		"config/etc/app/hers.conf": "a",
		"config/etc/app/new.conf":  "a",
	})
	_, stderr, code := h.up("deploy", "www-a")
	if code != 1 || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "2 conflict(s): /etc/app/hers.conf exists and was not placed by upkeep; /etc/app/mine.conf exists and was not placed by upkeep") {
		t.Fatalf("deploy over foreign files: exit %d %s", code, stderr)
	}
	if h.exists("var/www/www-a") || h.exists("var/www/.releases/www-a/1") || h.exists("etc/app/new.conf") {
		t.Error("a refused deploy left something behind")
	}
	if h.read("etc/app/mine.conf") != "the operator's" {
		t.Error("a refused deploy changed a file")
	}
	h.must("deploy", "www-a", "--force")
	if h.read("etc/app/mine.conf") != "a" {
		t.Error("--force did not take the file over")
	}

	// Another service's file.
	h.image("www-b", map[string]string{
		"service.toml":             "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
		"config/etc/app/mine.conf": "b",
	})
	if _, stderr, code := h.up("deploy", "www-b"); code != 1 || !strings.Contains(stderr, "/etc/app/mine.conf placed by www-a") {
		t.Fatalf("deploy over another service's file: exit %d %s", code, stderr)
	}
	h.must("deploy", "www-b", "--force")
	if h.read("etc/app/mine.conf") != "b" {
		t.Error("--force did not take the file from www-a")
	}
	// www-a no longer owns it: its overlay leaves it alone.
	out, _, _ := h.up("overlay", "www-a", "--dry-run")
	if !strings.Contains(out, "conflict /etc/app/mine.conf: placed by www-b") {
		t.Errorf("overlay --dry-run of www-a:\n%s", out)
	}
	h.must("remove", "www-a")
	if h.read("etc/app/mine.conf") != "b" || h.exists("etc/app/hers.conf") || h.exists("etc/app/new.conf") {
		t.Error("removing www-a touched www-b's file or left its own")
	}

	// A file changed by hand since upkeep placed it is a conflict too.
	os.Remove(filepath.Join(h.root, "etc/app/mine.conf"))
	os.WriteFile(filepath.Join(h.root, "etc/app/mine.conf"), []byte("edited"), 0o644)
	if out, _, code := h.up("overlay", "www-b", "--dry-run"); code != 1 || !strings.Contains(out, "conflict /etc/app/mine.conf: changed since upkeep placed it") {
		t.Errorf("overlay after a hand edit: %d\n%s", code, out)
	}
}

// remove stops the service and leaves nothing of it but its data and logs;
// --purge takes those too.
func TestRemove(t *testing.T) {
	h := newHostHome(t)
	h.must("provision")
	h.daemon()
	h.eventually(10*time.Second, "daemon socket", func() bool { return h.exists("run/upkeep/upkeep.sock") })
	h.image("service-gone", map[string]string{
		"service.toml":                   "version = \"1\"\nscript = \"echo hello; exec sleep 1000\"\nready_after = \"0s\"\n",
		"config/etc/gone/gone.conf":      "x",
		"config/etc/jobs.d/service-gone": "x",
	})
	h.must("deploy", "service-gone")
	h.eventually(5*time.Second, "running", h.allRunning("service-gone"))
	os.WriteFile(filepath.Join(h.root, "var/db/service-gone/data"), []byte("precious"), 0o644)
	h.eventually(5*time.Second, "log", func() bool { return strings.Contains(h.read("var/log/service-gone.log"), "hello") })
	pid := h.status()["service-gone"].Pid

	out := h.must("remove", "service-gone")
	if !strings.Contains(out, "stopped service-gone") {
		t.Errorf("remove:\n%s", out)
	}
	// It says what it removed: each link, and each directory only as the
	// empty one the overlay had made (issue 15: "removed <root>/etc" read
	// as if it had taken the directory's contents).
	for _, want := range []string{
		"removed link " + filepath.Join(h.root, "etc/gone/gone.conf") + "\n",
		"removed link " + filepath.Join(h.root, "etc/jobs.d/service-gone") + "\n",
		"removed empty directory " + filepath.Join(h.root, "etc/gone") + " (the overlay made it)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("remove does not say %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`(?m)^removed ` + regexp.QuoteMeta(filepath.Join(h.root, "etc"))).MatchString(out) {
		t.Errorf("remove says \"removed <root>/etc...\" without what it was:\n%s", out)
	}
	if _, ok := h.status()["service-gone"]; ok {
		t.Error("the daemon still knows service-gone")
	}
	if instances(h.root, strings.Fields(cmdline(pid))...) > 0 && cmdline(pid) != "" {
		t.Errorf("process %d still runs: %s", pid, cmdline(pid))
	}
	var left []string
	for _, l := range mentions(t, h.root, "service-gone", "gone") {
		if !strings.HasPrefix(l, "var/log/.upkeep/") { // the logs' time indexes stay with the logs
			left = append(left, l)
		}
	}
	want := []string{"var/db/service-gone", "var/log/service-gone.error.log", "var/log/service-gone.log"}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left after remove: %v\nwant %v", left, want)
	}
	if h.read("var/db/service-gone/data") != "precious" {
		t.Error("the data is gone")
	}
	// The overlay made etc/gone and etc/jobs.d (etc/ holds the policy):
	// empty now, they go too.
	if h.exists("etc/gone") || h.exists("etc/jobs.d") {
		t.Error("the overlay's directories are left")
	}
	for _, l := range []string{"service/service-gone", "db/service-gone", "log/service-gone.log"} {
		if _, err := os.Lstat(filepath.Join(h.home, l)); err == nil {
			t.Errorf("~/%s is left", l)
		}
	}

	h.must("deploy", "service-gone")
	h.must("remove", "service-gone", "--purge")
	if left := mentions(t, h.root, "service-gone", "gone"); len(left) != 0 {
		t.Errorf("left after remove --purge: %v", left)
	}
}

// mentions lists the paths beneath dir whose name holds one of words.
func mentions(t *testing.T, dir string, words ...string) []string {
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		for _, w := range words {
			if strings.Contains(filepath.Base(p), w) {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// A symlink planted in the target tree (<root>/etc -> a directory outside
// the root) must not let the overlay write outside.
func TestPlantedSymlinkEscape(t *testing.T) {
	h := newHostHome(t)
	outside := t.TempDir()
	// The policy is read through the symlink, as programs read /etc.
	writeTree(t, outside, map[string]string{"upkeep/policy.toml": lenientPolicy})
	os.RemoveAll(filepath.Join(h.root, "etc"))
	if err := os.Symlink(outside, filepath.Join(h.root, "etc")); err != nil {
		t.Fatal(err)
	}
	h.image("www-evil", map[string]string{
		"service.toml":             "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\ncopy = [\"etc/copied\"]\n",
		"config/etc/hosts":         "pwned",
		"config/etc/copied":        "pwned",
		"config/etc/sub/deep.conf": "pwned",
	})
	for _, args := range [][]string{{"deploy", "www-evil"}, {"deploy", "www-evil", "--force"}} {
		_, stderr, code := h.up(args...)
		if code != 1 || !strings.Contains(stderr, "/etc is a symlink (-> "+outside+"); upkeep does not write through symlinks") {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("written outside the root: %v", entries)
	}
	// A manual install with the same config: overlay refuses the same way.
	writeTree(t, filepath.Join(h.root, "var/www/www-evil"), map[string]string{
		"service.toml": "command = [\"/bin/sleep\", \"1000\"]\n", "config/etc/hosts": "pwned"})
	if out, stderr, code := h.up("overlay", "www-evil"); code != 1 || !strings.Contains(out, "conflict /etc: is a symlink") {
		t.Errorf("overlay: exit %d\n%s\n%s", code, out, stderr)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("written outside the root: %v", entries)
	}
}

// A real directory in var/www (a manual install) is refused without
// --force; with it, it becomes a release one can roll back to.
func TestDeployOverManualInstall(t *testing.T) {
	h := newHostHome(t)
	h.write("api-manual", "command = [\"/bin/sleep\", \"1000\"]\n")
	h.image("api-manual", map[string]string{"service.toml": "version = \"2.0\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"})
	if _, stderr, code := h.up("deploy", "api-manual"); code != 1 || !strings.Contains(stderr, "is a directory (a manual install?)") {
		t.Fatalf("deploy over a directory: exit %d %s", code, stderr)
	}
	if fi, err := os.Lstat(filepath.Join(h.root, "var/www/api-manual")); err != nil || !fi.IsDir() {
		t.Fatal("the manual directory was touched")
	}
	out := h.must("deploy", "api-manual", "--force")
	if h.current("api-manual") != ".releases/api-manual/2.0" || !strings.Contains(out, "kept the directory") {
		t.Fatalf("deploy --force:\n%s", out)
	}
	h.must("rollback", "api-manual")
	if c := h.current("api-manual"); !strings.HasPrefix(c, ".releases/api-manual/manual-") {
		t.Errorf("rollback to the manual install: var/www/api-manual -> %s", c)
	}
	if !strings.Contains(h.read("var/www/api-manual/service.toml"), "sleep") {
		t.Error("the manual install's files are not there")
	}
}

// A hostile image through the command line: refused with the entry named,
// and nothing stored.
func TestImageAddRefusesHostileDir(t *testing.T) {
	h := newHostHome(t)
	dir := filepath.Join(t.TempDir(), "www-bad")
	writeTree(t, dir, map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/true\"]\n"})
	os.Symlink("../../../etc/shadow", filepath.Join(dir, "shadow"))
	_, stderr, code := h.up("image", "add", dir)
	if code != 1 || !strings.Contains(stderr, `entry "shadow": a symlink to "../../../etc/shadow", which leads outside the image`) {
		t.Errorf("image add: exit %d %s", code, stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.home, "image")); len(entries) != 0 {
		t.Errorf("stored anyway: %v", entries)
	}
	// A name that is not safe as a file name never gets in.
	if _, stderr, code := h.up("deploy", "../etc"); code != 2 || !strings.Contains(stderr, "service name") {
		t.Errorf("deploy ../etc: exit %d %s", code, stderr)
	}
}
