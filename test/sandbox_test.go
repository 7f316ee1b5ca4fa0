package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	States []struct{ To string } `json:"states"`
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
	self, _ := os.Readlink("/proc/self/ns/mnt")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := fmt.Sscanf(e.Name(), "%d", new(int)); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/mnt")
		if bytes.Contains(cmdline, []byte("upkeep-sandbox")) || bytes.Contains(cmdline, []byte("/opt/node/bin/node")) ||
			(ns != self && bytes.Contains(cmdline, []byte("sandbox-init"))) {
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
}

func TestSandboxBadServices(t *testing.T) {
	tests := []struct {
		name, script, test, want string
		args                     []string
	}{
		{"exits at once", "exit 3", "true", "www-node is", nil},
		{"test hangs", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "sleep 60", "test timed out after 2s", nil},
		{"test fails", "exec /opt/node/bin/node serve-ok --addr 127.0.0.1:8080", "exit 4", "test failed", nil},
		{"never healthy", "exec sleep 60", "true", "not healthy within 500ms", []string{"--timeout", "500ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := sandboxRoot(t, tt.script, tt.test)
			etc := treeSum(t, root+"/etc")
			_, code, stderr := runSandbox(t, root, tt.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, last line %q, want 1 and %q\n%s", code, last, tt.want, stderr)
			}
			if etc != treeSum(t, root+"/etc") {
				t.Error("the host root's etc/ changed")
			}
			noSandboxLeft(t, root)
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
	for procsOf("sleep 61") == "" {
		if time.Now().After(deadline) {
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
