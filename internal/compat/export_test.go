package compat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

// exportRoot is a host whose services, between them, set every key.
const exportRoot = "testdata/export/root"

func loadExportHost(t *testing.T) (string, *spec.Host) {
	t.Helper()
	root, err := filepath.Abs(exportRoot)
	if err != nil {
		t.Fatal(err)
	}
	h, err := spec.LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	for n, ps := range h.Problems {
		t.Fatalf("%s: %v", n, ps)
	}
	return root, h
}

// TestExportGolden writes every service of the host in every target and
// compares the files, and the notes of what did not carry over, with
// testdata/export/<target>/.
func TestExportGolden(t *testing.T) {
	root, h := loadExportHost(t)
	for _, target := range Targets {
		for _, name := range h.Names() {
			t.Run(string(target)+"/"+name, func(t *testing.T) {
				files, notes, err := Export(target, root, h.Services[name])
				if err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join("testdata/export", string(target))
				for _, f := range files {
					if *update {
						os.MkdirAll(filepath.Dir(filepath.Join(dir, f.Name)), 0o755)
					}
					golden(t, filepath.Join(dir, f.Name), f.Data)
				}
				var b bytes.Buffer
				for _, n := range notes {
					b.WriteString(n.String() + "\n")
				}
				golden(t, filepath.Join(dir, name+".notes"), b.Bytes())
			})
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd's own checker on the units, where
// it is installed (.ci/run installs it).
func TestSystemdAnalyzeVerify(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	units := writeSystemdExport(t, dir, func(name string) bool { return strings.HasSuffix(name, ".service") })
	// verify also wants the programs to exist; --man=no skips the man
	// pages. Dependencies between the units resolve through the unit path.
	cmd := exec.Command(bin, append([]string{"verify", "--man=no"}, units...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.TrimSpace(l) == "":
		// RestartSteps and RestartMaxDelaySec are systemd 254's; older
		// versions say so and ignore them.
		case strings.Contains(l, "RestartSteps") || strings.Contains(l, "RestartMaxDelaySec"):
		// The programs of the test services are not on this machine.
		case strings.Contains(l, "is not executable") || strings.Contains(l, "No such file or directory") || strings.Contains(l, "Command ") && strings.Contains(l, "is not"):
		default:
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("systemd-analyze verify (%v):\n%s", err, strings.Join(bad, "\n"))
	}
}

// The guide's monit stanza and upstart job, imported and exported to
// systemd, give a unit with the same command, user, logs and restarts.
func TestRoundTripGuideToSystemd(t *testing.T) {
	r, _ := importFiles(t, "testdata/import/guide/monitrc", "testdata/import/guide/app_name.conf")
	if len(r.Services) != 1 {
		t.Fatalf("%d services", len(r.Services))
	}
	root := t.TempDir()
	if _, err := WriteService(filepath.Join(root, spec.WWW), r.Services[0].Name, r.Services[0].TOML(), false); err != nil {
		t.Fatal(err)
	}
	h, err := spec.LoadHost(root)
	if err != nil || len(h.Problems) > 0 {
		t.Fatal(err, h.Problems)
	}
	files, _, err := Export(Systemd, root, h.Services["app_name"])
	if err != nil {
		t.Fatal(err)
	}
	unit := string(files[0].Data)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/node path/to/node/app/server.js production\n", // the job's command, without sudo
		"User=nodejs\n", // sudo -u nodejs
		"Environment=\"HOME=path/to/node/app\"\n",
		"StandardOutput=append:/var/log/app_name.log\n",      // >> /var/log/app_name.log
		"StandardError=append:/var/log/app_name.error.log\n", // 2>> /var/log/app_name.error.log
		"Restart=always\n",             // monit restarts it when its check fails
		"WantedBy=multi-user.target\n", // start on startup
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
}

// TestSystemdLogrotateAccepted runs Debian's logrotate in debug mode on
// every exported logrotate.d file: the captured output's stanza and those
// of the files a service writes itself, patterns included.
func TestSystemdLogrotateAccepted(t *testing.T) {
	bin, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate is not installed (apt-get install logrotate)")
	}
	dir := t.TempDir()
	n := 0
	for _, conf := range writeSystemdExport(t, dir, func(name string) bool { return strings.HasPrefix(name, "logrotate.d/") }) {
		data, _ := os.ReadFile(conf)
		n += strings.Count(string(data), "{\n")
		out, err := exec.Command(bin, "-d", "-s", filepath.Join(dir, "state"), conf).CombinedOutput()
		if err != nil || strings.Contains(string(out), "error:") {
			t.Errorf("%s: logrotate -d: %v\n%s\n%s", conf, err, data, out)
		}
	}
	if n < 4 {
		t.Errorf("only %d stanzas checked", n)
	}
}

// writeSystemdExport exports every test service for systemd and writes
// the files whose names keep takes into dir (logrotate.d/x as dir/x),
// returning their paths.
func writeSystemdExport(t *testing.T, dir string, keep func(name string) bool) []string {
	t.Helper()
	root, h := loadExportHost(t)
	var paths []string
	for _, name := range h.Names() {
		files, _, err := Export(Systemd, root, h.Services[name])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !keep(f.Name) {
				continue
			}
			p := filepath.Join(dir, filepath.Base(f.Name))
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	return paths
}
