package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

const fast = `
ready_after = "0s"
[restart]
backoff = "5ms"
max_backoff = "50ms"
stable_after = "10s"
[stop]
timeout = "3s"
`

func TestKilledChildIsRestarted(t *testing.T) {
	h := newHost(t)
	h.write("service-sleep", `command = ["/bin/sleep", "1000"]`+fast)
	h.start()
	first := h.waitState("service-sleep", api.Running)
	syscall.Kill(first.Pid, syscall.SIGKILL)
	var st api.Status
	h.eventually(5*time.Second, "a new pid", func() bool {
		st = h.status("service-sleep")
		return st.State == api.Running && st.Pid != 0 && st.Pid != first.Pid
	})
	if st.Restarts != 1 || st.LastExit != "signal KILL" {
		t.Errorf("restarts=%d last exit=%q, want 1 and signal KILL", st.Restarts, st.LastExit)
	}
	pid, err := proc.ReadPID(filepath.Join(h.root, "run/upkeep/service-sleep.pid"))
	if err != nil || pid != st.Pid {
		t.Errorf("pid file says %d (%v), status says %d", pid, err, st.Pid)
	}
}

func TestCrashLoopBacksOffThenFatal(t *testing.T) {
	h := newHost(t)
	h.write("service-crash", `script = "echo run; exit 3"
ready_after = "0s"
[restart]
backoff = "20ms"
max_backoff = "1s"
limit = 4
window = "1m"
`)
	h.start()
	seenBackoff := false
	h.eventually(10*time.Second, "fatal", func() bool {
		st := h.status("service-crash")
		seenBackoff = seenBackoff || st.State == api.Backoff
		return st.State == api.Fatal
	})
	st := h.status("service-crash")
	if !seenBackoff {
		t.Error("never saw backoff between crashes")
	}
	if got := strings.Count(h.log("service-crash.log"), "run\n"); got != 4 {
		t.Errorf("ran %d times, want exactly limit=4", got)
	}
	if st.LastExit != "exit 3" || st.Restarts != 3 {
		t.Errorf("last exit %q restarts %d, want exit 3 and 3", st.LastExit, st.Restarts)
	}
	// A manual start forgets the history and tries again.
	if err := h.d.Start(context.Background(), []string{"service-crash"}, false); err != nil {
		t.Fatal(err)
	}
	h.waitState("service-crash", api.Fatal)
	if got := strings.Count(h.log("service-crash.log"), "run\n"); got != 8 {
		t.Errorf("after a manual start ran %d times in all, want 8", got)
	}
}

func TestStopKillsWholeGroupAfterTimeout(t *testing.T) {
	h := newHost(t)
	h.write("service-stubborn", `script = "trap '' TERM; sleep 1000 & sleep 1000"
ready_after = "0s"
[stop]
timeout = "500ms"
`)
	h.write("service-polite", `script = "sleep 1000 & sleep 1000"
ready_after = "0s"
`)
	h.start()
	for _, tc := range []struct {
		name    string
		min, mx time.Duration
	}{{"service-stubborn", 500 * time.Millisecond, 3 * time.Second}, {"service-polite", 0, 2 * time.Second}} {
		st := h.waitState(tc.name, api.Running)
		h.eventually(5*time.Second, "both sleeps", func() bool { return len(groupMembers(st.Pid)) == 3 })
		t0 := time.Now()
		if err := h.d.Stop(context.Background(), []string{tc.name}, true); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		if took < tc.min || took > tc.mx {
			t.Errorf("%s: stop took %v, want within [%v, %v]", tc.name, took, tc.min, tc.mx)
		}
		if left := groupMembers(st.Pid); len(left) != 0 {
			t.Errorf("%s: %d processes left after stop: %v", tc.name, len(left), left)
		}
		if got := h.status(tc.name); got.State != api.Stopped || got.Pid != 0 {
			t.Errorf("%s: state %s pid %d after stop", tc.name, got.State, got.Pid)
		}
	}
}

func TestCgroupStopsProcessesThatLeftTheGroup(t *testing.T) {
	h := newHost(t)
	h.write("service-escape", `script = "setsid sleep 1000 & sleep 1000"`+fast)
	h.start()
	if h.d.cgroups == nil {
		if os.Geteuid() == 0 {
			t.Fatal("no cgroups as root: a writable cgroup2 hierarchy is a given on CI (.ci/run)")
		}
		t.Skip("cgroups unavailable here (needs root and a writable cgroup2 hierarchy)")
	}
	h.waitState("service-escape", api.Running)
	sv, _ := h.d.get("service-escape")
	var procs []int
	h.eventually(5*time.Second, "three processes in the cgroup", func() bool {
		procs = sv.cg.Procs()
		return len(procs) == 3
	})
	if err := h.d.Stop(context.Background(), []string{"service-escape"}, true); err != nil {
		t.Fatal(err)
	}
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("pid %d survived the stop", pid)
		}
	}
}

func TestLeftoversAreCleanedBeforeRestart(t *testing.T) {
	h := newHost(t)
	// The "master" exits; its "worker" would keep running without cleanup.
	h.write("www-master", `script = """
echo start
sleep 1000 &
echo $! > worker.pid
sleep 1000
"""`+fast)
	h.start()
	st := h.waitState("www-master", api.Running)
	dir := filepath.Join(h.root, "var/www/www-master")
	var worker int
	h.eventually(5*time.Second, "worker pid", func() bool {
		worker, _ = proc.ReadPID(filepath.Join(dir, "worker.pid"))
		return worker != 0
	})
	syscall.Kill(st.Pid, syscall.SIGKILL)
	h.eventually(5*time.Second, "restart", func() bool {
		s := h.status("www-master")
		return s.State == api.Running && s.Pid != st.Pid
	})
	if alive(worker) {
		t.Errorf("the killed master's worker %d is still running after the restart", worker)
	}
}

func TestDependsOnOrder(t *testing.T) {
	h := newHost(t)
	order := filepath.Join(h.root, "order")
	svc := func(name string) string {
		return `script = """
echo "start ` + name + `" >> ` + order + `
trap 'echo "stop ` + name + `" >> ` + order + `; exit 0' TERM
sleep 1000 & wait
"""
[stop]
signal = "TERM"
`
	}
	h.write("service-db", svc("db")+"\n")
	h.write("api-app", `depends_on = ["service-db"]`+"\n"+svc("app"))
	h.write("www-front", `depends_on = ["api-app"]`+"\n"+svc("front"))
	h.start()
	h.waitState("www-front", api.Running)
	db, app, front := h.status("service-db"), h.status("api-app"), h.status("www-front")
	// ready_after defaults to 1s: each starts after the one before it runs.
	if app.StartedAt.Sub(db.StartedAt) < 900*time.Millisecond || front.StartedAt.Sub(app.StartedAt) < 900*time.Millisecond {
		t.Errorf("start times db=%v app=%v front=%v: dependents did not wait", db.StartedAt, app.StartedAt, front.StartedAt)
	}
	// Stopping the database stops its dependents first.
	if err := h.d.Stop(context.Background(), []string{"service-db"}, true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(order)
	want := "start db\nstart app\nstart front\nstop front\nstop app\nstop db\n"
	if string(b) != want {
		t.Errorf("order:\n%s\nwant:\n%s", b, want)
	}
	// Starting the front starts what it needs.
	if err := h.d.Start(context.Background(), []string{"www-front"}, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"service-db", "api-app", "www-front"} {
		if st := h.status(n); st.State != api.Running {
			t.Errorf("%s is %s after starting www-front", n, st.State)
		}
	}
	// Daemon shutdown: reverse order.
	os.WriteFile(order, nil, 0o644)
	h.shutdown()
	b, _ = os.ReadFile(order)
	if string(b) != "stop front\nstop app\nstop db\n" {
		t.Errorf("shutdown order:\n%s", b)
	}
}

func TestReloadTouchesOnlyWhatChanged(t *testing.T) {
	h := newHost(t)
	for _, n := range []string{"service-a", "service-b", "service-c"} {
		h.write(n, `command = ["/bin/sleep", "1000"]`+fast)
	}
	h.start()
	before := map[string]int{}
	for _, n := range []string{"service-a", "service-b", "service-c"} {
		before[n] = h.waitState(n, api.Running).Pid
	}
	h.write("service-b", `command = ["/bin/sleep", "1001"]`+fast)
	os.RemoveAll(filepath.Join(h.root, "var/www/service-c"))
	h.write("service-d", `command = ["/bin/sleep", "1000"]`+fast)
	res, err := h.d.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Added, ",") != "service-d" || strings.Join(res.Removed, ",") != "service-c" ||
		strings.Join(res.Changed, ",") != "service-b" || strings.Join(res.Unchanged, ",") != "service-a" {
		t.Errorf("reload result %+v", res)
	}
	if st := h.status("service-a"); st.Pid != before["service-a"] {
		t.Errorf("unchanged service-a was restarted: %d -> %d", before["service-a"], st.Pid)
	}
	h.eventually(5*time.Second, "service-b restarted", func() bool {
		st := h.status("service-b")
		return st.State == api.Running && st.Pid != before["service-b"]
	})
	if alive(before["service-c"]) {
		t.Error("removed service-c still runs")
	}
	if _, err := h.d.Status([]string{"service-c"}); err == nil {
		t.Error("service-c still known")
	}
	h.waitState("service-d", api.Running)
}

func TestBrokenDefinitionIsReportedAndHarmless(t *testing.T) {
	h := newHost(t)
	h.write("service-good", `command = ["/bin/sleep", "1000"]`+fast)
	h.write("service-bad", "command = [\"/bin/true\"]\n[restart]\npolicy = \"sometimes\"\n")
	h.start()
	good := h.waitState("service-good", api.Running)
	all, _ := h.d.Status(nil)
	var bad api.Status
	for _, s := range all {
		if s.Name == "service-bad" {
			bad = s
		}
	}
	if !strings.Contains(bad.Error, "service-bad/service.toml:3:1: restart.policy:") {
		t.Errorf("broken service's error = %q, want its position", bad.Error)
	}
	// A reload with a now-broken definition keeps the old one running.
	h.write("service-good", "command = [\"/bin/sleep\", \n")
	res, err := h.d.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Problems, "service-good/service.toml:1:") {
		t.Errorf("reload problems = %q", res.Problems)
	}
	if st := h.status("service-good"); st.Pid != good.Pid || st.State != api.Running {
		t.Errorf("service-good disturbed by its broken edit: %+v", st)
	}
	if !strings.Contains(strings.Join(res.Broken, ","), "service-good") || len(res.Removed)+len(res.Changed) != 0 {
		t.Errorf("reload result %+v, want service-good broken, nothing removed or changed", res)
	}
	if st := h.status("service-good"); !strings.Contains(st.Error, "service-good/service.toml:1:") {
		t.Errorf("status of the running service with a broken edit: error %q, want its position", st.Error)
	}
}

func TestStalePidFileIsNeverSignalled(t *testing.T) {
	h := newHost(t)
	victim := spawnVictim(t)
	run := filepath.Join(h.root, RunDir)
	os.MkdirAll(run, 0o755)
	// A record naming a pid that is now someone else's: same pid, other
	// start time.
	proc.WriteRecord(filepath.Join(run, "service-old.state"), proc.Record{Pid: victim.Pid, StartTime: victim.StartTime + 1, Pgid: victim.Pid})
	proc.WritePID(filepath.Join(run, "service-old.pid"), victim.Pid)
	h.write("service-old", `command = ["/bin/sleep", "1000"]`+fast)
	h.start()
	h.waitState("service-old", api.Running)
	if !alive(victim.Pid) {
		t.Fatal("the daemon killed an unrelated process named by a stale pid file")
	}
	if pid, _ := proc.ReadPID(filepath.Join(run, "service-old.pid")); pid == victim.Pid {
		t.Error("stale pid file kept")
	}
}

func TestRunsAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("switching users needs root")
	}
	h := newHost(t)
	h.write("service-nobody", `user = "nobody"
script = "id -u; id -g; echo HOME=$HOME USER=$USER; sleep 1000"
`+fast)
	h.start()
	h.waitState("service-nobody", api.Running)
	h.eventually(5*time.Second, "output", func() bool { return strings.Contains(h.log("service-nobody.log"), "HOME=") })
	lines := strings.Split(h.log("service-nobody.log"), "\n")
	if lines[0] != "65534" {
		t.Errorf("uid %q, want 65534 (nobody)", lines[0])
	}
	if !strings.Contains(lines[2], "USER=nobody") || !strings.Contains(lines[2], "HOME="+filepath.Join(h.root, "var/www/service-nobody")) {
		t.Errorf("env line %q", lines[2])
	}
}

func TestEnvironmentAndLogs(t *testing.T) {
	h := newHost(t)
	dir := filepath.Join(h.root, "var/www/service-env")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("# comment\nexport FROM_FILE=file\nBOTH=file\n"), 0o644)
	h.write("service-env", `env_file = ".env"
env = { BOTH = "inline", HOME = "/custom" }
script = "echo FROM_FILE=$FROM_FILE BOTH=$BOTH HOME=$HOME SVC=$UPKEEP_SERVICE; echo oops >&2; sleep 1000"
`+fast)
	h.start()
	h.waitState("service-env", api.Running)
	h.eventually(5*time.Second, "output", func() bool { return h.log("service-env.error.log") == "oops\n" })
	if got := h.log("service-env.log"); got != "FROM_FILE=file BOTH=inline HOME=/custom SVC=service-env\n" {
		t.Errorf("stdout log %q", got)
	}
}

func TestRestartPolicies(t *testing.T) {
	h := newHost(t)
	h.write("service-onfail", `script = "exit 0"
ready_after = "0s"
[restart]
policy = "on-failure"
`)
	h.write("service-never", `script = "exit 1"
ready_after = "0s"
[restart]
policy = "never"
`)
	h.start()
	for _, n := range []string{"service-onfail", "service-never"} {
		st := h.waitState(n, api.Exited)
		if st.Restarts != 0 {
			t.Errorf("%s restarted %d times", n, st.Restarts)
		}
	}
}

func TestSignalReachesMainProcess(t *testing.T) {
	h := newHost(t)
	trapped := filepath.Join(h.root, "trapped")
	h.write("service-usr1", `script = """
trap 'echo got USR1' USR1
: > `+trapped+`
while true; do sleep 0.05; done
"""`+fast)
	h.start()
	h.waitState("service-usr1", api.Running)
	h.eventually(10*time.Second, "sh to install its trap", func() bool { _, err := os.Stat(trapped); return err == nil })
	if err := h.d.Signal("service-usr1", syscall.SIGUSR1, false); err != nil {
		t.Fatal(err)
	}
	h.eventually(5*time.Second, "trap output", func() bool { return strings.Contains(h.log("service-usr1.log"), "got USR1") })
	if err := h.d.Signal("service-nope", syscall.SIGUSR1, false); err == nil {
		t.Error("signal to an unknown service succeeded")
	}
}

func TestDaemonizingServiceFollowedByPidFile(t *testing.T) {
	h := newHost(t)
	h.write("service-forks", `start_command = ["/bin/sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > app.pid"]
pidfile = "app.pid"
ready_after = "0s"
[restart]
backoff = "5ms"
`)
	h.start()
	st := h.waitState("service-forks", api.Running)
	b, _ := os.ReadFile(filepath.Join(h.root, "var/www/service-forks/app.pid"))
	if strings.TrimSpace(string(b)) != strconv.Itoa(st.Pid) {
		t.Fatalf("following pid %d, pid file says %s", st.Pid, b)
	}
	syscall.Kill(st.Pid, syscall.SIGKILL)
	h.eventually(5*time.Second, "restart via start_command", func() bool {
		s := h.status("service-forks")
		return s.State == api.Running && s.Pid != st.Pid
	})
	now := h.status("service-forks")
	if err := h.d.Stop(context.Background(), []string{"service-forks"}, true); err != nil {
		t.Fatal(err)
	}
	if alive(now.Pid) {
		t.Error("daemonized process survived stop")
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	h := newHost(t)
	h.start()
	_, err := New(h.root, h.d.log)
	if err == nil || !strings.Contains(err.Error(), "another upkeep daemon") {
		t.Fatalf("second daemon: %v", err)
	}
}

func TestAutostartPullsInDependencies(t *testing.T) {
	h := newHost(t)
	h.write("service-db", `command = ["/bin/sleep", "1000"]
autostart = false
ready_after = "0s"
`)
	h.write("api-app", `depends_on = ["service-db"]
command = ["/bin/sleep", "1000"]
ready_after = "0s"
`)
	h.start()
	h.waitState("api-app", api.Running)
	if st := h.status("service-db"); st.State != api.Running {
		t.Errorf("dependency is %s", st.State)
	}
}

func TestStopWhileStartCommandRuns(t *testing.T) {
	h := newHost(t)
	h.write("service-slow", `script = "sleep 0.5; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > slow.pid"
pidfile = "slow.pid"
ready_after = "0s"
`)
	h.start()
	h.eventually(5*time.Second, "start command running", func() bool {
		return h.status("service-slow").Detail == "running start command"
	})
	if err := h.d.Stop(context.Background(), []string{"service-slow"}, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // past the point the start command would have forked
	if st := h.status("service-slow"); st.State != api.Stopped {
		t.Errorf("state %s after stop during start command", st.State)
	}
	if b, err := os.ReadFile(filepath.Join(h.root, "var/www/service-slow/slow.pid")); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if alive(pid) {
			t.Errorf("the start command's daemon %d runs after stop", pid)
		}
	}
}

// restartDelays returns, from the journal, how long each backoff lasted.
func restartDelays(h *host, name string) []time.Duration {
	var out []time.Duration
	var entered time.Time
	for _, e := range h.d.Events(name) {
		if e.Kind != "state" {
			continue
		}
		if e.State == "backoff" {
			entered = e.Time
		} else if e.From == "backoff" && !entered.IsZero() {
			out = append(out, e.Time.Sub(entered))
		}
	}
	return out
}

func TestBackoffDoublesAndStableRunResetsIt(t *testing.T) {
	h := newHost(t)
	h.write("service-crashy", `script = "exit 1"
ready_after = "0s"
[restart]
backoff = "40ms"
max_backoff = "200ms"
limit = 100
`)
	h.write("service-steady", `script = "sleep 0.15; exit 1"
ready_after = "0s"
[restart]
backoff = "40ms"
max_backoff = "1s"
stable_after = "100ms"
limit = 100
`)
	h.start()
	h.eventually(10*time.Second, "five backoffs each", func() bool {
		return len(restartDelays(h, "service-crashy")) >= 5 && len(restartDelays(h, "service-steady")) >= 4 &&
			len(restartSchedule(h, "service-crashy")) >= 5 && len(restartSchedule(h, "service-steady")) >= 4
	})
	// The schedule is exact (the daemon says it when it enters backoff);
	// how long each backoff really lasted is only bounded below by it,
	// since a loaded machine may fire the timer late, never early.
	check := func(name string, want []time.Duration, what string) {
		t.Helper()
		sched, took := restartSchedule(h, name), restartDelays(h, name)
		for i, w := range want {
			if sched[i] != w {
				t.Errorf("%s: backoff %d scheduled %v, want %v (%s)", name, i, sched[i], w, what)
			}
			if took[i] < sched[i] || took[i] > sched[i]+5*time.Second {
				t.Errorf("%s: backoff %d lasted %v, scheduled %v", name, i, took[i], sched[i])
			}
		}
	}
	ms := time.Millisecond
	check("service-crashy", []time.Duration{40 * ms, 80 * ms, 160 * ms, 200 * ms, 200 * ms}, "doubling, capped at max_backoff")
	check("service-steady", []time.Duration{40 * ms, 40 * ms, 40 * ms, 40 * ms}, "a stable run resets it to the initial backoff")
}

// restartSchedule returns, from the journal, the delay each backoff was
// scheduled for ("restart in 40ms").
func restartSchedule(h *host, name string) []time.Duration {
	var out []time.Duration
	for _, e := range h.d.Events(name) {
		_, in, ok := strings.Cut(e.Message, "restart in ")
		if e.Kind != "state" || e.State != "backoff" || !ok {
			continue
		}
		d, err := time.ParseDuration(in)
		if err != nil {
			h.t.Fatalf("backoff message %q: %v", e.Message, err)
		}
		out = append(out, d)
	}
	return out
}

// A start guard (the daemon's db_mount check) keeps a service from
// starting while it refuses, as a failed start the restart policy
// retries; once it allows, the service starts.
func TestStartGuard(t *testing.T) {
	h := newHost(t)
	mounted := filepath.Join(h.root, "mounted")
	h.guard = func(s *spec.Service) error {
		if s.Name != "service-db" {
			return nil
		}
		if _, err := os.Stat(mounted); err != nil {
			return fmt.Errorf("no volume for %s", s.Name)
		}
		return nil
	}
	h.write("service-db", `command = ["/bin/sleep", "1000"]
ready_after = "0s"
[restart]
backoff = "50ms"
max_backoff = "50ms"
limit = 100
[stop]
timeout = "3s"
`)
	h.write("service-other", `command = ["/bin/sleep", "1000"]`+fast)
	h.start()
	h.waitState("service-other", api.Running)
	h.eventually(5*time.Second, "a refused start", func() bool {
		return strings.Contains(h.status("service-db").LastExit, "start refused: no volume for service-db")
	})
	if st := h.status("service-db"); st.Pid != 0 || st.State == api.Running {
		t.Fatalf("refused, yet %s with pid %d", st.State, st.Pid)
	}
	if err := os.WriteFile(mounted, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := h.waitState("service-db", api.Running); st.Pid == 0 {
		t.Errorf("running without a pid")
	}
}

// stop --no-wait keeps the order of a waited stop: dependents first, even
// when one of them is slow to go. The caller does not wait for any of it.
func TestStopNoWaitStopsDependentsFirst(t *testing.T) {
	h := newHost(t)
	order := filepath.Join(h.root, "order")
	svc := func(name, linger string) string {
		return `script = """
trap '` + linger + `echo "stop ` + name + `" >> ` + order + `; exit 0' TERM
echo "start ` + name + `" >> ` + order + `
while true; do sleep 0.05; done
"""
ready_after = "0s"
[stop]
signal = "TERM"
timeout = "30s"
`
	}
	h.write("service-db", svc("db", ""))
	h.write("api-app", `depends_on = ["service-db"]`+"\n"+svc("app", ""))
	h.write("www-front", `depends_on = ["api-app"]`+"\n"+svc("front", "sleep 1; "))
	h.start()
	// A short sleep in a loop, not "sleep 1000 & wait": a TERM that finds
	// the sleep forked but not yet exec'd is taken by sh's handler in the
	// child and lost, and a long sleep would then hold the cgroup until the
	// 30 s stop timeout (1 run in 40 under -race).
	h.eventually(10*time.Second, "three traps installed", func() bool {
		b, _ := os.ReadFile(order)
		return strings.Count(string(b), "start ") == 3
	})
	if err := h.d.Stop(context.Background(), []string{"service-db"}, false); err != nil {
		t.Fatal(err)
	}
	// The front lingers a second in its trap, so a stop that waited for
	// the order would not be back yet with the database still up.
	if st := h.status("service-db"); st.State != api.Running {
		t.Errorf("service-db is %s as stop --no-wait returns, want running until its dependents are down", st.State)
	}
	for _, n := range []string{"www-front", "api-app", "service-db"} {
		h.waitState(n, api.Stopped)
	}
	b, _ := os.ReadFile(order)
	stops := string(b)[strings.Index(string(b), "stop "):]
	if want := "stop front\nstop app\nstop db\n"; stops != want {
		t.Errorf("stop order:\n%s\nwant:\n%s", stops, want)
	}
}
