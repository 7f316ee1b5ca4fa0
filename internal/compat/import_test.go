package compat

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// osOptions follow includes on the real file system, as the CLI does.
var osOptions = Options{ReadFile: os.ReadFile, Glob: filepath.Glob, Validate: true}

// importFiles imports files (paths relative to the package) and renders
// the result as a golden text: the notes, then each service.toml.
func importFiles(t *testing.T, files ...string) (*Result, []byte) {
	t.Helper()
	var in []Input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, Input{Path: f, Data: data})
	}
	r := Import(in, osOptions)
	var b bytes.Buffer
	b.WriteString("== notes\n")
	for _, n := range r.Notes {
		b.WriteString(n.String() + "\n")
	}
	for _, d := range r.Services {
		b.WriteString("== " + d.Name + "/service.toml\n")
		b.Write(d.TOML())
	}
	return r, b.Bytes()
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// checkValid asserts what Import promises: every service it returns loads
// with spec.Parse, the daemon's own loader, without a problem.
func checkValid(t *testing.T, r *Result) {
	t.Helper()
	for _, d := range r.Services {
		s, ps := spec.Parse("/", "/var/www/"+d.Name, d.TOML())
		if s == nil || len(ps) > 0 {
			t.Errorf("%s: does not load: %v\n%s", d.Name, ps, d.TOML())
			continue
		}
		// Import checks the service in memory instead of reading the
		// TOML back: both must come to the same definition.
		mem := d.service(nil)
		if ps := spec.Validate("/", "/var/www/"+d.Name, &mem); len(ps) > 0 {
			t.Errorf("%s: spec.Validate refuses what spec.Parse loads: %v\n%s", d.Name, ps, d.TOML())
		} else if !reflect.DeepEqual(*s, mem) {
			t.Errorf("%s: the TOML reads back as\n%#v\nnot as in memory\n%#v\n%s", d.Name, *s, mem, d.TOML())
		}
		if err := spec.CheckName(d.Name); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
	}
	for _, n := range r.Notes {
		if strings.Contains(n.Msg, "internal:") {
			t.Errorf("importer bug: %s", n)
		}
		if n.File == "" || n.Msg == "" {
			t.Errorf("note without a place or message: %#v", n)
		}
	}
}

// The guide's monit stanza and upstart job (shared seed, services-guide.txt).
func TestImportGuide(t *testing.T) {
	dir := "testdata/import/guide"
	for _, tc := range []struct {
		golden   string
		files    []string
		services int
		errs     int
	}{
		// monit alone only asks upstart to start the job: nothing to run.
		{"monit-alone.golden", []string{"monitrc"}, 0, 1},
		{"upstart-alone.golden", []string{"app_name.conf"}, 1, 0},
		// Together, one service: the job's command, user and env with
		// monit's HTTP check, in either order.
		{"pair.golden", []string{"monitrc", "app_name.conf"}, 1, 0},
		{"pair-reversed.golden", []string{"app_name.conf", "monitrc"}, 1, 0},
		// With the guide's logrotate stanza (renamed to the service).
		{"with-logrotate.golden", []string{"monitrc", "app_name.conf", "logrotate"}, 1, 0},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var files []string
			for _, f := range tc.files {
				files = append(files, filepath.Join(dir, f))
			}
			r, got := importFiles(t, files...)
			checkValid(t, r)
			if len(r.Services) != tc.services || len(r.Errors()) != tc.errs {
				t.Errorf("%d services and %d errors, want %d and %d:\n%s", len(r.Services), len(r.Errors()), tc.services, tc.errs, got)
			}
			golden(t, filepath.Join(dir, tc.golden), got)
		})
	}
	r, _ := importFiles(t, filepath.Join(dir, "monitrc"), filepath.Join(dir, "app_name.conf"))
	s, _ := spec.Parse("/", "/var/www/app_name", r.Services[0].TOML())
	if got := strings.Join(s.Command, " "); got != "/usr/local/bin/node path/to/node/app/server.js production" {
		t.Errorf("command %q", got)
	}
	if s.User != "nodejs" || s.Env["HOME"] != "path/to/node/app" || s.Restart.Policy != spec.Always || len(s.Checks) != 1 ||
		s.Checks[0].URL != "http://127.0.0.1:80/ok" || s.Checks[0].Timeout.D().String() != "5s" || s.Checks[0].Then != "restart" {
		t.Errorf("merged service: %+v", s)
	}
}

// monitCases cover the grammar of monit's control file, one concern each;
// the inputs are in testdata/import/monit, next to their golden output.
var monitCases = []struct {
	name     string
	services int
	errs     int
}{
	{"01-pidfile", 1, 0},               // start/stop program + pidfile, restarts within cycles
	{"02-as-uid", 1, 0},                // as uid/gid, with timeout on start and stop
	{"03-http-options", 1, 0},          // host, type, protocol https, request, status, hostheader, content, cycles
	{"04-times-within", 1, 0},          // N times within M cycles, pgsql, for N cycles
	{"05-resources", 1, 0},             // cpu, totalcpu, memory, totalmem, children, uptime, fds; what has no equivalent
	{"06-depends", 1, 0},               // depends on, group, mode manual
	{"07-every", 2, 0},                 // set daemon, every N cycles, cron every, restarts within → window
	{"08-host-udp-ping", 1, 0},         // check host without pidfile, udp, ping, icmp
	{"09-unixsocket", 1, 0},            // unixsocket; a stop program that needs a shell
	{"10-redis-send-expect", 1, 0},     // protocol redis, send/expect
	{"11-comments-continuation", 1, 0}, // comments, statements across lines, backslashes
	{"12-include", 2, 0},               // include globs, relative and missing
	{"13-not-services", 1, 0},          // set httpd/alert/mailserver, check system/file/filesystem
	{"14-matching", 1, 0},              // matching instead of a pid file
	{"15-passive", 1, 0},               // mode passive
	{"16-alerts-onreboot", 1, 0},       // restart program, onreboot, alert, noalert, else if succeeded, does not exist
	{"17-exec-stop-actions", 1, 0},     // then exec … as uid … repeat, stop, unmonitor
	{"18-malformed", 2, 1},             // statements outside a check, bad names, missing then, bad port, no start
	{"19-systemd-delegate", 0, 1},      // systemctl start without the unit
	{"20-shell-start", 1, 0},           // start and stop programs that need sh
}

func TestImportMonit(t *testing.T) {
	for _, tc := range monitCases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join("testdata/import/monit", tc.name+".monitrc")
			r, got := importFiles(t, file)
			checkValid(t, r)
			if len(r.Services) != tc.services || len(r.Errors()) != tc.errs {
				t.Errorf("%d services and %d errors, want %d and %d:\n%s", len(r.Services), len(r.Errors()), tc.services, tc.errs, got)
			}
			golden(t, strings.TrimSuffix(file, ".monitrc")+".golden", got)
		})
	}
}

// The other formats: one golden per input file (or group of files).
func TestImportOthers(t *testing.T) {
	for _, tc := range []struct {
		golden   string
		files    []string
		services int
		errs     int
	}{
		{"upstart/full.golden", []string{"upstart/service-api.conf"}, 1, 0},
		{"upstart/script.golden", []string{"upstart/www-worker.conf"}, 1, 0},
		{"upstart/task.golden", []string{"upstart/api-migrate.conf"}, 1, 0},
		{"upstart/redirects.golden", []string{"upstart/www-site.conf"}, 1, 0},
		{"upstart/odd.golden", []string{"upstart/api-odd.conf"}, 1, 0},
		{"supervisord/supervisord.golden", []string{"supervisord/supervisord.conf"}, 3, 0},
		{"procfile/Procfile.golden", []string{"procfile/Procfile"}, 3, 0},
		{"logrotate/with-job.golden", []string{"logrotate/api-app.conf", "logrotate/api-app"}, 1, 0},
		{"logrotate/alone.golden", []string{"logrotate/api-app"}, 0, 1},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var files []string
			for _, f := range tc.files {
				files = append(files, filepath.Join("testdata/import", f))
			}
			r, got := importFiles(t, files...)
			checkValid(t, r)
			if len(r.Services) != tc.services || len(r.Errors()) != tc.errs {
				t.Errorf("%d services and %d errors, want %d and %d:\n%s", len(r.Services), len(r.Errors()), tc.services, tc.errs, got)
			}
			golden(t, filepath.Join("testdata/import", tc.golden), got)
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		file, data string
		want       Format
	}{
		{"x", "check process a with pidfile /x\n", Monit},
		{"monitrc", "set daemon 30\n", Monit},
		{"a.conf", "[program:a]\ncommand=/bin/a\n", Supervisord},
		{"a.conf", "description \"a\"\nexec /bin/a\n", Upstart},
		{"Procfile", "web: ./web\n", Procfile},
		{"procs", "web: ./web\nworker: ./worker\n", Procfile},
		{"a", "/var/log/a.log {\n  daily\n}\n", Logrotate},
	} {
		got, err := Detect(tc.file, []byte(tc.data))
		if err != nil || got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, %v; want %q", tc.file, tc.data, got, err, tc.want)
		}
	}
	if _, err := Detect("x", []byte("hello world\n")); err == nil {
		t.Error("Detect of prose: no error")
	}
}

func TestShell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		argv string // joined with |; "" when not plain
		user string
	}{
		{`exec sudo -u nodejs /usr/bin/node server.js 2>> e.log >>o.log`, "/usr/bin/node|server.js", "nodejs"},
		{`/bin/a "b c" 'd e' f\ g`, "/bin/a|b c|d e|f g", ""},
		{`HOME=/x exec env A=1 /bin/a`, "", ""}, // exec after an assignment: sh, not a program
		{`chpst -u www:www /bin/a`, "/bin/a", "www"},
		{`/bin/a $HOME`, "", ""},
		{`/bin/a | tee x`, "", ""},
		{`/bin/a &`, "", ""},
		{`cd /x`, "", ""},
	} {
		cl, ok := parseCommandLine(tc.in)
		got := ""
		if ok {
			got = strings.Join(cl.argv, "|")
		}
		if got != tc.argv || ok && cl.user != tc.user {
			t.Errorf("parseCommandLine(%q) = %q user %q, want %q user %q", tc.in, got, cl.user, tc.argv, tc.user)
		}
	}
}

// Every service the testdata and the benchmark's file import to reads
// back from its TOML as Import checked it in memory (checkValid).
func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/import/*/*")
	in := []Input{{Path: "bench.monitrc", Data: monitFile(50), Format: Monit}}
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		if data, err := os.ReadFile(f); err == nil {
			in = append(in, Input{Path: f, Data: data})
		}
	}
	n := 0
	for _, one := range in {
		r := Import([]Input{one}, osOptions)
		checkValid(t, r)
		n += len(r.Services)
	}
	if n < 40 {
		t.Errorf("only %d services compared", n)
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("abcdefghij", 9) // 90 bytes
	for _, tc := range []struct{ in, want string }{
		{"if failed port 80 then restart", "if failed port 80 then restart"},
		{"if  failed\n\tport 80 ", "if failed port 80"},
		{long, long[:50] + " … " + long[90-19:]},
		{" " + long + "  x", long[:50] + " … " + (long + " x")[92-19:]},
		{"é" + long, "é" + long[:49] + " … " + long[90-19:]},
	} {
		if got := shorten(tc.in); got != tc.want {
			t.Errorf("shorten(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
