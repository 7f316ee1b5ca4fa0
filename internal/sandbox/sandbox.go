package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"upkeep/internal/host"
	"upkeep/internal/paths"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// Options say what to test and how.
type Options struct {
	Root    string        // the host root, the lower layer
	Target  string        // a service name under Root, or a service directory
	Timeout time.Duration // to come up healthy
	NetHost bool          // share the host's network namespace
	Exe     string        // the upkeep binary (os.Executable() by default)
	Home    string        // the operator's home, for the image store (NAME@VERSION)
	Keep    bool          // leave the sandbox running once healthy and tested
	Shell   bool          // open a shell inside once healthy and tested
}

// Report is what `upkeep test` prints.
type Report struct {
	Service  string        `json:"service"`
	OK       bool          `json:"ok"`
	Reason   string        `json:"reason,omitempty"`
	States   []StateChange `json:"states"`
	Checks   []any         `json:"checks,omitempty"`
	Test     *TestResult   `json:"test,omitempty"`
	StopMS   int64         `json:"stop_ms"`
	Log      []string      `json:"log"`
	ErrorLog []string      `json:"error_log"`
	Links    []string      `json:"links"`
	Touched  []Change      `json:"touched"`
	// Image is the image tested, NAME VERSION, unpacked at var/www/NAME.
	Image string `json:"image,omitempty"`
	// Namespaces are the sandbox's (ns/mnt "mnt:[4026…]" …): none of them
	// may hold a process once `upkeep test` is done.
	Namespaces []string `json:"namespaces"`
	StartMS    int64    `json:"start_ms"`    // from `upkeep test` to the service running inside
	TeardownMS int64    `json:"teardown_ms"` // from the service stopped to the sandbox gone
	Kept       *Kept    `json:"kept,omitempty"`
}

type StateChange struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Detail string    `json:"detail,omitempty"`
}

type TestResult struct {
	Command  []string `json:"command"`
	Exit     int      `json:"exit"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Millis   int64    `json:"ms"`
	Output   string   `json:"output,omitempty"`
}

// UsageError is a target that names no service.
type UsageError struct{ error }

// ErrInterrupted is a run ended by SIGINT or SIGTERM of `upkeep test`.
var ErrInterrupted = errors.New("interrupted")

// Run sets up the sandbox, runs the service and its test in it, tears it
// down and reports. The error is for a sandbox that could not be made;
// a service that fails is a Report with OK false.
func Run(ctx context.Context, o Options) (*Report, error) {
	t0 := time.Now()
	// Not root: an unprivileged user namespace, where the caller is root
	// of the sandbox only; it fits a service that runs as that root.
	userNS := os.Geteuid() != 0
	dir, src := o.Target, ""
	var img *host.TestImage
	var svc *spec.Service
	var ps spec.Problems
	if st, err := os.Stat(o.Target); host.IsImageRef(o.Target) && (err != nil || !st.IsDir()) {
		h, err := host.New(o.Root, o.Home, io.Discard)
		if err != nil {
			return nil, err
		}
		if img, err = h.CheckTestImage(o.Target); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Target, err)
		}
		dir = paths.Service(o.Root, img.Name)
		if svc, ps = spec.Parse(o.Root, dir, img.TOML); svc != nil && len(ps.Errors()) > 0 {
			svc = nil
		}
	} else if strings.ContainsRune(o.Target, '/') || o.Target == "." {
		abs, err := filepath.Abs(o.Target)
		if err != nil {
			return nil, UsageError{err}
		}
		dir, src = abs, abs
	} else {
		if err := spec.CheckName(o.Target); err != nil {
			return nil, UsageError{err}
		}
		dir = paths.Service(o.Root, o.Target)
	}
	if img == nil {
		svc, ps = load(o.Root, dir, src != "")
	}
	if svc == nil {
		return nil, fmt.Errorf("%s: %w", dir, ps)
	}
	if userNS && (svc.User != "" || svc.Group != "" || len(svc.Groups) > 0) {
		who := strings.Trim(svc.User+":"+svc.Group, ":")
		if who == "" {
			who = "groups " + strings.Join(svc.Groups, ",")
		}
		return nil, errors.New(notRoot(svc.Name, who))
	}
	if userNS {
		// Inside, the caller's uid is root, and every other owner is
		// nobody: provisioning could write nowhere in another's tree.
		var st syscall.Stat_t
		if err := syscall.Stat(o.Root, &st); err != nil {
			return nil, err
		}
		if int(st.Uid) != os.Geteuid() {
			return nil, fmt.Errorf("upkeep test as uid %d needs root for the root %s (owned by uid %d): in an unprivileged user namespace only what uid %d owns can be changed; run it as root, or use --root with a tree of your own", os.Geteuid(), o.Root, st.Uid, os.Geteuid())
		}
	}
	keep := []string{svc.Name}
	for _, d := range svc.DependsOn {
		if _, err := os.Stat(filepath.Join(paths.Service(o.Root, d), spec.FileName)); err == nil {
			keep = append(keep, d)
		}
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	c := config{Root: o.Root, Name: svc.Name, Src: src, Keep: keep, NetHost: o.NetHost, UserNS: userNS}
	var extra []*os.File
	if img != nil {
		f, err := os.Open(img.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		c.Version, extra = img.Version, []*os.File{f}
	}
	cfg, _ := json.Marshal(c)

	initR, initW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	runR, runW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer initW.Close()
	defer runW.Close()
	defer stR.Close()
	cmd := exec.Command(o.Exe, "sandbox-init")
	cmd.Env = []string{envInit + "=" + string(cfg), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.ExtraFiles = append([]*os.File{initR, runR, stW}, extra...)
	cmd.Stderr = os.Stderr
	if o.Keep {
		// A kept sandbox outlives us: it must not hold our stderr open.
		cmd.Stderr = nil
	}
	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	if !o.NetHost {
		flags |= syscall.CLONE_NEWNET
	}
	// PDEATHSIG: when `upkeep test` dies, even by SIGKILL, PID 1 dies, the
	// kernel kills the rest of the PID namespace and drops the mount
	// namespace with the overlay and its tmpfs.
	// Its own session: a terminal's Ctrl-C reaches `upkeep test` alone,
	// which tears the sandbox down (or, kept, leaves it be).
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(flags), Pdeathsig: syscall.SIGKILL, Setsid: true}
	if o.Keep {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	if userNS {
		a := cmd.SysProcAttr
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	if err := cmd.Start(); err != nil {
		if userNS {
			return nil, fmt.Errorf("%s (%v)", userNSMissing(), err)
		}
		return nil, fmt.Errorf("start the sandbox: %w", err)
	}
	pid := cmd.Process.Pid
	var kept *Kept
	if o.Keep {
		st, err := proc.StartTime(pid)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
		id := newID()
		kept = &Kept{ID: id, Service: svc.Name, PID: pid, Start: st,
			Enter:   "upkeep --root " + o.Root + " test --enter " + id,
			NSEnter: strings.Join(nsenterLine(pid, "/bin/sh"), " ")}
		if err := writeKept(o.Root, kept); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("record the kept sandbox: %w", err)
		}
	}
	initR.Close()
	runR.Close()
	stW.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	detached := false
	teardown := func() {
		_ = cmd.Process.Kill()
		<-done
		if kept != nil {
			_ = os.Remove(keptPath(o.Root, kept.ID))
		}
	}
	defer func() {
		if !detached {
			teardown()
		}
	}()
	msgs := make(chan message, 4)
	go func() {
		sc := bufio.NewScanner(stR)
		for sc.Scan() {
			var m message
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				msgs <- m
			}
		}
		close(msgs)
	}()
	next := func(d time.Duration) (message, error) {
		select {
		case m, ok := <-msgs:
			if !ok {
				return m, errors.New("the sandbox ended early")
			}
			if m.Kind == "error" {
				return m, errors.New(m.Msg)
			}
			return m, nil
		case <-time.After(d):
			return message{}, fmt.Errorf("no answer from the sandbox in %v", d)
		case <-ctx.Done():
			return message{}, ErrInterrupted
		}
	}
	m, err := next(30 * time.Second)
	if errors.Is(err, ErrInterrupted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("set up the sandbox: %w", err)
	}
	upper := fmt.Sprintf("/proc/%d/fd/%d/upper", pid, m.Fd)
	before := snapshot(upper)
	r := &Report{Service: svc.Name, Links: m.Links, Namespaces: namespaces(pid, o.NetHost)}
	if img != nil {
		r.Image = img.Name + " " + img.Version
	}
	if _, err := initW.Write([]byte("go\n")); err != nil {
		return nil, err
	}
	inside := fmt.Sprintf("/proc/%d/root", pid)
	ask := func(req request, d time.Duration) (message, error) {
		b, _ := json.Marshal(req)
		if _, err := runW.Write(append(b, '\n')); err != nil {
			return message{}, fmt.Errorf("ask the sandbox: %w", err)
		}
		return next(d)
	}
	status := func() (*svcStatus, error) {
		m, err := ask(request{Args: []string{"status", "--json", svc.Name}}, 10*time.Second)
		if err != nil {
			return nil, err
		}
		var ss []svcStatus
		if err := json.Unmarshal([]byte(m.Output), &ss); err != nil || len(ss) != 1 {
			return nil, fmt.Errorf("status: %s", strings.TrimSpace(m.Output))
		}
		return &ss[0], nil
	}
	r.OK, r.Reason = true, ""
	fail := func(format string, args ...any) {
		if r.OK {
			r.OK, r.Reason = false, fmt.Sprintf(format, args...)
		}
	}
	if err := waitRunning(ctx, status, svc.Name, o.Timeout, done); err != nil {
		fail("%v", err)
	}
	r.StartMS = time.Since(t0).Milliseconds()
	if r.OK && svc.Test.Declared() {
		tm, err := ask(request{Test: true}, svc.Test.Timeout.D()+5*time.Second)
		r.Test = &TestResult{Command: svc.Test.Argv(svc.Name), Exit: tm.Exit, TimedOut: tm.TimedOut, Millis: tm.Millis, Output: tm.Output}
		switch {
		case err != nil:
			fail("test: %v", err)
		case tm.Msg != "":
			fail("%s", tm.Msg)
		}
	}
	if st, err := status(); err == nil {
		r.Checks = st.Checks
	}
	if r.OK && o.Shell {
		if _, err := enter(pid, nil); err != nil {
			fail("%v", err)
		}
	}
	if r.OK && kept != nil && ctx.Err() == nil {
		// Kept: the runner ends when our end of its pipe closes; the
		// daemon, PID 1, goes on. --stop ID ends it.
		detached = true
		r.Kept = kept
		r.States = stateChanges(paths.DaemonLog(inside), svc.Name)
		r.Touched = diff(before, snapshot(upper), svc.Name)
		return r, nil
	}
	if ctx.Err() != nil {
		r.OK, r.Reason = false, ErrInterrupted.Error()
		return r, nil
	}
	start := time.Now()
	if m, err := ask(request{Args: []string{"stop", svc.Name}}, svc.Stop.Timeout.D()+10*time.Second); err != nil || m.Exit != 0 {
		fail("stop: %v%s", err, strings.TrimSpace(m.Output))
	}
	r.StopMS = time.Since(start).Milliseconds()
	if killedAtStop(paths.DaemonLog(inside), svc.Name) {
		fail("%s ignored SIG%s: killed after its stop timeout (%v)", svc.Name, svc.Stop.Signal, svc.Stop.Timeout.D())
	}
	if time.Since(start) > svc.Stop.Timeout.D()+time.Second {
		fail("did not stop within its stop timeout (%v)", svc.Stop.Timeout.D())
	}
	r.States = stateChanges(paths.DaemonLog(inside), svc.Name)
	r.Log = readTail(paths.Log(inside, svc.Name), 10)
	r.ErrorLog = readTail(paths.ErrorLog(inside, svc.Name), 10)
	r.Touched = diff(before, snapshot(upper), svc.Name)
	ts := time.Now()
	teardown()
	detached = true
	r.TeardownMS = time.Since(ts).Milliseconds()
	if ctx.Err() != nil {
		r.OK, r.Reason = false, ErrInterrupted.Error()
	}
	return r, nil
}

// namespaces names the sandbox's namespaces as /proc/PID/ns shows them.
func namespaces(pid int, netHost bool) []string {
	var out []string
	for _, n := range []string{"mnt", "pid", "uts", "ipc", "net"} {
		if n == "net" && netHost {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n)); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// killedAtStop reads the daemon's event log for the SIGKILL at the end of
// the service's stop timeout.
func killedAtStop(file, name string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		var e struct {
			Msg     string `json:"msg"`
			Service string `json:"service"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "stop timeout; killing" && e.Service == name {
			return true
		}
	}
	return false
}

// load reads the definition as it will be inside: a DIR is parsed as if
// it were at var/www/NAME (its paths resolve there), its problems still
// naming its own file.
func load(root, dir string, outside bool) (*spec.Service, spec.Problems) {
	if !outside {
		return spec.Load(root, dir)
	}
	file := filepath.Join(dir, spec.FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, spec.Problems{{File: file, Msg: err.Error()}}
	}
	s, ps := spec.Parse(root, paths.Service(root, filepath.Base(dir)), data)
	for i := range ps {
		ps[i].File = file
	}
	return s, ps
}

type svcStatus struct {
	State    string `json:"state"`
	Detail   string `json:"detail"`
	Error    string `json:"error"`
	LastExit string `json:"last_exit"`
	Checks   []any  `json:"checks"`
}

// waitRunning polls until the service is running: the daemon keeps it
// starting until its checks pass (or ready_after has passed).
func waitRunning(ctx context.Context, status func() (*svcStatus, error), name string, timeout time.Duration, died <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	last := "no answer from the daemon"
	moved := false
	for time.Now().Before(deadline) {
		select {
		case <-died:
			return errors.New("the sandbox's daemon exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		st, err := status()
		if err != nil {
			last = err.Error()
		} else {
			switch st.State {
			case "running":
				return nil
			case "stopped":
				// The daemon's first snapshot, before autostart: stopped
				// is an answer only once the service has started.
				if moved {
					return fmt.Errorf("%s is stopped: %s", name, strings.TrimSpace(st.Detail+" "+st.Error))
				}
			case "backoff":
				// A test wants to know at once, not after the restart
				// limit: the service ended before it was healthy.
				return fmt.Errorf("%s exited before it was healthy: %s", name, strings.TrimSpace(st.LastExit+" "+st.Error))
			case "fatal", "exited":
				return fmt.Errorf("%s is %s: %s", name, st.State, strings.TrimSpace(st.Detail+" "+st.Error))
			default:
				moved = true
			}
			last = fmt.Sprintf("%s is %s", name, st.State)
			if st.Detail != "" {
				last += ": " + st.Detail
			}
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not a wait for an event
	}
	return fmt.Errorf("not healthy within %v (%s)", timeout, last)
}

// stateChanges reads the daemon's event log for the service's changes.
func stateChanges(file, name string) []StateChange {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var cs []StateChange
	for _, line := range strings.Split(string(b), "\n") {
		var e struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Service string    `json:"service"`
			From    string    `json:"from"`
			To      string    `json:"to"`
			Detail  string    `json:"detail"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "state" && e.Service == name {
			cs = append(cs, StateChange{e.Time, e.From, e.To, e.Detail})
		}
	}
	return cs
}

// notRoot says why a user who is not root cannot test this service: an
// unprivileged user namespace maps only the caller's own uid, so the
// sandbox cannot switch to the service's user.
func notRoot(name, user string) string {
	return fmt.Sprintf("upkeep test of %s needs root: it runs as %s, and an unprivileged user namespace maps only your uid %d (run it as root, or test a service without user)", name, user, os.Geteuid())
}

// userNSMissing says what the kernel lacks when no user namespace could
// be made.
func userNSMissing() string {
	msg := fmt.Sprintf("upkeep test as uid %d needs an unprivileged user namespace, which this kernel refused", os.Geteuid())
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil {
		return msg + ": no user namespaces (no /proc/sys/user/max_user_namespaces); run it as root"
	} else if strings.TrimSpace(string(b)) == "0" {
		return msg + ": user.max_user_namespaces = 0; run it as root"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return msg + ": kernel.unprivileged_userns_clone = 0; run it as root"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); err == nil && strings.TrimSpace(string(b)) == "1" {
		return msg + ": AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns = 1); run it as root"
	}
	return msg + "; run it as root"
}
