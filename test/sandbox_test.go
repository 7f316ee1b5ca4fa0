package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sandboxRoot makes a host root holding the guide's node service: the
// upkeep binary standing in for node (serve-ok answers /ok), run as
// nobody, with config/etc/app_name/app.conf and a policy that allows it.
func sandboxRoot(t *testing.T, script, test string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("upkeep test needs root (overlayfs, namespaces); run the tests as root")
	}
	root := t.TempDir()
	svc := filepath.Join(root, "var/www/www-node")
	for _, d := range []string{svc + "/config/etc/app_name", root + "/opt/node/bin", root + "/etc/upkeep"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root+"/opt/node/bin/node", string(b), 0o755)
	write(t, svc+"/config/etc/app_name/app.conf", "name = node\n", 0o644)
	write(t, root+"/etc/upkeep/policy.toml", "[overlay]\nallow = [\"etc/NAME/\", \"etc/app_name/\"]\n", 0o644)
	toml := fmt.Sprintf(`script = %q
user = "nobody"
[[check]]
type = "http"
url = "http://127.0.0.1:8080/ok"
interval = "100ms"
timeout = "1s"
[stop]
timeout = "2s"
[test]
script = %q
timeout = "2s"
`, script, test)
	write(t, svc+"/service.toml", toml, 0o644)
	return root
}

func write(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

// treeSum is a checksum of every name, mode, link target and content
// beneath dir.
func treeSum(t *testing.T, dir string) string {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d\n", p, info.Mode(), info.Size())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			io.WriteString(h, l)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

type sandboxReport struct {
	OK      bool     `json:"ok"`
	Reason  string   `json:"reason"`
	Links   []string `json:"links"`
	Log     []string `json:"log"`
	Touched []struct {
		Path, What string
	} `json:"touched"`
	Test *struct {
		Exit int `json:"exit"`
	} `json:"test"`
	States     []struct{ To string } `json:"states"`
	Image      string                `json:"image"`
	Namespaces []string              `json:"namespaces"`
	Kept       *struct {
		ID      string `json:"id"`
		PID     int    `json:"pid"`
		Enter   string `json:"enter"`
		NSEnter string `json:"nsenter"`
	} `json:"kept"`
}

func runSandbox(t *testing.T, root string, args ...string) (sandboxReport, int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", root, "test", "www-node", "--json"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r sandboxReport
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("report: %v\n%s", err, out.Bytes())
		}
	}
	return r, code, errb.String()
}

// noSandboxLeft fails unless no overlay of ours is mounted and no process
// runs the sandbox's binary path or its test.
func noSandboxLeft(t *testing.T, root string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		left := sandboxLeft(root)
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sandboxLeft(root string) string {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte("upkeep-sandbox")) || bytes.Contains(mi, []byte(root)) {
		return "a mount in /proc/self/mountinfo"
	}
	// Only this root's sandboxes: others may run the same tests at once.
	// Its PID 1, runner and CLI carry UPKEEP_SANDBOX_LOWER=root; what runs
	// in its namespaces noNamespaceLeft looks for.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := fmt.Sscanf(e.Name(), "%d", new(int)); err != nil {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if bytes.Contains(append(env, 0), []byte("\x00UPKEEP_SANDBOX_LOWER="+root+"\x00")) || bytes.HasPrefix(env, []byte("UPKEEP_SANDBOX_LOWER="+root+"\x00")) ||
			bytes.Contains(env, []byte("UPKEEP_SANDBOX_INIT=")) && bytes.Contains(env, []byte(`"root":"`+root+`"`)) {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			return "process " + e.Name() + ": " + strings.ReplaceAll(string(cmdline), "\x00", " ")
		}
	}
	return ""
}

func TestSandboxNodeService(t *testing.T) {
	root := sandboxRoot(t,
		"echo started > /tmp/app-was-here; exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080",
		`test -L /etc/app_name/app.conf && test "$(readlink /etc/app_name/app.conf)" = /var/www/www-node/config/etc/app_name/app.conf && test "$(id -un)" = nobody && test "$(hostname)" = upkeep-test`)
	// The port the service wants is taken on the host: inside it is free.
	// Something else holding it proves the same.
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		defer l.Close()
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("port 8080 on the host: %v", err)
	}
	etc, vr := treeSum(t, root+"/etc"), treeSum(t, root+"/var")
	r, code, stderr := runSandbox(t, root)
	if code != 0 || !r.OK {
		t.Fatalf("exit %d, report %+v, stderr %s", code, r, stderr)
	}
	if r.Test == nil || r.Test.Exit != 0 {
		t.Errorf("test result %+v", r.Test)
	}
	if len(r.Links) != 1 || !strings.HasPrefix(r.Links[0], "/etc/app_name/app.conf -> ") {
		t.Errorf("links %q", r.Links)
	}
	found := false
	for _, c := range r.Touched {
		found = found || c.Path == "tmp/app-was-here" && c.What == "created"
		if strings.HasPrefix(c.Path, "etc/app_name") || strings.HasPrefix(c.Path, "var/www/") {
			t.Errorf("touched lists what provisioning or the service's own places made: %+v", c)
		}
	}
	if !found {
		t.Errorf("touched %+v lacks tmp/app-was-here", r.Touched)
	}
	if len(r.States) == 0 || r.States[len(r.States)-1].To != "stopped" {
		t.Errorf("states %+v", r.States)
	}
	if _, err := os.Lstat(root + "/etc/app_name"); !os.IsNotExist(err) {
		t.Errorf("the overlay reached the host: %v", err)
	}
	if etc != treeSum(t, root+"/etc") || vr != treeSum(t, root+"/var") {
		t.Error("the host root's etc/ or var/ changed")
	}
	noSandboxLeft(t, root)
	noNamespaceLeft(t, r.Namespaces)
}

func TestSandboxBadServices(t *testing.T) {
	tests := []struct {
		name, script, test, want string
		args                     []string
	}{
		{"exits at once", "exit 3", "true", "www-node exited before it was healthy: exit 3", nil},
		{"test hangs", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "sleep 60", "test timed out after 2s", nil},
		{"test fails", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "exit 4", "test failed", nil},
		{"never healthy", "exec sleep 60", "true", "not healthy within 500ms", []string{"--timeout", "500ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := sandboxRoot(t, tt.script, tt.test)
			etc := treeSum(t, root+"/etc")
			r, code, stderr := runSandbox(t, root, tt.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, last line %q, want 1 and %q\n%s", code, last, tt.want, stderr)
			}
			if etc != treeSum(t, root+"/etc") {
				t.Error("the host root's etc/ changed")
			}
			noSandboxLeft(t, root)
			noNamespaceLeft(t, r.Namespaces)
		})
	}
}

func TestSandboxKilled(t *testing.T) {
	root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "sleep 61")
	cmd := exec.Command(bin, "--root", root, "test", "www-node")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Mid-run: the service is up (its node runs) and the test sleeps.
	deadline := time.Now().Add(10 * time.Second)
	var nss []string
	for nss == nil {
		if p := procsOf("sleep 61"); p != "" {
			nss = nsOf(strings.Fields(p)[0])
		} else if time.Now().After(deadline) {
			t.Fatal("the sandbox's test never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	noSandboxLeft(t, root)
	// The kernel kills what the sandbox's PID namespace holds when its init
	// dies, asynchronously: within the same second.
	for deadline := time.Now().Add(time.Second); procsOf("sleep 61") != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the test's sleep outlived the sandbox: %s", procsOf("sleep 61"))
		}
	}
	noNamespaceLeft(t, nss)
}

// procsOf lists processes whose command line (spaces for NULs) holds s.
func procsOf(s string) string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			out = append(out, e.Name())
		}
	}
	return strings.Join(out, " ")
}

// A service directory being developed, outside the root, is copied in: the
// developer's tree does not change and the root gets no service.
func TestSandboxDir(t *testing.T) {
	root := sandboxRoot(t,
		"exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080",
		"test -f /var/www/www-node/service.toml && test ! -L /var/www/www-node && test -L /etc/app_name/app.conf")
	dev := filepath.Join(t.TempDir(), "www-node")
	if err := os.Rename(root+"/var/www/www-node", dev); err != nil {
		t.Fatal(err)
	}
	sum := treeSum(t, dev)
	cmd := exec.Command(bin, "--root", root, "test", dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "overlay /etc/app_name/app.conf -> /var/www/www-node/config/etc/app_name/app.conf") {
		t.Errorf("report lacks the link:\n%s", out)
	}
	if sum != treeSum(t, dev) {
		t.Error("the service directory changed")
	}
	if _, err := os.Lstat(root + "/var/www/www-node"); !os.IsNotExist(err) {
		t.Errorf("the host root got the service: %v", err)
	}
	noSandboxLeft(t, root)
}

func TestSandboxUsage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("upkeep test needs root")
	}
	root := t.TempDir()
	for _, args := range [][]string{{"test"}, {"test", "Bad/"[:3]}, {"test", "a", "b"}, {"test", "www-x", "--net", "bridge"}} {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%q: %v, want exit 2\n%s", args, err, out)
		}
	}
}

// sandboxRun runs `upkeep --root ROOT ARGS... --json` and decodes the report.
func sandboxRun(t *testing.T, root string, args ...string) (sandboxReport, int, string) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"--root", root}, args...), "--json")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r sandboxReport
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("report: %v\n%s", err, out.Bytes())
		}
	}
	return r, code, errb.String()
}

// nsLeft names a process still in one of the namespaces nss
// ("mnt:[4026…]", as /proc/PID/ns shows them) that started before
// until: the kernel reuses a freed namespace's number at once, and a
// process that started after the sandbox was gone (another test's
// namespace with the same number) is none of its.
func nsLeft(nss []string, until time.Time) string {
	want := map[string]bool{}
	for _, n := range nss {
		want[n] = true
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		for _, kind := range []string{"mnt", "pid", "uts", "ipc", "net"} {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/" + kind); err == nil && want[l] && startedBefore(e.Name(), until) && !zombie(e.Name()) {
				return fmt.Sprintf("process %s (%s) in %s", e.Name(), cmdline(atoi(e.Name())), l)
			}
		}
	}
	return ""
}

// zombie says whether pid has exited and waits for its parent. The
// sandbox's PID 1, killed with `upkeep test`, is reaped by the host's
// init, which here (a VM's process_api) may take seconds: a zombie runs
// nothing and holds no mount, its namespaces' number until it is reaped.
func zombie(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	i := bytes.LastIndexByte(stat, ')')
	return err == nil && i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// startedBefore says whether pid started before t (or its start is not
// known): /proc/PID/stat's start time is in clock ticks (1/100 s, USER_HZ)
// since boot, /proc/uptime says how long ago boot was, to 1/100 s.
func startedBefore(pid string, t time.Time) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	now := time.Now()
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ticks, err1 := strconv.ParseInt(f[19], 10, 64) // field 22, counting from (comm)'s end
	secs, err2 := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err1 != nil || err2 != nil {
		return true
	}
	age := time.Duration(secs*float64(time.Second)) - time.Duration(ticks)*10*time.Millisecond
	// 20 ms of rounding, on the side of reporting.
	return now.Add(-age).Before(t.Add(20 * time.Millisecond))
}

// noNamespaceLeft fails unless, within a second, no process is in any of
// the sandbox's namespaces. Call it once the sandbox should be gone.
func noNamespaceLeft(t *testing.T, nss []string) {
	t.Helper()
	if len(nss) < 4 {
		t.Fatalf("the report names %d namespaces: %q", len(nss), nss)
	}
	until := time.Now()
	deadline := until.Add(time.Second)
	for left := nsLeft(nss, until); left != ""; left = nsLeft(nss, until) {
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tarGz packs dir into file as a gzip'd tar, its entries under prefix
// ("" for none); extra entries (hostile ones) are appended as given.
func tarGz(t *testing.T, dir, prefix, file string, extra ...*tar.Header) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = path.Join(prefix, filepath.ToSlash(rel))
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range extra {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// imageRoot is sandboxRoot with the node service moved out into an image
// file, www-node-1.0.0.tar.gz: the root has no www-node.
func imageRoot(t *testing.T, test string, extra ...*tar.Header) (root, image string) {
	t.Helper()
	root = sandboxRoot(t, "echo started > /tmp/app-was-here; exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", test)
	image = filepath.Join(t.TempDir(), "www-node-1.0.0.tar.gz")
	tarGz(t, root+"/var/www/www-node", "www-node-1.0.0", image, extra...)
	if err := os.RemoveAll(root + "/var/www/www-node"); err != nil {
		t.Fatal(err)
	}
	return root, image
}

// An image, as a file or as the image store's entry, is unpacked inside
// the sandbox as deploy would: a release, var/www/NAME a link to it. The
// host gets neither.
func TestSandboxImage(t *testing.T) {
	root, image := imageRoot(t, `test "$(readlink /var/www/www-node)" = .releases/www-node/1.0.0 && test -f /var/www/.releases/www-node/1.0.0/service.toml && test -L /etc/app_name/app.conf`)
	home := t.TempDir()
	if out, err := exec.Command(bin, "--root", root, "--home", home, "image", "add", image).CombinedOutput(); err != nil {
		t.Fatalf("image add: %v\n%s", err, out)
	}
	etc, vr, hm := treeSum(t, root+"/etc"), treeSum(t, root+"/var"), treeSum(t, home)
	for _, target := range []string{image, "www-node@1.0.0", "www-node@"} {
		r, code, stderr := sandboxRun(t, root, "--home", home, "test", target)
		if code != 0 || !r.OK || r.Image != "www-node 1.0.0" {
			t.Fatalf("%s: exit %d, report %+v, stderr %s", target, code, r, stderr)
		}
		noSandboxLeft(t, root)
		noNamespaceLeft(t, r.Namespaces)
	}
	if etc != treeSum(t, root+"/etc") || vr != treeSum(t, root+"/var") || hm != treeSum(t, home) {
		t.Error("the host root's etc/ or var/, or the home, changed")
	}
	if _, err := os.Lstat(root + "/var/www/.releases"); !os.IsNotExist(err) {
		t.Errorf("the host root got a release: %v", err)
	}
}

// A hostile image is refused on the host, with one line naming the entry,
// before any sandbox is made.
func TestSandboxImageRefused(t *testing.T) {
	tests := []struct {
		name string
		hdr  *tar.Header
		want string
	}{
		{"dot dot", &tar.Header{Name: "www-node-1.0.0/../../etc/evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}, `image refused: entry "www-node-1.0.0/../../etc/evil": has a .. component`},
		{"absolute", &tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}, `image refused: entry "/etc/evil": an absolute path`},
		{"symlink escaping", &tar.Header{Name: "www-node-1.0.0/config/etc/app_name/passwd", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../etc/passwd", Mode: 0o777}, `image refused: entry "www-node-1.0.0/config/etc/app_name/passwd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, image := imageRoot(t, "true", tt.hdr)
			sum := treeSum(t, root)
			_, code, stderr := sandboxRun(t, root, "test", image)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("exit %d, stderr %q, want 1 and one line with %q", code, stderr, tt.want)
			}
			if sum != treeSum(t, root) {
				t.Error("the host root changed")
			}
			noSandboxLeft(t, root)
		})
	}
}

// --keep leaves the sandbox running with its record; --enter runs
// commands inside it, passing their exit status on; --stop ends it and
// leaves nothing.
func TestSandboxKeep(t *testing.T) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatal("nsenter (util-linux) is needed to enter a sandbox")
	}
	root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "true")
	etc := treeSum(t, root+"/etc")
	r, code, stderr := sandboxRun(t, root, "test", "www-node", "--keep")
	if code != 0 || !r.OK || r.Kept == nil {
		t.Fatalf("exit %d, report %+v, stderr %s", code, r, stderr)
	}
	id := r.Kept.ID
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(root, "run/upkeep/sandbox", id)); err == nil {
			_ = exec.Command(bin, "--root", root, "test", "--stop", id).Run()
		}
	})
	if !strings.Contains(r.Kept.Enter, "test --enter "+id) || !strings.HasPrefix(r.Kept.NSEnter, fmt.Sprintf("nsenter --target %d ", r.Kept.PID)) {
		t.Errorf("how to enter: %q, %q", r.Kept.Enter, r.Kept.NSEnter)
	}
	if _, err := os.Stat(filepath.Join(root, "run/upkeep/sandbox", id)); err != nil {
		t.Fatalf("the record: %v", err)
	}
	// The leftover checks see a sandbox that is there.
	if sandboxLeft(root) == "" || nsLeft(r.Namespaces, time.Now()) == "" {
		t.Errorf("the leftover checks miss the kept sandbox: %q, %q", sandboxLeft(root), nsLeft(r.Namespaces, time.Now()))
	}
	enter := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--root", root, "test", "--enter", id, "--"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	// Inside: the overlay's link, the sandbox's hostname, and the service
	// still answering on its port in the sandbox's own network.
	out, code := enter("sh", "-c", "cat /etc/app_name/app.conf; hostname; /run/upkeep-sandbox/upkeep status www-node")
	if code != 0 || !strings.Contains(out, "name = node") || !strings.Contains(out, "upkeep-test") || !strings.Contains(out, "running") {
		t.Errorf("enter: exit %d\n%s", code, out)
	}
	if _, code := enter("sh", "-c", "exit 7"); code != 7 {
		t.Errorf("enter's exit status: %d, want 7", code)
	}
	if out, err := exec.Command(bin, "--root", root, "test", "--enter", "0000beef").CombinedOutput(); err == nil || !strings.Contains(string(out), "no kept sandbox 0000beef") {
		t.Errorf("enter of an unknown id: %v %s", err, out)
	}
	out2, err := exec.Command(bin, "--root", root, "test", "--stop", id).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "stopped") {
		t.Fatalf("stop: %v\n%s", err, out2)
	}
	if _, err := os.Stat(filepath.Join(root, "run/upkeep/sandbox", id)); !os.IsNotExist(err) {
		t.Errorf("the record outlived --stop: %v", err)
	}
	if etc != treeSum(t, root+"/etc") {
		t.Error("the host root's etc/ changed")
	}
	noSandboxLeft(t, root)
	noNamespaceLeft(t, r.Namespaces)
}

// --shell opens a shell inside once the service is healthy; the sandbox
// goes when it exits.
func TestSandboxShell(t *testing.T) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatal("nsenter (util-linux) is needed to enter a sandbox")
	}
	root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "true")
	cmd := exec.Command(bin, "--root", root, "test", "www-node", "--shell", "--json")
	cmd.Stdin = strings.NewReader("cat /etc/app_name/app.conf; hostname\nexit 0\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "name = node\nupkeep-test\n") {
		t.Errorf("the shell's output:\n%s", out.String())
	}
	var r sandboxReport
	if err := json.Unmarshal(out.Bytes()[strings.Index(out.String(), "{"):], &r); err != nil || !r.OK {
		t.Fatalf("report %+v: %v", r, err)
	}
	noSandboxLeft(t, root)
	noNamespaceLeft(t, r.Namespaces)
}

// SIGINT or SIGTERM of `upkeep test`: the sandbox is torn down, exit 1
// with "interrupted".
func TestSandboxInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "sleep 62")
			cmd := exec.Command(bin, "--root", root, "test", "www-node")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			var nss []string
			deadline := time.Now().Add(10 * time.Second)
			for nss == nil {
				if p := procsOf("sleep 62"); p != "" {
					nss = nsOf(strings.Fields(p)[0])
				} else if time.Now().After(deadline) {
					t.Fatal("the sandbox's test never started")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || lines[len(lines)-1] != "upkeep: interrupted" {
				t.Errorf("%v, stderr %q: want exit 1 and upkeep: interrupted", err, errb.String())
			}
			noSandboxLeft(t, root)
			noNamespaceLeft(t, nss)
		})
	}
}

// nsOf lists the namespaces of pid but the net one of a --net host.
func nsOf(pid string) []string {
	var out []string
	for _, kind := range []string{"mnt", "pid", "uts", "ipc", "net"} {
		if l, err := os.Readlink("/proc/" + pid + "/ns/" + kind); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// More bad input: a service that ignores SIGTERM (killed at its stop
// timeout, reported), an overlay in conflict with a file the host has.
func TestSandboxBadInput(t *testing.T) {
	t.Run("ignores SIGTERM", func(t *testing.T) {
		root := sandboxRoot(t, `trap "" TERM; /opt/node/bin/node serve-ok --addr 127.0.0.1:8080 & while :; do sleep 0.1; done`, "true")
		r, code, stderr := sandboxRun(t, root, "test", "www-node")
		if code != 1 || !strings.Contains(r.Reason, "www-node ignored SIGTERM: killed after its stop timeout (2s)") {
			t.Errorf("exit %d, reason %q\n%s", code, r.Reason, stderr)
		}
		noSandboxLeft(t, root)
		noNamespaceLeft(t, r.Namespaces)
	})
	t.Run("overlay conflict", func(t *testing.T) {
		root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "true")
		if err := os.MkdirAll(root+"/etc/app_name", 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, root+"/etc/app_name/app.conf", "the host's own\n", 0o644)
		sum := treeSum(t, root)
		_, code, stderr := sandboxRun(t, root, "test", "www-node")
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "the overlay of www-node conflicts with the host: /etc/app_name/app.conf exists") {
			t.Errorf("exit %d, stderr %q: want 1 and one line naming /etc/app_name/app.conf", code, stderr)
		}
		if sum != treeSum(t, root) {
			t.Error("the host root changed")
		}
		noSandboxLeft(t, root)
	})
}

// As a user who is not root: an unprivileged user namespace, where the
// caller is root of the sandbox. A service without a user, on a root of
// the caller's own, runs and is tested in it; one with a user, or a root
// owned by another, gets one line saying what is missing, and never runs
// on the host.
func TestSandboxNotRoot(t *testing.T) {
	root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "true")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// Everything nobody must reach: outside the root's 0700 temp dirs.
	dir, err := os.MkdirTemp("", "upkeep-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "upkeep")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	write(t, exe, string(b), 0o755)
	asNobody := func(root string, args ...string) (string, int) {
		if args == nil {
			args = []string{"www-node"}
		}
		cmd := exec.Command(exe, append([]string{"--root", root, "test"}, args...)...)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	lastLine := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	// Its own root: the service (no user) runs as root of the sandbox.
	own := filepath.Join(dir, "root")
	if err := os.CopyFS(own, os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	toml := own + "/var/www/www-node/service.toml"
	body, _ := os.ReadFile(toml)
	body = bytes.Replace(body, []byte("user = \"nobody\"\n"), nil, 1)
	body = bytes.Replace(body, []byte("script = \"true\""), []byte(`script = "test $(id -u) = 0 && test -L /etc/app_name/app.conf && test $(hostname) = upkeep-test"`), 1)
	write(t, toml, string(body), 0o644)
	if err := filepath.WalkDir(own, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	sum := treeSum(t, own)
	if out, code := asNobody(own); code != 0 || !strings.Contains(out, "\nok\n") {
		t.Errorf("a root of its own: exit %d\n%s", code, out)
	}
	if sum != treeSum(t, own) {
		t.Error("the root changed")
	}
	noSandboxLeft(t, own)
	// Kept, entered (through its user namespace) and stopped as nobody.
	out, code := asNobody(own, "www-node", "--keep")
	m := regexp.MustCompile(`kept: sandbox ([0-9a-f]{8})`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("--keep as nobody: exit %d\n%s", code, out)
	}
	t.Cleanup(func() { _ = exec.Command(bin, "--root", own, "test", "--stop", m[1]).Run() })
	if out, code := asNobody(own, "--enter", m[1], "--", "sh", "-c", "id -u; hostname"); code != 0 || out != "0\nupkeep-test\n" {
		t.Errorf("--enter as nobody: exit %d, %q", code, out)
	}
	if out, code := asNobody(own, "--stop", m[1]); code != 0 || !strings.Contains(out, "stopped") {
		t.Errorf("--stop as nobody: exit %d, %q", code, out)
	}
	noSandboxLeft(t, own)
	// A service with a user.
	if err := os.Chown(root, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code = asNobody(root)
	if code != 1 || !strings.Contains(lastLine(out), "upkeep test of www-node needs root: it runs as nobody, and an unprivileged user namespace maps only your uid "+nobody.Uid) {
		t.Errorf("a service with a user: exit %d, %q", code, out)
	}
	// A root owned by another.
	if err := os.Chown(own, 0, 0); err != nil {
		t.Fatal(err)
	}
	out, code = asNobody(own)
	if code != 1 || !strings.Contains(lastLine(out), "needs root for the root "+own+" (owned by uid 0)") {
		t.Errorf("a root owned by root: exit %d, %q", code, out)
	}
	// Nothing ran in our own mount namespace.
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for _, p := range strings.Fields(procsOf("/opt/node/bin/node serve-ok")) {
		if ns, _ := os.Readlink("/proc/" + p + "/ns/mnt"); ns == self {
			t.Errorf("the service runs on the host: pid %s", p)
		}
	}
}

// deploy --test runs the new release in a sandbox first: a failing test
// leaves the current release untouched and says why; a passing one goes
// on to deploy.
func TestDeployTest(t *testing.T) {
	root := sandboxRoot(t, "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "true")
	home := t.TempDir()
	up := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--root", root, "--home", home}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	svc := root + "/var/www/www-node"
	toml, err := os.ReadFile(svc + "/service.toml")
	if err != nil {
		t.Fatal(err)
	}
	add := func(version, script string) {
		t.Helper()
		body := strings.Replace(string(toml), `script = "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080"`, fmt.Sprintf("script = %q", script), 1)
		write(t, svc+"/service.toml", body, 0o644)
		file := filepath.Join(t.TempDir(), "www-node-"+version+".tar.gz")
		tarGz(t, svc, "", file)
		if out, code := up("image", "add", file); code != 0 {
			t.Fatalf("image add %s: %s", version, out)
		}
	}
	add("1.0.0", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080")
	add("2.0.0", "exit 3")
	add("3.0.0", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080")
	if err := os.RemoveAll(svc); err != nil {
		t.Fatal(err)
	}
	if out, code := up("deploy", "www-node@1.0.0"); code != 0 {
		t.Fatalf("deploy 1.0.0: %s", out)
	}
	link := func() string { l, _ := os.Readlink(svc); return l }
	if link() != ".releases/www-node/1.0.0" {
		t.Fatalf("after deploy 1.0.0: %q", link())
	}
	vr := treeSum(t, root+"/var")
	out, code := up("deploy", "www-node@2.0.0", "--test")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.Contains(last, "deploy --test of www-node 2.0.0: www-node exited before it was healthy") || !strings.HasSuffix(last, "the current release is untouched") {
		t.Errorf("deploy 2.0.0 --test: exit %d, last line %q\n%s", code, last, out)
	}
	if link() != ".releases/www-node/1.0.0" || vr != treeSum(t, root+"/var") {
		t.Errorf("a failed deploy --test changed var/: www-node -> %q", link())
	}
	noSandboxLeft(t, root)
	if out, code := up("deploy", "www-node@3.0.0", "--test"); code != 0 || link() != ".releases/www-node/3.0.0" {
		t.Errorf("deploy 3.0.0 --test: exit %d, www-node -> %q\n%s", code, link(), out)
	}
	noSandboxLeft(t, root)
}
