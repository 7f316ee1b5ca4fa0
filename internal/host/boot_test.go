package host

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upkeep/internal/boot"
)

func testBinary(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}

func TestBootSystemdUnit(t *testing.T) {
	h := testHost(t)
	writeFiles(t, h.Root, map[string]string{
		"run/systemd/system/.keep": "",
		// The longest chain: www-a (7 s) after service-db (3 s); www-b
		// alone (9 s) is shorter.
		"var/www/service-db/service.toml": "command = [\"/bin/true\"]\n[stop]\ntimeout = \"3s\"\n",
		"var/www/www-a/service.toml":      "command = [\"/bin/true\"]\ndepends_on = [\"service-db\"]\n[stop]\ntimeout = \"7s\"\n",
		"var/www/www-b/service.toml":      "command = [\"/bin/true\"]\n[stop]\ntimeout = \"9s\"\n",
	})
	bin := testBinary(t)
	var out bytes.Buffer
	if err := h.InstallBoot(BootOptions{Init: boot.Auto, Binary: bin}, &out); err != nil {
		t.Fatal(err)
	}
	unit := h.Path("etc/systemd/system/upkeep.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nType=notify\n", "\nNotifyAccess=main\n", "\nKillMode=process\n", "\nRestart=always\n",
		"\nTimeoutStopSec=15s\n", // 3 s + 7 s + the 5 s margin
		"\nExecStart=" + bin + " --root " + h.Root + " daemon\n",
		"\nExecReload=" + bin + " --root " + h.Root + " reload\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("unit lacks %q:\n%s", want, b)
		}
	}
	if got, _ := os.Readlink(h.Path("etc/systemd/system/multi-user.target.wants/upkeep.service")); got != "/etc/systemd/system/upkeep.service" {
		t.Errorf("enable link -> %q", got)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("no systemd-analyze (Debian package systemd): the unit is not verified")
	} else if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if fs, warn, err := h.CheckBoot(bin); err != nil || len(fs) > 0 || warn != "" {
		t.Errorf("doctor after install: %v %q %v", fs, warn, err)
	}

	// Again: nothing to do.
	out.Reset()
	if err := h.InstallBoot(BootOptions{Init: boot.Systemd, Binary: bin}, &out); err != nil || out.Len() > 0 {
		t.Errorf("second install: %v, said %q", err, out.String())
	}

	// A longer stop timeout makes our file outdated: doctor says so, and
	// provision replaces it without --force.
	writeFiles(t, h.Root, map[string]string{"var/www/www-b/service.toml": "command = [\"/bin/true\"]\n[stop]\ntimeout = \"20s\"\n"})
	if fs, _, _ := h.CheckBoot(bin); len(fs) != 1 || !strings.Contains(fs[0].What, "outdated") {
		t.Errorf("doctor with a longer stop timeout: %v", fs)
	}
	if err := h.InstallBoot(BootOptions{Init: boot.Systemd, Binary: bin}, &out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(unit); !strings.Contains(string(b), "\nTimeoutStopSec=25s\n") {
		t.Errorf("outdated unit not replaced:\n%s", b)
	}

	// An operator's edit is kept unless forced.
	edited := strings.Replace(string(b), "RestartSec=1s", "RestartSec=9s", 1)
	os.WriteFile(unit, []byte(edited), 0o644)
	if fs, _, _ := h.CheckBoot(bin); len(fs) != 1 || !strings.Contains(fs[0].What, "changed by hand") {
		t.Errorf("doctor after an edit: %v", fs)
	}
	if err := h.InstallBoot(BootOptions{Init: boot.Systemd, Binary: bin}, &out); !errors.Is(err, ErrBootChanged) {
		t.Errorf("install over an edited unit: %v, want ErrBootChanged", err)
	}
	if b, _ := os.ReadFile(unit); string(b) != edited {
		t.Error("the edited unit was changed without --force")
	}
	if err := h.InstallBoot(BootOptions{Init: boot.Systemd, Binary: bin, Force: true}, &out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(unit); !boot.Sealed(b) {
		t.Error("--force did not replace the edited unit")
	}
}

func TestBootDryRunWritesNothing(t *testing.T) {
	h := testHost(t)
	var out bytes.Buffer
	if err := h.InstallBoot(BootOptions{Init: boot.Systemd, Binary: "/usr/local/bin/upkeep", DryRun: true}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# would write "+h.Path("etc/systemd/system/upkeep.service")) || !strings.Contains(out.String(), "\nType=notify\n") {
		t.Errorf("dry run printed:\n%s", out.String())
	}
	if _, err := os.Lstat(h.Path("etc")); err == nil {
		t.Error("the dry run wrote etc/")
	}
}

func TestBootSysvScript(t *testing.T) {
	h := testHost(t)
	bin := testBinary(t)
	if got := boot.Detect(h.Root); got != boot.SysV {
		t.Fatalf("an empty root detected as %s, want sysv", got)
	}
	if err := h.InstallBoot(BootOptions{Init: boot.Auto, Binary: bin}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	script := h.Path("etc/init.d/upkeep")
	if fi, err := os.Stat(script); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("init script: %v %v", fi, err)
	}
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(script)
	header := lsbHeader(t, string(b))
	for k, v := range map[string]string{
		"Provides": "upkeep", "Default-Start": "2 3 4 5", "Default-Stop": "0 1 6",
		"Required-Start": "$local_fs $remote_fs $network $syslog", "Required-Stop": "$local_fs $remote_fs $network $syslog",
	} {
		if header[k] != v {
			t.Errorf("LSB %s: %q, want %q", k, header[k], v)
		}
	}
	if header["Short-Description"] == "" {
		t.Error("LSB header has no Short-Description")
	}
	for _, l := range []string{"etc/rc2.d/S02upkeep", "etc/rc0.d/K01upkeep"} {
		if got, _ := os.Readlink(h.Path(l)); got != "../init.d/upkeep" {
			t.Errorf("%s -> %q", l, got)
		}
	}
	// The script itself: no daemon on this root, so status is LSB's 3.
	cmd := exec.Command("sh", script, "status")
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("status without a daemon: %v %q, want exit 3", err, out)
	}
}

// lsbHeader reads the fields between BEGIN and END INIT INFO.
func lsbHeader(t *testing.T, s string) map[string]string {
	t.Helper()
	i, j := strings.Index(s, "### BEGIN INIT INFO\n"), strings.Index(s, "### END INIT INFO\n")
	if i < 0 || j < i {
		t.Fatalf("no LSB header in:\n%s", s)
	}
	m := map[string]string{}
	for _, l := range strings.Split(s[i:j], "\n")[1:] {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "# "), ":"); ok && !strings.HasPrefix(k, " ") {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestBootOpenRCScript(t *testing.T) {
	h := testHost(t)
	writeFiles(t, h.Root, map[string]string{"sbin/openrc-run": ""})
	if err := h.InstallBoot(BootOptions{Init: boot.Auto, Binary: testBinary(t)}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	script := h.Path("etc/init.d/upkeep")
	b, _ := os.ReadFile(script)
	if !strings.HasPrefix(string(b), "#!/sbin/openrc-run\n") {
		t.Errorf("not an OpenRC script:\n%s", b)
	}
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	if got, _ := os.Readlink(h.Path("etc/runlevels/default/upkeep")); got != "/etc/init.d/upkeep" {
		t.Errorf("runlevel link -> %q", got)
	}
}

func TestDoctorWarnsWithoutBootFile(t *testing.T) {
	h := testHost(t)
	fs, warn, err := h.CheckBoot(testBinary(t))
	if err != nil || len(fs) > 0 || !strings.Contains(warn, "nothing starts upkeep daemon at boot") {
		t.Errorf("CheckBoot on a bare root: %v %q %v", fs, warn, err)
	}
	if err := h.InstallBoot(BootOptions{Init: boot.SysV, Binary: testBinary(t)}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(h.Path("etc/rc3.d/S02upkeep"))
	if fs, _, _ := h.CheckBoot(testBinary(t)); len(fs) != 1 || !strings.Contains(fs[0].What, "not enabled") {
		t.Errorf("doctor with a link missing: %v", fs)
	}
}
