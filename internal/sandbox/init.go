package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/host"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// The sandbox's processes are this binary re-executed, told by an
// environment variable what they are (as proc's shim is): the init stage,
// which sets up the tree and execs `upkeep daemon` as PID 1, and the runner,
// which waits for the word and runs the service's [test] inside.
const (
	envInit   = "UPKEEP_SANDBOX_INIT"
	envRunner = "UPKEEP_SANDBOX_RUNNER"
	// envLower names the root a sandbox's own processes (PID 1, the
	// runner, the CLI it runs) were made from, for ps and the tests.
	envLower = "UPKEEP_SANDBOX_LOWER"
	binDir   = "run/upkeep-sandbox" // the binary, bind-mounted, inside
)

// Descriptors the parent hands down: 3 its word to init, 4 its word to the
// runner, 5 what both say back (JSON lines, each under PIPE_BUF).
const (
	fdInitCtl   = 3
	fdRunnerCtl = 4
	fdStatus    = 5
	fdImage     = 6 // the image to unpack, when an image is tested
)

type config struct {
	Root    string   `json:"root"`
	Name    string   `json:"name"`
	Src     string   `json:"src,omitempty"`     // a service directory to copy in
	Version string   `json:"version,omitempty"` // an image's, on fdImage
	Keep    []string `json:"keep"`              // services the daemon may see
	NetHost bool     `json:"net_host"`
	UserNS  bool     `json:"user_ns,omitempty"` // in an unprivileged user namespace
}

type message struct {
	Kind     string   `json:"kind"` // provisioned | error | test
	Msg      string   `json:"msg,omitempty"`
	Fd       int      `json:"fd,omitempty"`
	Links    []string `json:"links,omitempty"`
	Exit     int      `json:"exit,omitempty"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Output   string   `json:"output,omitempty"`
	Millis   int64    `json:"ms,omitempty"`
}

func init() {
	switch {
	case os.Getenv(envInit) != "":
		status := os.NewFile(fdStatus, "status")
		if err := sandboxInit(os.Getenv(envInit), status); err != nil {
			say(status, message{Kind: "error", Msg: err.Error()})
			os.Exit(1)
		}
		os.Exit(1) // sandboxInit only returns on failure: it execs the daemon
	case os.Getenv(envRunner) != "":
		// Nothing the runner starts may inherit the pipes, or the switch.
		for _, fd := range []int{fdInitCtl, fdRunnerCtl, fdStatus} {
			unix.CloseOnExec(fd)
		}
		name := os.Getenv(envRunner)
		os.Unsetenv(envRunner)
		serve(name, os.NewFile(fdRunnerCtl, "ctl"), os.NewFile(fdStatus, "status"))
		os.Exit(0)
	}
}

func say(w io.Writer, m message) {
	b, _ := json.Marshal(m)
	_, _ = w.Write(append(b, '\n'))
}

func sandboxInit(arg string, status *os.File) error {
	var c config
	if err := json.Unmarshal([]byte(arg), &c); err != nil {
		return fmt.Errorf("sandbox config: %w", err)
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	// First of all: nothing mounted from here on may propagate to the
	// host's mount table.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	scratch, err := scratchDir(c.Root)
	if err != nil {
		return err
	}
	// The layers live on a tmpfs of this namespace: when its last process
	// dies they go with it, even after a SIGKILL of `upkeep test`.
	if err := unix.Mount("upkeep-sandbox", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("tmpfs for the upper layer: %w", err)
	}
	upper, work, merged := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work"), filepath.Join(scratch, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	// /tmp and /run start empty (opaque directories) yet stay in the upper
	// layer, so what the service writes there is reported.
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{"tmp", 0o1777}, {"run", 0o755}} {
		p := filepath.Join(upper, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		_ = os.Chmod(p, d.mode|os.ModeSticky&d.mode)
		// In a user namespace overlayfs reads user.overlay.* (userxattr):
		// trusted.* needs CAP_SYS_ADMIN of the host.
		xattr := "trusted.overlay.opaque"
		if c.UserNS {
			xattr = "user.overlay.opaque"
		}
		if err := unix.Setxattr(p, xattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("opaque %s: %w", d.name, err)
		}
	}
	if strings.ContainsAny(c.Root, ",:\\") {
		return fmt.Errorf("root %q: overlayfs cannot take a path with , : or \\", c.Root)
	}
	opts := "lowerdir=" + c.Root + ",upperdir=" + upper + ",workdir=" + work
	if c.UserNS {
		opts += ",userxattr"
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlayfs (%s): %w", opts, err)
	}
	if c.Root != "/" {
		if err := systemBinds(merged); err != nil {
			return err
		}
	}
	if err := kernelFS(merged); err != nil {
		return err
	}
	bin := filepath.Join(merged, binDir, "upkeep")
	if err := touch(bin); err != nil {
		return err
	}
	if err := bindRO(fmt.Sprintf("/proc/self/fd/%d", exe.Fd()), bin); err != nil {
		return fmt.Errorf("bind the upkeep binary: %w", err)
	}
	if c.Src != "" {
		in := filepath.Join(merged, srcMount)
		if err := os.MkdirAll(in, 0o755); err != nil {
			return err
		}
		if err := bindRO(c.Src, in); err != nil {
			return fmt.Errorf("bind %s: %w", c.Src, err)
		}
	}
	if !c.NetHost {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	_ = unix.Sethostname([]byte("upkeep-test"))
	// Keep the layers reachable for the parent (/proc/PID/fd/N) after
	// pivot_root has taken the scratch tmpfs out of our view.
	layers, err := unix.Open(scratch, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root under the new one, and the
	// lazy unmount drops it: no directory for it in the tree.
	if err := unix.Chdir(merged); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	links, err := provision(c)
	if err != nil {
		return err
	}
	runner := exec.Command("/"+binDir+"/upkeep", "sandbox-runner")
	runner.Env = []string{envRunner + "=" + c.Name, "PATH=" + proc.DefaultPath, envLower + "=" + c.Root}
	runner.ExtraFiles = []*os.File{os.NewFile(fdInitCtl, "i"), os.NewFile(fdRunnerCtl, "r"), status}
	runner.Stderr = os.Stderr
	if err := runner.Start(); err != nil {
		return fmt.Errorf("start the test runner: %w", err)
	}
	say(status, message{Kind: "provisioned", Fd: layers, Links: links})
	// The parent snapshots the upper layer, then says go.
	if _, err := bufio.NewReader(os.NewFile(fdInitCtl, "ctl")).ReadString('\n'); err != nil {
		return fmt.Errorf("wait for the go: %w", err)
	}
	_ = unix.Close(fdRunnerCtl)
	_ = unix.Close(fdInitCtl)
	unix.CloseOnExec(fdStatus)
	env := []string{"PATH=" + proc.DefaultPath, "HOME=/root", envLower + "=" + c.Root}
	return syscall.Exec("/"+binDir+"/upkeep", []string{"upkeep", "--root", "/", "--home", "/root", "daemon", "-q"}, env)
}

// scratchDir picks a directory to mount the layers' tmpfs on: one the
// root is not beneath, since the tmpfs hides it in this namespace.
func scratchDir(root string) (string, error) {
	for _, d := range []string{"/mnt", "/media", "/srv", "/opt", "/run", "/tmp"} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue
		}
		if root == d || strings.HasPrefix(root, d+"/") {
			continue
		}
		return d, nil
	}
	return "", errors.New("no directory to mount the sandbox's layers on (tried /mnt /media /srv /opt /run /tmp)")
}

// systemBinds gives a root that is not / the host's programs, libraries
// and user database where it has none: a daemon run with --root DIR runs
// its services with them too. Programs are read-only binds; passwd and
// group are copies, so provisioning may add users to them.
func systemBinds(merged string) error {
	for _, d := range []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		hostPath, in := "/"+d, filepath.Join(merged, d)
		if _, err := os.Lstat(in); err == nil {
			continue
		}
		st, err := os.Lstat(hostPath)
		if err != nil {
			continue
		}
		if st.Mode()&fs.ModeSymlink != 0 { // merged /usr: bin -> usr/bin
			t, err := os.Readlink(hostPath)
			if err != nil {
				return err
			}
			if err := os.Symlink(t, in); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(in, 0o755); err != nil {
			return err
		}
		if err := bindRO(hostPath, in); err != nil {
			return fmt.Errorf("bind %s: %w", hostPath, err)
		}
	}
	for _, f := range []string{"etc/passwd", "etc/group"} {
		in := filepath.Join(merged, f)
		if _, err := os.Lstat(in); err == nil {
			continue
		}
		b, err := os.ReadFile("/" + f)
		if err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(in), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(in, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// kernelFS mounts /proc of the new PID namespace and a minimal /dev.
func kernelFS(merged string) error {
	p := filepath.Join(merged, "proc")
	if err := os.MkdirAll(p, 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	dev := filepath.Join(merged, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := touch(filepath.Join(dev, n)); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+n, filepath.Join(dev, n), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for n, t := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(t, filepath.Join(dev, n)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	return unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
}

func touch(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// bindRO bind-mounts src on dst read-only (a bind takes its flags only on
// a remount).
func bindRO(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// The source's nosuid, nodev, noexec stay: in a user namespace they
	// are locked, and a remount that drops them is refused.
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err == nil {
		for _, f := range []struct{ st, ms int64 }{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}} {
			if st.Flags&f.st != 0 {
				flags |= uintptr(f.ms)
			}
		}
	}
	return unix.Mount("", dst, "", flags, "")
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring loopback up: %w", err)
	}
	return nil
}

// provision lays the guide's layout inside, places the service and its
// overlay as deploy would, and hides the root's other services (but the
// ones it depends on) from the daemon. It returns the overlay's links.
func provision(c config) ([]string, error) {
	if c.Version != "" {
		// As deploy unpacks it: a release, var/www/NAME a link to it. The
		// host checked every entry already; the unpack checks them again.
		f := os.NewFile(fdImage, "image")
		h, err := host.New("/", "/root", io.Discard)
		if err == nil {
			err = h.UnpackImage(f, c.Name, c.Version)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("unpack the image: %w", err)
		}
	}
	if c.Src != "" {
		dst := "/var/www/" + c.Name
		if err := os.RemoveAll(dst); err != nil {
			return nil, err
		}
		if err := os.MkdirAll("/var/www", 0o755); err != nil {
			return nil, err
		}
		// A copy, as deploy unpacks a release: the service may write in
		// its directory as it will in production, and the developer's
		// tree stays untouched. /src is where Run bind-mounted it.
		if err := os.CopyFS(dst, os.DirFS(srcMount)); err != nil {
			return nil, fmt.Errorf("copy the service in: %w", err)
		}
		_ = unix.Unmount(srcMount, unix.MNT_DETACH)
	}
	keep := map[string]bool{}
	for _, k := range c.Keep {
		keep[k] = true
	}
	entries, _ := os.ReadDir("/var/www")
	for _, e := range entries {
		if n := e.Name(); !keep[n] && !strings.HasPrefix(n, ".") {
			// A whiteout of its service.toml, made before the snapshot:
			// the daemon does not see the service, the report does not list it.
			_ = os.Remove(filepath.Join("/var/www", n, spec.FileName))
		}
	}
	h, err := host.New("/", "/root", io.Discard)
	if err != nil {
		return nil, err
	}
	if _, err := h.Provision(false); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	var links []string
	for _, name := range c.Keep {
		p, err := h.Overlay(name, false, false, io.Discard)
		if err != nil {
			var ce *host.ConflictError
			if !errors.As(err, &ce) {
				return nil, err // it names the service
			}
			// Without overlay's --force hint: upkeep test has none.
			var what []string
			for _, op := range ce.Ops {
				what = append(what, "/"+strings.TrimPrefix(op.Path, "/")+" "+op.Why)
			}
			return nil, fmt.Errorf("the overlay of %s conflicts with the host: %s", name, strings.Join(what, "; "))
		}
		if name != c.Name || p == nil {
			continue
		}
		for _, op := range p.Ops {
			if op.Kind == "link" || op.Kind == "copy" {
				links = append(links, "/"+op.Path+" -> "+op.Target)
			}
		}
	}
	return links, nil
}

// srcMount is where a service directory being tested is bind-mounted (read
// only) until it is copied in.
const srcMount = "/run/upkeep-sandbox/src"

// serve answers the parent's requests, one JSON line each, from inside
// the sandbox: the daemon's control socket admits only peers it can see,
// so the CLI is run here, as a child of the sandbox's PID 1.
func serve(name string, ctl, status *os.File) {
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			say(status, message{Kind: "error", Msg: fmt.Sprintf("request: %v", err)})
			continue
		}
		if req.Test {
			say(status, runTest(name))
			continue
		}
		cmd := exec.Command("/"+binDir+"/upkeep", append([]string{"--root", "/"}, req.Args...)...)
		cmd.Env = append(proc.BaseEnv(), envLower+"="+os.Getenv(envLower))
		out, err := cmd.CombinedOutput()
		m := message{Kind: "cli", Output: string(out)}
		if err != nil {
			m.Exit = -1
			if ee, ok := err.(*exec.ExitError); ok {
				m.Exit = ee.ExitCode()
			}
		}
		say(status, m)
	}
}

// request is one thing the parent asks of the runner.
type request struct {
	Args []string `json:"args,omitempty"` // an upkeep command line
	Test bool     `json:"test,omitempty"` // run the [test]
}

// runTest runs the [test] of the service with its environment, directory
// and user, bounded by its timeout.
func runTest(name string) message {
	s, ps := spec.Load("/", "/var/www/"+name)
	if s == nil {
		return message{Kind: "test", Exit: -1, Msg: ps.Error()}
	}
	env := proc.BaseEnv()
	if s.EnvFile != "" {
		fe, err := spec.ReadEnvFile(s.EnvFile)
		if err != nil {
			return message{Kind: "test", Exit: -1, Msg: err.Error()}
		}
		for k, v := range fe {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	cred, err := proc.Credential(s.User, s.Group, s.Groups)
	if err != nil {
		return message{Kind: "test", Exit: -1, Msg: fmt.Sprintf("test user: %v", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Test.Timeout.D())
	defer cancel()
	argv := s.Test.Argv(name)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, s.Directory
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	// The whole group, not just the shell: a test's curl must not outlive it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	m := message{Kind: "test", Millis: time.Since(start).Milliseconds(), Output: out.String()}
	switch {
	case ctx.Err() != nil:
		m.TimedOut, m.Exit = true, -1
		m.Msg = fmt.Sprintf("test timed out after %v", s.Test.Timeout.D())
	case err != nil:
		m.Exit = -1
		if ee, ok := err.(*exec.ExitError); ok {
			m.Exit = ee.ExitCode()
		}
		m.Msg = fmt.Sprintf("test failed: %v", err)
	}
	return m
}

// tail keeps the last 2 KiB written to it, so a message fits in a pipe write.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
