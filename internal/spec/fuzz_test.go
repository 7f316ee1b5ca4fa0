package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. Seeds: testdata/fuzz/FuzzParse,
// among them the example of DESIGN.md.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`command = ["/bin/true"]`))
	f.Add([]byte("command = [\"/bin/true\"]\n[test]\ncommand = [\"curl\", \"-fsS\", \"http://127.0.0.1:8080/ok\"]\ntimeout = \"5s\"\n"))
	f.Add([]byte("script = \"exec srv\"\n[test]\nscript = \"\"\"\ncurl -fsS http://127.0.0.1/ok\n\"\"\"\ncommand = [\"\"]\ntimeout = \"-1s\"\n"))
	// Values of the wrong type, several to a file (types.go reads past
	// each), in tables, arrays of tables and inline tables.
	f.Add([]byte("command = \"/bin/sleep 100\"\nready_after = 5\nuser = 1000\nenv = { A = 1, B = \"x\" }\n[restart]\nlimit = \"5\"\n[[check]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = 3\n[[check]]\ncycles = true\n"))
	f.Add([]byte("command = [\"x\", 1]\nrestart = 5\nstop = { timeout = 5 }\ncheck = [{ type = 1 }, 2]\n[log]\nrotate = \"7\"\n[[log.file]]\npath = 3\n"))
	f.Add([]byte("command = [\"x\"]\ndepends_on = \"a b\"\ngroups = [1]\n[limits]\nnofile = [1]\n[test]\ntimeout = 1.5\n"))
	f.Add([]byte("command = [\"x\"]\nready = \"notify\"\nwatchdog = \"30s\"\nready_timeout = \"5s\"\n"))
	f.Add([]byte("command = [\"x\"]\nready = \"fd:3\"\n"))
	f.Add([]byte("command = [\"x\"]\nready = 'log:^ready (\\d+)$'\n"))
	f.Add([]byte("command = [\"x\"]\nready = \"log:[\"\nwatchdog = \"1s\"\n"))
	const (
		root = "/srv/root"
		dir  = root + "/var/www/api-fuzz"
		file = dir + "/service.toml"
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ps := Parse(root, dir, data)
		lines := bytes.Split(data, []byte("\n"))
		for _, p := range ps {
			if p.File != file {
				t.Errorf("problem %q has File %q", p, p.File)
			}
			if p.Line < 0 || p.Line > len(lines) {
				t.Errorf("problem %q: line %d outside 1..%d", p, p.Line, len(lines))
			}
			if p.Line >= 1 && p.Line <= len(lines) && (p.Col < 1 || p.Col > len(lines[p.Line-1])+1) {
				t.Errorf("problem %q: column %d outside line %q", p, p.Col, lines[p.Line-1])
			}
			if p.Msg == "" {
				t.Errorf("problem %#v has no message", p)
			}
		}
		for i := 1; i < len(ps); i++ {
			if ps[i].Line < ps[i-1].Line || ps[i].Line == ps[i-1].Line && ps[i].Col < ps[i-1].Col {
				t.Errorf("problems out of line order: %v", ps)
			}
		}
		if s == nil {
			if len(ps.Errors()) == 0 {
				t.Fatalf("no service and no error: %v", ps)
			}
			return
		}
		if len(ps.Errors()) > 0 {
			t.Fatalf("a service despite errors: %v", ps)
		}
		// What Parse returns holds up to its own rules.
		if s.Name != "api-fuzz" || s.Dir != dir || s.File != file {
			t.Errorf("name %q dir %q file %q", s.Name, s.Dir, s.File)
		}
		runs := 0
		for _, set := range []bool{len(s.Command) > 0, s.Script != "", len(s.StartCommand) > 0} {
			if set {
				runs++
			}
		}
		if runs != 1 {
			t.Errorf("%d of command, script, start_command set", runs)
		}
		if len(s.StartCommand) > 0 && s.PIDFile == "" {
			t.Error("start_command without pidfile")
		}
		for _, p := range []string{s.Directory, s.EnvFile, s.PIDFile} {
			if p == "" {
				continue
			}
			if rel, err := filepath.Rel(root, p); err != nil || !filepath.IsAbs(p) || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Errorf("path %q is not under the root", p)
			}
		}
		if s.Directory == "" {
			t.Error("no directory")
		}
		switch s.Restart.Policy {
		case Always, OnFailure, Never:
		default:
			t.Errorf("policy %q", s.Restart.Policy)
		}
		if s.Restart.Limit < 1 || s.Restart.Window <= 0 || s.Restart.Backoff > s.Restart.MaxBackoff {
			t.Errorf("restart %+v", s.Restart)
		}
		if _, err := ParseSignal(s.Stop.Signal); err != nil {
			t.Error(err)
		}
		for _, d := range s.DependsOn {
			if CheckName(d) != nil || d == s.Name {
				t.Errorf("depends_on %q", d)
			}
		}
		for k, v := range s.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
				t.Errorf("env %q=%q", k, v)
			}
		}
		for _, c := range s.Capabilities {
			if n, ok := Capability(c); !ok || "CAP_"+capabilityNames[n] != c {
				t.Errorf("capability %q is not a canonical known name", c)
			}
		}
		if _, err := parseUmask(s.Umask); err != nil {
			t.Error(err)
		}
		for _, l := range []*Limit{s.Limits.Nofile, s.Limits.Nproc, s.Limits.Core} {
			if l != nil && (l.err != nil || l.Soft > l.Hard) {
				t.Errorf("limit %+v", *l)
			}
		}
		for _, lf := range s.LogFiles {
			// Never outside var/log, never one of the daemon's own files.
			rel, err := filepath.Rel(filepath.Join(root, LogFileDir), lf.Abs)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || !strings.Contains(rel, "/") {
				t.Errorf("log file %q is not in a directory beneath var/log", lf.Abs)
			}
			if lf.Method != CopyTruncate && lf.Method != Rename {
				t.Errorf("log file method %q", lf.Method)
			}
		}
	})
}

var envErrRE = regexp.MustCompile(`^:(\d+):(\d+): (want KEY=VALUE|bad quoted value|value holds a NUL byte)$`)

// FuzzReadEnvFile feeds ReadEnvFile arbitrary files. What it accepts can be
// written back as KEY="quoted" lines and read again unchanged.
func FuzzReadEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n"))
	// One directory for all inputs: a worker runs them one at a time, and
	// a t.TempDir each would cost more than the parsing.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.env")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		env, err := ReadEnvFile(path)
		if err != nil {
			rest, ok := strings.CutPrefix(err.Error(), path)
			if !ok {
				t.Fatalf("error %q does not start with the path", err)
			}
			if strings.Contains(rest, "token too long") {
				return
			}
			m := envErrRE.FindStringSubmatch(rest)
			if m == nil {
				t.Fatalf("error %q is not path:line:col: message", err)
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			lines := strings.Split(string(data), "\n")
			if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
				t.Fatalf("error %q is outside the file", err)
			}
			if env != nil {
				t.Fatal("an environment with an error")
			}
			return
		}
		var b strings.Builder
		for k, v := range env {
			if k == "" || strings.ContainsAny(k, "= \t\"'\x00\n") || strings.HasPrefix(k, "#") {
				t.Errorf("key %q", k)
			}
			if strings.IndexByte(v, 0) >= 0 {
				t.Errorf("value of %q holds a NUL byte", k)
			}
			b.WriteString(k + "=" + strconv.Quote(v) + "\n")
		}
		again := filepath.Join(dir, "again.env")
		if err := os.WriteFile(again, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		env2, err := ReadEnvFile(again)
		if err != nil {
			t.Fatalf("reading back %q: %v", b.String(), err)
		}
		if len(env2) != len(env) {
			t.Fatalf("read back %q, want %q", env2, env)
		}
		for k, v := range env {
			if env2[k] != v {
				t.Fatalf("read back %q=%q, want %q", k, env2[k], v)
			}
		}
	})
}
