package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Options say what to test and how.
type Options struct {
	Root    string        // the host root, the lower layer
	Target  string        // a service name under Root, or a service directory
	Timeout time.Duration // to come up healthy
	NetHost bool          // share the host's network namespace
	Exe     string        // the upkeep binary (os.Executable() by default)
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

// Run sets up the sandbox, runs the service and its test in it, tears it
// down and reports. The error is for a sandbox that could not be made;
// a service that fails is a Report with OK false.
func Run(ctx context.Context, o Options) (*Report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("upkeep test needs root (overlayfs on / and switching users); unprivileged user namespaces are not supported yet")
	}
	dir, src := o.Target, ""
	if strings.ContainsRune(o.Target, '/') || o.Target == "." {
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
	svc, ps := load(o.Root, dir, src != "")
	if svc == nil {
		return nil, fmt.Errorf("%s: %w", dir, ps)
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
	cfg, _ := json.Marshal(config{Root: o.Root, Name: svc.Name, Src: src, Keep: keep, NetHost: o.NetHost})

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
	cmd.ExtraFiles = []*os.File{initR, runR, stW}
	cmd.Stderr = os.Stderr
	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	if !o.NetHost {
		flags |= syscall.CLONE_NEWNET
	}
	// PDEATHSIG: when `upkeep test` dies, even by SIGKILL, PID 1 dies, the
	// kernel kills the rest of the PID namespace and drops the mount
	// namespace with the overlay and its tmpfs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(flags), Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the sandbox: %w", err)
	}
	initR.Close()
	runR.Close()
	stW.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
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
			return message{}, ctx.Err()
		}
	}
	m, err := next(30 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("set up the sandbox: %w", err)
	}
	pid := cmd.Process.Pid
	upper := fmt.Sprintf("/proc/%d/fd/%d/upper", pid, m.Fd)
	before := snapshot(upper)
	r := &Report{Service: svc.Name, Links: m.Links}
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
	start := time.Now()
	if m, err := ask(request{Args: []string{"stop", svc.Name}}, svc.Stop.Timeout.D()+10*time.Second); err != nil || m.Exit != 0 {
		fail("stop: %v%s", err, strings.TrimSpace(m.Output))
	}
	r.StopMS = time.Since(start).Milliseconds()
	if time.Since(start) > svc.Stop.Timeout.D()+time.Second {
		fail("did not stop within its stop timeout (%v)", svc.Stop.Timeout.D())
	}
	r.States = stateChanges(paths.DaemonLog(inside), svc.Name)
	r.Log = readTail(paths.Log(inside, svc.Name), 10)
	r.ErrorLog = readTail(paths.ErrorLog(inside, svc.Name), 10)
	r.Touched = diff(before, snapshot(upper), svc.Name)
	return r, nil
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
	State  string `json:"state"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
	Checks []any  `json:"checks"`
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
