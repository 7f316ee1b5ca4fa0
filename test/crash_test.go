package test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Crash tests: the binary is run with UPKEEP_CRASH_AT=<step> (the test hook
// of internal/crash), SIGKILLs itself there, and the next upkeep command or
// daemon must find the host in the old state or the new one, never half.

// killedAt runs upkeep with the crash hook set to step and requires that it
// died of SIGKILL (so the hook, not an error, ended it).
func (h *hostHome) killedAt(step string, args ...string) {
	h.t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", h.root, "--home", h.home}, args...)...)
	cmd.Env = append(os.Environ(), "UPKEEP_CRASH_AT="+step)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		h.t.Fatalf("upkeep %s with UPKEEP_CRASH_AT=%s: %v, want killed by SIGKILL\n%s", strings.Join(args, " "), step, err, out.String())
	}
	checkRaces(h.t, "upkeep "+strings.Join(args, " "), out.String())
}

// crashHost is a provisioned host with a home, its daemon answering, and
// the crash images added: where each crash test begins.
func crashHost(t *testing.T) (*hostHome, *exec.Cmd) {
	h := newHostHome(t)
	h.must("provision")
	d := h.daemonAt("")
	h.crashImages()
	return h, d
}

// daemonAt starts a daemon with the crash hook set to step (none: "") and
// kills it, if still alive, at cleanup. Unlike host.daemon, it may die.
func (h *host) daemonAt(step string) *exec.Cmd {
	h.t.Helper()
	cmd := exec.Command(bin, "--root", h.root, "daemon", "-q")
	cmd.Env = append(os.Environ(), "UPKEEP_CRASH_AT="+step)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	h.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		checkRaces(h.t, "upkeep daemon", stderr.String())
		if h.t.Failed() {
			h.t.Logf("daemon (UPKEEP_CRASH_AT=%q) stderr:\n%s", step, stderr.String())
		}
	})
	// Answering, not just a socket file: a dead daemon leaves its file.
	h.eventually(10*time.Second, "the daemon to answer", func() bool {
		_, _, code := h.cli("status")
		return answeredCode(code)
	})
	return cmd
}

// dies waits until the daemon cmd (from daemonAt) has died of SIGKILL.
func (h *host) dies(cmd *exec.Cmd) {
	h.t.Helper()
	// Reaped, not a zombie: the leader shows Z while its other threads
	// still exit (a SIGKILLed low-priority thread can take a while on a
	// busy machine), and until the last one has, the process's
	// descriptors (the host lock) stay open. daemonAt's Wait reaps it.
	h.eventually(10*time.Second, "the daemon to kill itself", func() bool {
		return syscall.Kill(cmd.Process.Pid, 0) != nil
	})
}

// The releases the crash tests deploy: each has a file of its own, a
// shared one and a copy, so a half-laid overlay is visible.
var crashReleases = map[string]string{"1.0.0": "7931", "2.0.0": "7932"}

func (h *hostHome) crashImages() {
	for v, arg := range crashReleases {
		n := v[:1]
		h.image("www-crash", map[string]string{
			"service.toml":                        appTOML(v, arg, ""),
			"config/etc/app/www-crash.conf":       "v" + n,
			"config/etc/app/only-v" + n + ".conf": "v" + n,
			"config/etc/app/copied.conf":          "copy v" + n,
		})
	}
}

// settled checks that www-crash is wholly at version ("" for not deployed):
// the link, every overlay file against the manifest, nothing else in
// etc/app, no journal, doctor clean, and the daemon running it exactly once.
func (h *hostHome) settled(version string) {
	h.t.Helper()
	t := h.t
	want := map[string]bool{}
	if version != "" {
		if got := h.current("www-crash"); got != ".releases/www-crash/"+version {
			t.Errorf("var/www/www-crash -> %q, want the release %s", got, version)
		}
		n := version[:1]
		for _, f := range []string{"www-crash.conf", "only-v" + n + ".conf", "copied.conf"} {
			want["etc/app/"+f] = true
		}
		if got := h.read("etc/app/copied.conf"); got != "copy v"+n {
			t.Errorf("etc/app/copied.conf reads %q, want %q", got, "copy v"+n)
		}
		if got := h.read("etc/app/www-crash.conf"); got != "v"+n {
			t.Errorf("etc/app/www-crash.conf reads %q, want %q", got, "v"+n)
		}
	} else if h.exists("var/www/www-crash") {
		t.Errorf("var/www/www-crash is there (-> %q), want nothing", h.current("www-crash"))
	}
	var got []string
	entries, _ := os.ReadDir(filepath.Join(h.root, "etc/app"))
	for _, e := range entries {
		got = append(got, "etc/app/"+e.Name())
	}
	if wantList := sortedKeys(want); !slices.Equal(got, wantList) {
		t.Errorf("etc/app holds %q, want %q", got, wantList)
	}
	if version == "" {
		if h.exists("etc/app") || h.exists("var/lib/upkeep/overlay/www-crash.json") {
			t.Errorf("the overlay of a service never deployed is still there")
		}
	} else {
		var m struct {
			Release string
			Entries []struct{ Path, Kind, Target, SHA256 string }
		}
		if err := json.Unmarshal([]byte(h.read("var/lib/upkeep/overlay/www-crash.json")), &m); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if m.Release != version {
			t.Errorf("manifest of release %q, want %s", m.Release, version)
		}
		var listed []string
		for _, e := range m.Entries {
			listed = append(listed, e.Path)
			full := filepath.Join(h.root, e.Path)
			switch e.Kind {
			case "link":
				if target, err := os.Readlink(full); err != nil || target != e.Target {
					t.Errorf("%s -> %q (%v), manifest says %q", e.Path, target, err, e.Target)
				}
			case "copy":
				b, err := os.ReadFile(full)
				sum := sha256.Sum256(b)
				if err != nil || hex.EncodeToString(sum[:]) != e.SHA256 {
					t.Errorf("%s does not hold the copy the manifest records (%v)", e.Path, err)
				}
			}
		}
		if wantList := sortedKeys(want); !slices.Equal(listed, wantList) {
			t.Errorf("manifest lists %q, want %q", listed, wantList)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(h.root, "var/lib/upkeep/journal")); len(entries) > 0 {
		t.Errorf("journal left: %v", entries)
	}
	rels, _ := os.ReadDir(filepath.Join(h.root, "var/www/.releases/www-crash"))
	for _, e := range rels {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("staging left in the releases: %s", e.Name())
		}
	}
	if out, _, code := h.up("doctor"); code != 0 {
		t.Errorf("doctor: exit %d\n%s", code, out)
	}
	for v, arg := range crashReleases {
		n := 0
		if v == version {
			n = 1
			h.eventually(10*time.Second, "www-crash running "+v, func() bool {
				s := h.status()["www-crash"]
				return s.State == "running" && strings.HasSuffix(cmdline(s.Pid), arg)
			})
		}
		if got := instances(h.root, "/bin/sleep", arg); got != n {
			t.Errorf("%s runs %d times, want %d", v, got, n)
		}
	}
	if version == "" {
		if s, ok := h.status()["www-crash"]; ok && s.Pid != 0 {
			t.Errorf("www-crash runs (pid %d), never deployed", s.Pid)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A deploy of 2.0.0 over 1.0.0 killed at each step, then any host command
// (here provision, which takes the host lock): until the daemon is asked
// to run 2.0.0 the deploy is undone, after that it is kept.
func TestDeployKilledAtEachStep(t *testing.T) {
	for _, c := range []struct{ step, want string }{
		{"unpack-staged", "1.0.0"},
		{"deploy-unpacked", "1.0.0"},
		{"deploy-switched", "1.0.0"},
		{"overlay-placed", "1.0.0"},
		{"deploy-overlaid", "1.0.0"},
		{"deploy-before-restart", "1.0.0"},
		{"deploy-after-restart", "2.0.0"},
	} {
		t.Run(c.step, func(t *testing.T) {
			h, _ := crashHost(t)
			h.must("deploy", "www-crash@1.0.0")
			pid := h.status()["www-crash"].Pid
			h.killedAt(c.step, "deploy", "www-crash@2.0.0")
			if !h.exists("var/lib/upkeep/journal/www-crash.json") {
				t.Errorf("no journal after the crash")
			}
			if out, _, code := h.up("doctor"); code == 0 || !strings.Contains(out, "died at step") {
				t.Errorf("doctor before recovery does not report the dead deploy: exit %d\n%s", code, out)
			}
			start := time.Now()
			out := h.must("provision")
			t.Logf("provision, recovery included, took %v", time.Since(start).Round(time.Millisecond))
			if !strings.Contains(out, "recovered the deploy of www-crash 2.0.0") {
				t.Errorf("provision does not say it recovered:\n%s", out)
			}
			h.settled(c.want)
			if c.want == "1.0.0" {
				if got := h.status()["www-crash"].Pid; got != pid {
					t.Errorf("1.0.0 now runs as pid %d, was %d: undoing a deploy the daemon never saw must not restart it", got, pid)
				}
				if h.exists("var/www/.releases/www-crash/2.0.0") {
					t.Errorf("the release 2.0.0 unpacked by the dead deploy is still there")
				}
			}
			// And the host takes the deploy again.
			h.must("deploy", "www-crash@2.0.0")
			h.settled("2.0.0")
		})
	}
}

// A deploy of a release that does not come up, killed as it rolls back:
// the rollback is finished (redo), and the daemon runs the old release.
func TestDeployKilledRollingBack(t *testing.T) {
	h, _ := crashHost(t)
	h.image("www-crash", map[string]string{
		"service.toml":                  "version = \"3.0.0\"\nscript = \"exit 3\"\nrestart = { policy = \"never\" }\ncopy = [\"etc/app/copied.conf\"]\n",
		"config/etc/app/www-crash.conf": "v3",
		"config/etc/app/only-v3.conf":   "v3",
		"config/etc/app/copied.conf":    "copy v3",
	})
	h.must("deploy", "www-crash@1.0.0")
	h.killedAt("deploy-rolling-back", "deploy", "www-crash@3.0.0", "--timeout", "10s")
	h.must("provision")
	h.settled("1.0.0")
	if out := h.must("releases", "www-crash"); !regexp.MustCompile(`3\.0\.0 .*failed`).MatchString(out) {
		t.Errorf("3.0.0 is not marked failed:\n%s", out)
	}
}

// A file of the overlay changed by hand after a deploy died: recovery
// does not overwrite it. It changes nothing, keeps the journal, and says
// why; doctor reports both; other commands go on; a deploy of that service
// refuses. Once the file is put right, the next command recovers.
func TestRecoveryStopsAtAChangedFile(t *testing.T) {
	h, _ := crashHost(t)
	h.must("deploy", "www-crash@1.0.0")
	h.killedAt("deploy-overlaid", "deploy", "www-crash@2.0.0")
	changed := filepath.Join(h.root, "etc/app/copied.conf")
	if err := os.WriteFile(changed, []byte("edited by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Provision does its own work, then exits 1: doctor's problems are left.
	out, stderr, code := h.up("provision")
	if code != 1 || !strings.Contains(stderr, "warning: recover the deploy of www-crash (died at switch)") || !strings.Contains(stderr, "changed since upkeep placed it") {
		t.Errorf("provision: exit %d\n%s%s", code, out, stderr)
	}
	if h.current("www-crash") != ".releases/www-crash/2.0.0" || h.read("etc/app/copied.conf") != "edited by hand" || !h.exists("var/lib/upkeep/journal/www-crash.json") {
		t.Errorf("a recovery that stopped changed something: -> %s, copied.conf %q", h.current("www-crash"), h.read("etc/app/copied.conf"))
	}
	if out, _, code := h.up("doctor"); code == 0 || !strings.Contains(out, "died at step switch") || !strings.Contains(out, "copied.conf: changed since") {
		t.Errorf("doctor: exit %d\n%s", code, out)
	}
	if _, stderr, code := h.up("deploy", "www-crash@2.0.0"); code == 0 || !strings.Contains(stderr, "recover the deploy of www-crash") {
		t.Errorf("deploy over an unrecovered journal: exit %d %s", code, stderr)
	}
	if err := os.WriteFile(changed, []byte("copy v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.must("provision")
	h.settled("1.0.0")
}

// The daemon killed while a deploy waits for the new release to come up:
// the deploy takes the lost daemon for a release that did not come up and
// rolls back; the next daemon runs the old release, once, and nothing of
// the new one is left running.
func TestDaemonKilledDuringDeploy(t *testing.T) {
	h, first := crashHost(t)
	h.image("www-crash", map[string]string{
		"service.toml":                  appTOML("4.0.0", "7934", "[[check]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n"),
		"config/etc/app/www-crash.conf": "v4",
		"config/etc/app/only-v4.conf":   "v4",
		"config/etc/app/copied.conf":    "copy v4",
	})
	h.must("deploy", "www-crash@1.0.0")
	deploy := exec.Command(bin, "--root", h.root, "--home", h.home, "deploy", "www-crash@4.0.0", "--timeout", "30s")
	var out bytes.Buffer
	deploy.Stdout, deploy.Stderr = &out, &out
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, "4.0.0 started, waiting for its check", func() bool { return instances(h.root, "/bin/sleep", "7934") == 1 })
	first.Process.Signal(syscall.SIGKILL)
	h.dies(first)
	err := deploy.Wait()
	if err == nil || !strings.Contains(out.String(), "rolled back to 1.0.0") {
		t.Errorf("deploy with its daemon killed: %v\n%s", err, out.String())
	}
	h.daemonAt("")
	h.settled("1.0.0")
	if n := instances(h.root, "/bin/sleep", "7934"); n != 0 {
		t.Errorf("4.0.0 runs %d times after the new daemon started, want 0", n)
	}
}

// A remove killed at each of its steps is finished (a remove only goes
// forward: its journal says redo) by the next host command, a daemon start
// or the same remove run again: nothing of the service is left but, without
// --purge, its data and logs; the daemon no longer knows it.
func TestRemoveKilled(t *testing.T) {
	for _, c := range []struct {
		step, by string
		purge    bool
	}{
		{"remove-journaled", "provision", false},
		{"remove-unlinked", "provision", true},
		{"remove-unlaid", "provision", false},
		{"remove-released", "provision", true},
		{"remove-journaled", "remove", false},
		{"remove-unlinked", "remove", false},
		{"remove-unlaid", "daemon", true},
		{"remove-unlinked", "daemon", false},
	} {
		t.Run(fmt.Sprintf("%s/%s/purge=%v", c.step, c.by, c.purge), func(t *testing.T) {
			h, first := crashHost(t)
			h.must("deploy", "www-crash@1.0.0")
			writeTree(t, h.root, map[string]string{"var/db/www-crash/data": "kept"})
			h.eventually(10*time.Second, "the log written", func() bool { return h.exists("var/log/www-crash.log") })
			args := []string{"remove", "www-crash"}
			if c.purge {
				args = append(args, "--purge")
			}
			h.killedAt(c.step, args...)
			if !h.exists("var/lib/upkeep/journal/www-crash.json") {
				t.Fatalf("no journal after the crash")
			}
			if out, _, code := h.up("doctor"); code == 0 || !strings.Contains(out, "the remove of www-crash died half done") {
				t.Errorf("doctor before recovery does not report the dead remove: exit %d\n%s", code, out)
			}
			var out string
			switch c.by {
			case "provision":
				out = h.must("provision")
			case "remove":
				out = h.must(args...)
			case "daemon":
				first.Process.Signal(syscall.SIGKILL)
				h.dies(first)
				h.daemonAt("")
				out = h.read("var/log/upkeep.log")
			}
			if !strings.Contains(out, "recovered the remove of www-crash that died at remove: redo (now removed)") {
				t.Errorf("%s does not say it finished the remove:\n%s", c.by, out)
			}
			h.settled("")
			for _, rel := range []string{"var/www/.releases/www-crash", "var/lib/upkeep/releases/www-crash.json", "var/lib/upkeep/locks/www-crash.lock"} {
				if h.exists(rel) {
					t.Errorf("%s is left", rel)
				}
			}
			if _, err := os.Lstat(filepath.Join(h.home, "service/www-crash")); err == nil {
				t.Errorf("~/service/www-crash is left")
			}
			if _, ok := h.status()["www-crash"]; ok {
				t.Errorf("the daemon still knows www-crash")
			}
			if kept := h.exists("var/db/www-crash/data") && h.exists("var/log/www-crash.log"); kept == c.purge {
				t.Errorf("with purge=%v, var/db/www-crash and the log are kept=%v", c.purge, kept)
			}
			// And the host takes the service again.
			h.must("deploy", "www-crash@2.0.0")
			h.settled("2.0.0")
		})
	}
}

// A first deploy killed after the switch leaves nothing behind.
func TestFirstDeployKilled(t *testing.T) {
	h, _ := crashHost(t)
	h.killedAt("overlay-placed", "deploy", "www-crash@1.0.0")
	h.must("provision")
	h.settled("")
	for _, rel := range []string{"var/www/.releases/www-crash/1.0.0", "var/lib/upkeep/releases/www-crash.json"} {
		if h.exists(rel) {
			t.Errorf("%s, made by the dead first deploy, is still there", rel)
		}
	}
}

// A rollback killed after its switch is undone: 2.0.0 stays.
func TestRollbackKilled(t *testing.T) {
	h, _ := crashHost(t)
	h.must("deploy", "www-crash@1.0.0")
	h.must("deploy", "www-crash@2.0.0")
	h.killedAt("rollback-switched", "rollback", "www-crash")
	h.must("provision")
	h.settled("2.0.0")
	h.must("rollback", "www-crash")
	h.settled("1.0.0")
}

// The deploy and the daemon both die; the new daemon undoes the deploy
// before it starts anything, and runs 1.0.0 once.
func TestDeployAndDaemonKilled(t *testing.T) {
	h, first := crashHost(t)
	h.must("deploy", "www-crash@1.0.0")
	h.killedAt("overlay-placed", "deploy", "www-crash@2.0.0")
	first.Process.Signal(syscall.SIGKILL)
	h.dies(first)
	if n := instances(h.root, "/bin/sleep", crashReleases["1.0.0"]); n != 1 {
		t.Fatalf("1.0.0 runs %d times after the daemon's death, want 1 (the orphan)", n)
	}
	h.daemonAt("")
	h.settled("1.0.0")
	if b := h.read("var/log/upkeep.log"); !strings.Contains(b, "recovered the deploy of www-crash 2.0.0") {
		t.Errorf("the daemon's log does not say it recovered the deploy:\n%s", b)
	}
}

// A deploy killed after its overlay, then a reload (SIGHUP or `upkeep
// reload`, which take no host lock): the daemon recovers before it reads
// the definitions, so it never sees 2.0.0's, and 1.0.0 runs on untouched.
func TestReloadAfterDeployKilled(t *testing.T) {
	h, _ := crashHost(t)
	h.must("deploy", "www-crash@1.0.0")
	pid := h.status()["www-crash"].Pid
	h.killedAt("deploy-overlaid", "deploy", "www-crash@2.0.0")
	if out, stderr, code := h.cli("reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, stderr)
	}
	h.settled("1.0.0")
	if got := h.status()["www-crash"].Pid; got != pid {
		t.Errorf("1.0.0 runs as pid %d after the reload, was %d", got, pid)
	}
}

// The daemon killed in the middle of a reload (gone services stopped, new
// ones not added): a new daemon runs exactly the definitions on disk, each
// once.
func TestReloadKilled(t *testing.T) {
	h := newHost(t)
	h.write("service-stay", "command = [\"/bin/sleep\", \"7941\"]\nready_after = \"0s\"\n")
	h.write("service-go", "command = [\"/bin/sleep\", \"7942\"]\nready_after = \"0s\"\n")
	d := h.daemonAt("reload-midway")
	h.eventually(10*time.Second, "both running", h.allRunning("service-stay", "service-go"))
	if err := os.RemoveAll(filepath.Join(h.root, "var/www/service-go")); err != nil {
		t.Fatal(err)
	}
	h.write("service-new", "command = [\"/bin/sleep\", \"7943\"]\nready_after = \"0s\"\n")
	h.cli("reload") // its answer is lost with the daemon
	h.dies(d)
	h.daemonAt("")
	h.eventually(10*time.Second, "the new definitions running", h.allRunning("service-stay", "service-new"))
	for arg, want := range map[string]int{"7941": 1, "7942": 0, "7943": 1} {
		if n := instances(h.root, "/bin/sleep", arg); n != want {
			t.Errorf("sleep %s runs %d times, want %d", arg, n, want)
		}
	}
	if _, ok := h.status()["service-go"]; ok {
		t.Errorf("service-go, removed before the reload, is still known")
	}
}

// The daemon killed in the middle of a rotation: after the rename, before
// the compression, and with a half-written .gz temp file. The new daemon
// finishes the rotation: every line is in the log or its one archive, the
// archive is whole, no temp file is left.
func TestRotationKilled(t *testing.T) {
	for _, step := range []string{"log-rotated", "log-compress", "log-compressing"} {
		t.Run(step, func(t *testing.T) {
			h := newHost(t)
			h.write("service-log", "script = \"i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line $i; done; exec /bin/sleep 7951\"\nready_after = \"0s\"\n[log]\ncompress = true\ndelaycompress = false\nnotifempty = false\n")
			log := filepath.Join(h.root, "var/log/service-log.log")
			d := h.daemonAt(step)
			h.eventually(10*time.Second, "2000 lines", func() bool {
				b, _ := os.ReadFile(log)
				return bytes.HasSuffix(b, []byte("line 2000\n"))
			})
			h.cli("rotate", "service-log")
			h.dies(d)
			h.daemonAt("")
			h.eventually(10*time.Second, "the archive compressed", func() bool {
				_, err1 := os.Stat(log + ".1.gz")
				_, err2 := os.Stat(log + ".1")
				return err1 == nil && err2 != nil
			})
			h.eventually(10*time.Second, "no temp files", func() bool {
				entries, _ := os.ReadDir(filepath.Join(h.root, "var/log"))
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".service-log") {
						return false
					}
				}
				return true
			})
			f, err := os.Open(log + ".1.gz")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			old, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s.1.gz is not whole: %v", log, err)
			}
			cur, _ := os.ReadFile(log)
			all := string(old) + string(cur)
			var want strings.Builder
			for i := 1; i <= 2000; i++ {
				want.WriteString("line " + strconv.Itoa(i) + "\n")
			}
			if !strings.HasPrefix(all, want.String()) {
				t.Errorf("the log and its archive do not hold lines 1..2000 in order (%d bytes, want %d)", len(all), want.Len())
			}
			if n := instances(h.root, "/bin/sleep", "7951"); n != 1 {
				t.Errorf("service-log runs %d times, want 1", n)
			}
		})
	}
}

// The daemon SIGKILLed while a service writes: every line the daemon read
// from the pipe is in the file, in order; the service's next write gets
// EPIPE (SIGPIPE where it does not ignore it); a new daemon restarts it
// with a fresh pipe into the same file.
func TestLinesAcrossDaemonKill(t *testing.T) {
	h := newHost(t)
	mark := filepath.Join(h.root, "epipe")
	// trap '' PIPE: the shell sees EPIPE rather than dying of SIGPIPE, and
	// says at which line; the second run (argument 2) writes on.
	h.write("service-seq", `script = """
trap '' PIPE
run=1; [ -e `+mark+` ] && run=2
i=0
while :; do
  i=$((i+1))
  if ! echo "run $run line $i"; then echo $i > `+mark+`; exec sleep 7961; fi
  [ $((i % 50)) -eq 0 ] && sleep 0.01
done
"""
ready_after = "0s"
[log]
when = "monthly"
`)
	log := filepath.Join(h.root, "var/log/service-seq.log")
	d := h.daemonAt("")
	h.eventually(10*time.Second, "lines flowing", func() bool {
		fi, err := os.Stat(log)
		return err == nil && fi.Size() > 64<<10
	})
	d.Process.Signal(syscall.SIGKILL)
	h.dies(d)
	h.eventually(10*time.Second, "the service to see EPIPE", func() bool { _, err := os.Stat(mark); return err == nil })
	b, _ := os.ReadFile(mark)
	failedAt, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	h.daemonAt("")
	h.eventually(10*time.Second, "the second run's lines", func() bool {
		b, _ := os.ReadFile(log)
		return bytes.Contains(b, []byte("run 2 line 100\n"))
	})
	b, _ = os.ReadFile(log)
	lines := strings.Split(string(b), "\n")
	last := 0
	for _, l := range lines {
		n, ok := strings.CutPrefix(l, "run 1 line ")
		if !ok {
			continue
		}
		i, _ := strconv.Atoi(n)
		if i != last+1 {
			t.Fatalf("run 1: line %d follows line %d: a line the daemon read is missing or torn", i, last)
		}
		last = i
	}
	if last == 0 || last >= failedAt {
		t.Errorf("run 1: %d lines on disk, the write of line %d failed", last, failedAt)
	}
	t.Logf("run 1: lines 1..%d on disk; %d line(s) were in the dead pipe; line %d got EPIPE", last, failedAt-1-last, failedAt)
	if n := instances(h.root, "/bin/sleep", "7961"); n != 0 {
		t.Errorf("the old run still sleeps (%d): the new daemon must stop it", n)
	}
}

// An import killed after a service.toml got its name: the files written
// are whole, the others are not there at all (their temp files only), and
// a second import writes them and removes the dead import's temp files.
func TestImportKilled(t *testing.T) {
	h := newHostHome(t)
	src := filepath.Join(t.TempDir(), "Procfile")
	var procfile strings.Builder
	for i := range 4 {
		procfile.WriteString("service-imp" + strconv.Itoa(i) + ": /bin/sleep " + strconv.Itoa(7970+i) + "\n")
	}
	if err := os.WriteFile(src, []byte(procfile.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{src}
	to := filepath.Join(h.root, "imported")
	h.killedAt("import-committed", append(append([]string{"import"}, files...), "--to", to)...)
	written := 0
	for i := range 4 {
		b, err := os.ReadFile(filepath.Join(to, "service-imp"+strconv.Itoa(i), "service.toml"))
		if err == nil {
			written++
			if !strings.Contains(string(b), strconv.Itoa(7970+i)) {
				t.Errorf("service-imp%d/service.toml is not whole:\n%s", i, b)
			}
		}
	}
	// The commits run on a few goroutines: the kill comes after the first,
	// others may have made it too, but not all.
	if written < 1 || written > 3 {
		t.Errorf("%d service.toml written by the killed import, want some but not all", written)
	}
	// The second import writes the rest; the one already written is
	// reported as there (--force would replace it with the same file).
	out, stderr, code := h.up(append(append([]string{"import"}, files...), "--to", to)...)
	if code != 1 || strings.Count(out+stderr, "exists (--force replaces it)") != written || strings.Count(out, "wrote ") != 4-written {
		t.Errorf("second import: exit %d\n%s%s", code, out, stderr)
	}
	for i := range 4 {
		if _, err := os.Stat(filepath.Join(to, "service-imp"+strconv.Itoa(i), "service.toml")); err != nil {
			t.Errorf("service-imp%d not written by the second import: %v", i, err)
		}
	}
	var litter []string
	filepath.WalkDir(to, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".service.toml.") {
			litter = append(litter, p)
		}
		return nil
	})
	if len(litter) > 0 {
		t.Errorf("temp files left: %v", litter)
	}
}
