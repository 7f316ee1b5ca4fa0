package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

// ready = "notify" exports as Type=notify with WatchdogSec= and the ready
// timeout; fd:N and log:REGEX, which systemd lacks, as Type=simple with a
// note. systemd-analyze accepts the notify unit.
func TestSystemdExportReadiness(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		body  string
		lines []string
		note  string
	}{
		{body: "command = [\"/bin/sleep\", \"1000\"]\nready = \"notify\"\nwatchdog = \"30s\"\nready_timeout = \"90s\"\n",
			lines: []string{"Type=notify", "NotifyAccess=all", "WatchdogSec=30s", "TimeoutStartSec=90s"}},
		{body: "command = [\"/bin/sleep\", \"1000\"]\nready = \"notify\"\n", lines: []string{"Type=notify"}},
		{body: "command = [\"/bin/sleep\", \"1000\"]\nready = \"fd:3\"\n", lines: []string{"Type=simple"}, note: "systemd has no notification-fd"},
		{body: "command = [\"/bin/sleep\", \"1000\"]\nready = 'log:^up$'\n", lines: []string{"Type=simple"}, note: "cannot wait for a log line"},
	} {
		dir := filepath.Join(root, "var", "www", "service-n")
		s, ps := spec.Parse(root, dir, []byte(tc.body))
		if s == nil {
			t.Fatal(ps)
		}
		files, notes, err := Export(Systemd, root, s)
		if err != nil {
			t.Fatal(err)
		}
		unit := ""
		for _, f := range files {
			if f.Name == "service-n.service" {
				unit = string(f.Data)
			}
		}
		for _, l := range tc.lines {
			if !strings.Contains(unit, "\n"+l+"\n") {
				t.Errorf("%q: no line %q in\n%s", tc.body, l, unit)
			}
		}
		if strings.Contains(tc.body, "notify") != strings.Contains(unit, "Type=notify") {
			t.Errorf("%q: Type= wrong in\n%s", tc.body, unit)
		}
		var all []string
		for _, n := range notes {
			all = append(all, n.String())
		}
		if tc.note != "" && !strings.Contains(strings.Join(all, "\n"), tc.note) {
			t.Errorf("%q: notes %q, want %q", tc.body, all, tc.note)
		}
		if bin, err := exec.LookPath("systemd-analyze"); err == nil && tc.note == "" {
			out := filepath.Join(t.TempDir(), "service-n.service")
			os.WriteFile(out, []byte(unit), 0o644)
			cmd := exec.Command(bin, "verify", "--man=no", out)
			cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+filepath.Dir(out)+":")
			b, _ := cmd.CombinedOutput()
			for _, l := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(l) != "" && !strings.Contains(l, "RestartSteps") && !strings.Contains(l, "RestartMaxDelaySec") {
					t.Errorf("systemd-analyze verify: %s", l)
				}
			}
		}
	}
}
