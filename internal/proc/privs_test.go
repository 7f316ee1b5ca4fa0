package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching users and capabilities needs root")
	}
}

// report is what a child says about itself: /proc/<pid>/status and
// /proc/<pid>/limits of the shell that Spawn started (the pid Spawn
// returned, after the shim's exec), read while it is still running.
type report struct {
	pid     int
	execEnv string // the shim's variable as the service sees it
	status  map[string]string
	limits  map[string][2]string // "Max open files" -> soft, hard
	stderr  string
	exit    Exit
}

const reportScript = `cat /proc/$$/status /proc/$$/limits; echo pid=$$; echo execenv=${UPKEEP_EXEC_PRIVS:-none}; echo; ` +
	`[ -n "$HOLD" ] && read x; exit 0`

// spawnReport starts sh with cred and p and reads what it says. With
// hold, the shell waits (on stdin) after its report until the test is
// done with it, so its identity can be checked while it runs.
func spawnReport(t *testing.T, cred *syscall.Credential, p *Privileges, check func(pr *Process)) report {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	inR, inW, _ := os.Pipe()
	defer outR.Close()
	defer errR.Close()
	defer inW.Close()
	env := []string{"PATH=/usr/bin:/bin"}
	if check != nil {
		env = append(env, "HOLD=1")
	}
	pr, err := NewReaper().Spawn(Attr{
		Argv:     []string{"sh", "-c", reportScript},
		Env:      env,
		Dir:      "/",
		Files:    []uintptr{inR.Fd(), outW.Fd(), errW.Fd()},
		Cred:     cred,
		Privs:    p,
		CgroupFD: -1,
	})
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pr.Pid, syscall.SIGKILL); <-pr.Done() })
	var out, serr bytes.Buffer
	done := make(chan struct{})
	go func() { serr.ReadFrom(errR); close(done) }()
	if check != nil {
		// Read up to the report's end (an empty line) while the shell
		// still runs, check it, then let it go.
		buf := make([]byte, 4096)
		deadline := time.Now().Add(10 * time.Second)
		outR.SetReadDeadline(deadline)
		for !bytes.Contains(out.Bytes(), []byte("\n\n")) {
			n, err := outR.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		check(pr)
		inW.Write([]byte("\n"))
	}
	out.ReadFrom(outR)
	<-done
	r := report{status: map[string]string{}, limits: map[string][2]string{}, stderr: serr.String(), exit: pr.Exit()}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.Contains(k, "  ") {
			r.status[k] = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "execenv="); ok {
			r.execEnv = v
		}
		if v, ok := strings.CutPrefix(line, "pid="); ok {
			r.pid, _ = strconv.Atoi(v)
		}
		if strings.HasPrefix(line, "Max ") {
			f := strings.Fields(line[26:])
			if len(f) >= 2 {
				r.limits[strings.TrimSpace(line[:26])] = [2]string{f[0], f[1]}
			}
		}
	}
	return r
}

func capMask(caps ...uintptr) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

func ownStatus(t *testing.T, key string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return ""
}

func u32(v uint32) *uint32 { return &v }
func yes(v bool) *bool     { return &v }

func nobody(t *testing.T, groups ...string) *syscall.Credential {
	cred, err := Credential("nobody", "", groups)
	if err != nil {
		t.Fatalf("user nobody (Debian base-passwd): %v", err)
	}
	return cred
}

func TestNonRootServiceGetsExactlyItsCapabilities(t *testing.T) {
	needRoot(t)
	cred := nobody(t, "adm")
	var hard syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &hard)
	r := spawnReport(t, cred, &Privileges{
		Capabilities: []uintptr{unix.CAP_NET_BIND_SERVICE},
		Umask:        u32(0o027),
		Limits: []Limit{
			{Resource: unix.RLIMIT_NOFILE, Soft: 512, Hard: 1000},
			{Resource: unix.RLIMIT_CORE, Soft: 0, Hard: 0},
			{Resource: unix.RLIMIT_NPROC, Soft: 300, Hard: 300},
		},
	}, func(p *Process) {
		if !Same(p.Pid, p.StartTime) {
			t.Error("after the shim's exec the start time read at spawn no longer names the process")
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid)); strings.TrimSpace(string(b)) != "sh" {
			t.Errorf("process %d is %q, want the service's sh", p.Pid, b)
		}
	})
	if !r.exit.Success() {
		t.Fatalf("exit %s, stderr %q", r.exit, r.stderr)
	}
	if r.execEnv != "none" {
		t.Errorf("the shim's settings reached the service's environment: %q", r.execEnv)
	}
	if r.pid != r.exit.Process {
		t.Errorf("service pid %d, Spawn said %d", r.pid, r.exit.Process)
	}
	bind := capMask(unix.CAP_NET_BIND_SERVICE)
	for k, want := range map[string]string{
		"CapBnd": bind, "CapAmb": bind, "CapEff": bind, "CapPrm": bind, "CapInh": bind,
		"NoNewPrivs": "1", "Umask": "0027", "Groups": "4 65534",
		"Uid": "65534\t65534\t65534\t65534", "Gid": "65534\t65534\t65534\t65534",
	} {
		if got := r.status[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string][2]string{
		"Max open files": {"512", "1000"}, "Max core file size": {"0", "0"}, "Max processes": {"300", "300"},
	} {
		if got := r.limits[k]; got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
}

func TestNonRootServiceDefaultsToNoCapabilities(t *testing.T) {
	needRoot(t)
	r := spawnReport(t, nobody(t), &Privileges{}, nil)
	if !r.exit.Success() {
		t.Fatalf("exit %s, stderr %q", r.exit, r.stderr)
	}
	none := capMask()
	for k, want := range map[string]string{"CapBnd": none, "CapAmb": none, "CapEff": none, "CapPrm": none, "NoNewPrivs": "1", "Groups": "65534"} {
		if got := r.status[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// An explicit no_new_privileges = false wins.
	r = spawnReport(t, nobody(t), &Privileges{NoNewPrivileges: yes(false)}, nil)
	if r.status["NoNewPrivs"] != "0" || r.status["CapBnd"] != none {
		t.Errorf("no_new_privileges=false: NoNewPrivs %q CapBnd %q", r.status["NoNewPrivs"], r.status["CapBnd"])
	}
}

func TestRootServiceKeepsRootsSetUnlessLimited(t *testing.T) {
	needRoot(t)
	own := ownStatus(t, "CapBnd")
	cred, err := Credential("", "", []string{"adm"})
	if err != nil {
		t.Fatal(err)
	}
	r := spawnReport(t, cred, &Privileges{Umask: u32(0o077)}, nil)
	if !r.exit.Success() {
		t.Fatalf("exit %s, stderr %q", r.exit, r.stderr)
	}
	for k, want := range map[string]string{"CapBnd": own, "CapEff": own, "NoNewPrivs": "0", "Umask": "0077", "Groups": "4", "Uid": "0\t0\t0\t0"} {
		if got := r.status[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	keep := []uintptr{unix.CAP_CHOWN, unix.CAP_NET_BIND_SERVICE}
	r = spawnReport(t, nil, &Privileges{Capabilities: keep, NoNewPrivileges: yes(true)}, nil)
	if !r.exit.Success() {
		t.Fatalf("exit %s, stderr %q", r.exit, r.stderr)
	}
	for k, want := range map[string]string{"CapBnd": capMask(keep...), "CapEff": capMask(keep...), "NoNewPrivs": "1", "Uid": "0\t0\t0\t0"} {
		if got := r.status[k]; got != want {
			t.Errorf("limited root: %s = %q, want %q", k, got, want)
		}
	}
}

// An impossible setting stops the start: the shim says which one on
// stderr and exits 127 before the program runs, never running it with
// less than asked.
func TestImpossibleSettingFailsTheStart(t *testing.T) {
	needRoot(t)
	b, _ := os.ReadFile("/proc/sys/fs/nr_open")
	nrOpen, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if nrOpen == 0 {
		t.Fatal("no /proc/sys/fs/nr_open")
	}
	for name, c := range map[string]struct {
		cred *syscall.Credential
		p    *Privileges
		want string
	}{
		"nofile above nr_open": {nobody(t), &Privileges{Limits: []Limit{{Resource: unix.RLIMIT_NOFILE, Soft: nrOpen + 1, Hard: nrOpen + 1}}}, "limit nofile"},
		"soft above hard":      {nil, &Privileges{Limits: []Limit{{Resource: unix.RLIMIT_CORE, Soft: 10, Hard: 5}}}, "limit core"},
		"unknown capability":   {nobody(t), &Privileges{Capabilities: []uintptr{63}}, "capability 63"},
		"missing directory":    {nobody(t), &Privileges{}, "directory"},
	} {
		t.Run(name, func(t *testing.T) {
			outR, outW, _ := os.Pipe()
			errR, errW, _ := os.Pipe()
			dir := "/"
			if name == "missing directory" {
				dir = "/nonexistent-dir-for-upkeep-test"
			}
			pr, err := NewReaper().Spawn(Attr{Argv: []string{"/bin/echo", "ran"}, Dir: dir, Files: []uintptr{0, outW.Fd(), errW.Fd()}, Cred: c.cred, Privs: c.p, CgroupFD: -1})
			outW.Close()
			errW.Close()
			if err != nil {
				t.Fatal(err)
			}
			var out, serr bytes.Buffer
			out.ReadFrom(outR)
			serr.ReadFrom(errR)
			ex := pr.Exit()
			if ex.Status.ExitStatus() != shimFailed || out.Len() > 0 {
				t.Errorf("exit %s, output %q: want 127 before the program runs", ex, out.String())
			}
			if !strings.Contains(serr.String(), c.want) || !strings.HasPrefix(serr.String(), "upkeep: /bin/echo: not started: ") {
				t.Errorf("stderr %q, want it to name %q", serr.String(), c.want)
			}
		})
	}
}

func TestCommonPathSkipsTheShim(t *testing.T) {
	um := uint32(daemonUmask())
	no := false
	root := &syscall.Credential{Uid: 0, Gid: 0}
	if os.Geteuid() != 0 {
		root = nil
	}
	if pl := shimPlan("x", root, &Privileges{Umask: &um, NoNewPrivileges: nil}); pl != nil && os.Geteuid() == 0 {
		t.Errorf("a root service with the daemon's umask goes through the shim: %+v", pl)
	}
	if pl := shimPlan("x", nil, nil); pl != nil {
		t.Errorf("no privileges, yet a shim: %+v", pl)
	}
	other := um ^ 0o7
	for name, p := range map[string]*Privileges{
		"umask":  {Umask: &other},
		"limits": {Limits: []Limit{{Resource: unix.RLIMIT_CORE}}},
		"nnp":    {NoNewPrivileges: yes(true)},
	} {
		if shimPlan("x", root, p) == nil {
			t.Errorf("%s: no shim", name)
		}
	}
	if os.Geteuid() == 0 && shimPlan("x", &syscall.Credential{Uid: 65534}, &Privileges{NoNewPrivileges: &no}) == nil {
		t.Error("a non-root service of a root daemon must have its bounding set cut")
	}
}

// Go raises its own RLIMIT_NOFILE soft limit at start; services must get
// the one the daemon was started with, through the shim or not. The test
// runs itself again under a soft limit of 1024 to see it.
func TestServicesGetTheNofileTheDaemonWasStartedWith(t *testing.T) {
	if os.Getenv("UPKEEP_TEST_NOFILE") == "" {
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		if lim.Max < 2048 {
			t.Skipf("hard limit %d leaves no room to raise", lim.Max)
		}
		// Through Spawn, not os/exec: the reaper owns wait4 in this binary.
		outR, outW, _ := os.Pipe()
		defer outR.Close()
		p, err := NewReaper().Spawn(Attr{
			Argv:     []string{"sh", "-c", `ulimit -Sn 1024 && exec "$0" -test.run='^TestServicesGetTheNofileTheDaemonWasStartedWith$' -test.v`, os.Args[0]},
			Env:      append(os.Environ(), "UPKEEP_TEST_NOFILE=1024"),
			Files:    []uintptr{0, outW.Fd(), outW.Fd()},
			CgroupFD: -1,
		})
		outW.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		out.ReadFrom(outR)
		if ex := p.Exit(); !ex.Success() || !strings.Contains(out.String(), "--- PASS") {
			t.Fatalf("inner run: %s\n%s", ex, out.String())
		}
		return
	}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur == 1024 {
		t.Fatal("Go did not raise the soft limit; the test proves nothing")
	}
	cases := map[string]*Privileges{"plain": nil, "shim": {NoNewPrivileges: yes(true)}}
	for name, p := range cases {
		r := spawnReport(t, nil, p, nil)
		if got := r.limits["Max open files"][0]; got != "1024" {
			t.Errorf("%s: soft nofile %s, want 1024 (daemon runs with %d)", name, got, lim.Cur)
		}
	}
}

func TestCredential(t *testing.T) {
	if _, err := Credential("no-such-user-upkeep", "", nil); err == nil || !strings.Contains(err.Error(), `user "no-such-user-upkeep"`) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := Credential("", "", []string{"no-such-group-upkeep"}); err == nil || !strings.Contains(err.Error(), `groups: group "no-such-group-upkeep"`) {
		t.Errorf("unknown group: %v", err)
	}
	needRoot(t)
	c, err := Credential("", "", nil)
	if err != nil || c == nil || len(c.Groups) != 0 {
		t.Errorf("no user, no groups: %+v, %v; want a credential that clears the daemon's groups", c, err)
	}
	c, err = Credential("nobody", "adm", []string{"www-data", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Uid != 65534 || c.Gid != 4 || fmt.Sprint(c.Groups) != "[65534 33 4]" {
		t.Errorf("nobody with group adm and groups: %+v", c)
	}
}

// Limits are set as root before the user switch, as systemd sets them: a
// service may get a hard limit above the daemon's when the daemon may
// raise it (CAP_SYS_RESOURCE), and fails to start when it may not.
func TestNofileAboveTheDaemonsHardLimit(t *testing.T) {
	needRoot(t)
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	b, _ := os.ReadFile("/proc/sys/fs/nr_open")
	nrOpen, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if lim.Max >= nrOpen {
		t.Skipf("the hard limit %d is already the kernel's maximum", lim.Max)
	}
	want := lim.Max + 1
	r := spawnReport(t, nobody(t), &Privileges{Limits: []Limit{{Resource: unix.RLIMIT_NOFILE, Soft: want, Hard: want}}}, nil)
	if !hasCap(t, unix.CAP_SYS_RESOURCE) {
		if r.exit.Status.ExitStatus() != shimFailed || !strings.Contains(r.stderr, "limit nofile: operation not permitted") || r.pid != 0 {
			t.Errorf("without CAP_SYS_RESOURCE: exit %s, stderr %q, ran %v", r.exit, r.stderr, r.pid != 0)
		}
		return
	}
	if got := r.limits["Max open files"]; got != [2]string{strconv.FormatUint(want, 10), strconv.FormatUint(want, 10)} {
		t.Errorf("with CAP_SYS_RESOURCE: nofile %v, want %d (exit %s, %q)", got, want, r.exit, r.stderr)
	}
}

func hasCap(t *testing.T, c uintptr) bool {
	eff, err := strconv.ParseUint(ownStatus(t, "CapEff"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return eff&(1<<c) != 0
}

// The shim's init (package a.upkeep.local/shim) runs before every package
// of the binary that is not the standard library's: GODEBUG=inittrace=1
// shows what initialised before the shim exec'd the program.
func TestShimRunsBeforeOtherInits(t *testing.T) {
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	pr, err := NewReaper().Spawn(Attr{
		Argv:     []string{"sh", "-c", "echo ran"},
		Env:      []string{"PATH=/usr/bin:/bin", "GODEBUG=inittrace=1"},
		Dir:      "/",
		Files:    []uintptr{0, outW.Fd(), errW.Fd()},
		Privs:    &Privileges{NoNewPrivileges: yes(true)},
		CgroupFD: -1,
	})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, serr bytes.Buffer
	out.ReadFrom(outR)
	serr.ReadFrom(errR)
	if ex := pr.Exit(); !ex.Success() || out.String() != "ran\n" {
		t.Fatalf("exit %s, output %q, stderr %q", ex, out.String(), serr.String())
	}
	checkInitTrace(t, serr.String())
}

// checkInitTrace fails unless trace (the shim's stderr under
// GODEBUG=inittrace=1) shows only standard packages initialised.
func checkInitTrace(t *testing.T, trace string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(trace), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "init" {
			t.Errorf("not an init trace line: %q", line)
			continue
		}
		n++
		first, _, _ := strings.Cut(f[1], "/")
		if strings.Contains(first, ".") || first == "upkeep" {
			t.Errorf("%s initialised before the shim ran", f[1])
		}
	}
	if n == 0 {
		t.Errorf("no init trace: %q", trace)
	}
}
