package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the README's first command, `upkeep demo`, from the
// repository's root (the README says `go run ./cmd/upkeep demo`; this is
// the same program, built once by TestMain, with the race detector) and
// holds it to what it shows: the three services running, the HTTP
// service answering, a crash followed by a restart under a new pid, the
// events and logs, a clean exit within a bound, and nothing left behind:
// no process, no temp dir, no cgroup.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	// Registered first, so it runs last: whatever the demo left running
	// (it has its cwd beneath tmp) is killed even when the test failed.
	t.Cleanup(func() { sweep(t, tmp) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo")
	cmd.Dir = ".."
	// The demo makes its host with os.MkdirTemp: under tmp, where this
	// test can look for it afterwards.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	checkRaces(t, "upkeep demo", stderr.String())
	if err != nil {
		t.Fatalf("upkeep demo: %v (ctx: %v)\nstdout:\n%s\nstderr:\n%s", err, ctx.Err(), out, stderr.String())
	}
	m := regexp.MustCompile(`(?m)^demo host at (\S+) with three services`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no demo host line:\n%s", out)
	}
	root := m[1]
	if !strings.HasPrefix(root, tmp+"/") {
		t.Errorf("demo host %s is not under TMPDIR %s", root, tmp)
	}

	// The sections of the transcript, by the command that heads each.
	sections := map[string]string{}
	for _, s := range strings.Split(out, "\n$ ")[1:] {
		head, body, _ := strings.Cut(s, "\n")
		sections[head] = body
	}
	section := func(head string) string {
		t.Helper()
		body, ok := sections[head]
		if !ok {
			t.Errorf("no section %q in:\n%s", head, out)
		}
		return body
	}
	names := []string{"www-hello", "service-ticker", "api-worker"}
	// NAME STATE PID UPTIME RESTARTS ...
	row := func(table, name string) (pid, restarts int, ok bool) {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+running\s+(\d+)\s+\S+\s+(\d+)\s`).FindStringSubmatch(table)
		if m == nil {
			return 0, 0, false
		}
		pid, _ = strconv.Atoi(m[1])
		restarts, _ = strconv.Atoi(m[2])
		return pid, restarts, pid > 0
	}
	first := section("upkeep --root " + root + " status")
	for _, n := range names {
		if _, _, ok := row(first, n); !ok {
			t.Errorf("first status: %s not running:\n%s", n, first)
		}
	}
	oldPid, _, _ := row(first, "www-hello")
	if got := sectionWithPrefix(sections, "curl http://"); strings.TrimSpace(got) != "ok" {
		t.Errorf("curl /ok answered %q, want ok", got)
	}
	crash := sectionWithPrefix(sections, "kill -9 "+strconv.Itoa(oldPid)+" ")
	m = regexp.MustCompile(`restarted as pid (\d+) after`).FindStringSubmatch(crash)
	if m == nil || m[1] == strconv.Itoa(oldPid) || m[1] == "0" {
		t.Errorf("after the crash of pid %d: %q, want a restart under a new pid", oldPid, crash)
	}
	second := section("upkeep status")
	for _, n := range names {
		if _, _, ok := row(second, n); !ok {
			t.Errorf("status after the crash: %s not running:\n%s", n, second)
		}
	}
	if pid, restarts, _ := row(second, "www-hello"); pid == oldPid || restarts < 1 {
		t.Errorf("www-hello after the crash: pid %d (was %d), %d restarts; want a new pid and a restart counted", pid, oldPid, restarts)
	}
	checks := sectionWithPrefix(sections, "upkeep status www-hello")
	if !regexp.MustCompile(`www-hello\s+\S+\s+http\s+ok`).MatchString(checks) {
		t.Errorf("www-hello's check:\n%s", checks)
	}
	// The service's own row first, as status NAME prints it.
	if row := regexp.MustCompile(`(?m)^NAME\s+STATE.*\nwww-hello\s+running\s`).FindStringIndex(checks); row == nil || row[0] > strings.Index(checks, "SERVICE") {
		t.Errorf("status www-hello: no service row before its checks:\n%s", checks)
	}
	if ev := section("upkeep events"); !strings.Contains(ev, "starting -> running") || !regexp.MustCompile(`www-hello\s+running -> `).MatchString(ev) {
		t.Errorf("events show no start and no crash of www-hello:\n%s", ev)
	}
	for file, want := range map[string]string{
		"api-worker.log":       "worker for demo started",
		"api-worker.error.log": "this line goes to the error log",
		"service-ticker.log":   "tick 1",
	} {
		if got := section("cat var/log/" + file); !strings.Contains(got, want) {
			t.Errorf("var/log/%s: %q, want %q in it", file, got, want)
		}
	}
	if !strings.HasSuffix(out, "stopping the daemon: api-worker first (it depends on www-hello), then www-hello and service-ticker\n") {
		t.Errorf("the demo did not end with the daemon's stop:\n%s", out)
	}

	// Nothing left behind: the daemon stopped every service before the
	// demo returned, so there is nothing to wait for.
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the demo host %s is still there (%v)", root, err)
	}
	for _, pid := range beneath(tmp) {
		t.Errorf("left behind: pid %d (%s)", pid, cmdline(pid))
	}
	if cg := demoCgroup(t, root); cg != "" {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("the demo's cgroup %s is still there (%v)", cg, err)
		}
	}
}

// sectionWithPrefix is the body of the one section whose heading starts
// with prefix ("" when none does).
func sectionWithPrefix(sections map[string]string, prefix string) string {
	for head, body := range sections {
		if strings.HasPrefix(head, prefix) {
			return body
		}
	}
	return ""
}

// beneath lists the live processes whose working directory is beneath
// dir (a deleted directory still reads as its old path).
func beneath(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// demoCgroup is the cgroup a daemon on root makes (internal/proc's
// OpenCgroups: upkeep-<first 4 bytes of sha256(root)> in the cgroup2
// hierarchy, beside its own cgroup), or "" where there is no cgroup2 mount.
// The daemon inherits this test's cgroup, so its own cgroup is ours.
func demoCgroup(t *testing.T, root string) string {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mount := ""
	for _, l := range strings.Split(string(mounts), "\n") {
		// … mount-point … - cgroup2 source options
		pre, post, ok := strings.Cut(l, " - ")
		if f := strings.Fields(pre); ok && len(f) > 4 && strings.HasPrefix(post, "cgroup2 ") {
			mount = f[4]
			break
		}
	}
	if mount == "" {
		return ""
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(own), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			sum := sha256.Sum256([]byte(root))
			return filepath.Join(mount, p, "upkeep-"+hex.EncodeToString(sum[:4]))
		}
	}
	return ""
}
