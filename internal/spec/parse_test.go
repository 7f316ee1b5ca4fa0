package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// Parse never touches the file system, so its tests use a made-up root.
const (
	testRoot = "/srv/root"
	testDir  = testRoot + "/" + WWW + "/api-app"
	testFile = testDir + "/" + FileName
)

func parse(body string) (*Service, Problems) {
	return Parse(testRoot, testDir, []byte(body))
}

// positions renders problems without the file name, which every one of them
// must carry: "5:1: restart.policy: ...".
func positions(t *testing.T, file string, ps Problems) []string {
	t.Helper()
	var out []string
	for _, p := range ps {
		s := p.String()
		rest, ok := strings.CutPrefix(s, file)
		if !ok || p.File != file {
			t.Errorf("problem %q is not placed in %s", s, file)
		}
		out = append(out, strings.TrimPrefix(rest, ":"))
	}
	return out
}

// defaultsFor is what a definition holding only a command parses to:
// Defaults() with the fields Parse always fills in.
func defaultsFor(command ...string) Service {
	s := Defaults()
	s.Name, s.Dir, s.File = "api-app", testDir, testFile
	s.Directory = testDir
	s.Command = command
	return s
}

func TestParseMinimalIsDefaults(t *testing.T) {
	s, ps := parse(`command = ["/bin/true"]`)
	if len(ps) > 0 || s == nil {
		t.Fatalf("Parse: %v", ps)
	}
	if want := defaultsFor("/bin/true"); !reflect.DeepEqual(*s, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *s, want)
	}
}

// Spelling out every default must change nothing: the values Defaults()
// returns are valid ones, and the file format can say all of them.
func TestParseExplicitDefaults(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("command = [\"/bin/true\"]\n")
	if err := toml.NewEncoder(&b).Encode(Defaults()); err != nil {
		t.Fatal(err)
	}
	s, ps := parse(b.String())
	if len(ps) > 0 || s == nil {
		t.Fatalf("Parse:\n%s\n%v", b.String(), ps)
	}
	if want := defaultsFor("/bin/true"); !reflect.DeepEqual(*s, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *s, want)
	}
}

func TestDefaults(t *testing.T) {
	d := Defaults()
	// The documented defaults (docs/service.toml.md); a change here is a
	// change of the file format.
	want := Service{
		Directory:  ".",
		Autostart:  true,
		ReadyAfter: Duration(time.Second),
		Restart: Restart{
			Policy:      Always,
			Backoff:     Duration(100 * time.Millisecond),
			MaxBackoff:  Duration(30 * time.Second),
			StableAfter: Duration(10 * time.Second),
			Limit:       10,
			Window:      Duration(time.Minute),
		},
		Stop:       Stop{Signal: "TERM", Timeout: Duration(10 * time.Second)},
		Log:        Log{When: "daily", Rotate: 7, Compress: true, DelayCompress: true, NotIfEmpty: true, MissingOK: true},
		Privileges: Privileges{Umask: "0022"},
		Test:       Test{Timeout: Duration(time.Minute)},
		// ready.go
		ReadyTimeout: Duration(time.Minute),
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Defaults() = %+v, want %+v", d, want)
	}
	if d.Daemonizes() {
		t.Error("the default service daemonizes")
	}
}

func TestParseEveryKey(t *testing.T) {
	const body = `# every key, none at its default
name         = "api-app"
version      = "1.4.2"
command      = ["/usr/local/bin/node", "server.js", "production"]
directory    = "current"
user         = "nodejs"
group        = "www-data"
env          = { NODE_ENV = "production", PORT = "8080" }
env_file     = ".env"
autostart    = false
depends_on   = ["service-db", "service-cache"]
ready_after  = "2s"
stop_command = ["/usr/local/bin/node", "stop.js"]

[restart]
policy       = "on-failure"
backoff      = "250ms"
max_backoff  = "1m"
stable_after = "30s"
limit        = 5
window       = "2m"

[stop]
signal  = "INT"
timeout = "20s"

[log]
when          = "hourly"
size          = "64M"
minsize       = "1k"
rotate        = 3
compress      = false
delaycompress = false
notifempty    = false
missingok     = false
dateext       = true
dateformat    = "-%Y%m%d-%s"
dateyesterday = true
maxage        = 30
`
	s, ps := parse(body)
	if len(ps) > 0 || s == nil {
		t.Fatalf("Parse: %v", ps)
	}
	want := Service{
		Name:        "api-app",
		Version:     "1.4.2",
		Command:     []string{"/usr/local/bin/node", "server.js", "production"},
		Directory:   testDir + "/current",
		User:        "nodejs",
		Group:       "www-data",
		Env:         map[string]string{"NODE_ENV": "production", "PORT": "8080"},
		EnvFile:     testDir + "/.env",
		Autostart:   false,
		DependsOn:   []string{"service-db", "service-cache"},
		ReadyAfter:  Duration(2 * time.Second),
		StopCommand: []string{"/usr/local/bin/node", "stop.js"},
		Restart: Restart{
			Policy:      OnFailure,
			Backoff:     Duration(250 * time.Millisecond),
			MaxBackoff:  Duration(time.Minute),
			StableAfter: Duration(30 * time.Second),
			Limit:       5,
			Window:      Duration(2 * time.Minute),
		},
		Stop: Stop{Signal: "INT", Timeout: Duration(20 * time.Second)},
		Log: Log{When: "hourly", Size: 64 << 20, MinSize: 1 << 10, Rotate: 3, DateExt: true,
			DateFormat: "-%Y%m%d-%s", DateYesterday: true, MaxAge: 30},
		Privileges: Privileges{Umask: "0022"},
		Test:       Test{Timeout: Duration(time.Minute)},
		Dir:        testDir,
		File:       testFile,
		// ready.go
		ReadyTimeout: Duration(time.Minute),
	}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *s, want)
	}
}

// Each key alone on top of the defaults: the key takes its value and
// nothing else moves.
func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		body string
		want func(s *Service)
	}{
		{"name equal to the directory", `name = "api-app"`, func(s *Service) {}},
		{"version", `version = "2.0.0-rc.1"`, func(s *Service) { s.Version = "2.0.0-rc.1" }},
		{"directory relative", `directory = "releases/1.0"`, func(s *Service) { s.Directory = testDir + "/releases/1.0" }},
		{"directory dot-dot inside the root", `directory = "../service-db"`, func(s *Service) { s.Directory = testRoot + "/var/www/service-db" }},
		{"directory absolute goes under the root", `directory = "/opt/app"`, func(s *Service) { s.Directory = testRoot + "/opt/app" }},
		{"directory cleaned", `directory = "./a//b/../c/"`, func(s *Service) { s.Directory = testDir + "/a/c" }},
		{"user", `user = "nodejs"`, func(s *Service) { s.User = "nodejs" }},
		{"user by id", `user = "1000"`, func(s *Service) { s.User = "1000" }},
		{"group", `group = "www-data"`, func(s *Service) { s.Group = "www-data" }},
		{"env inline", `env = { HOME = "/var/www/api-app", EMPTY = "" }`, func(s *Service) {
			s.Env = map[string]string{"HOME": "/var/www/api-app", "EMPTY": ""}
		}},
		{"env empty", `env = {}`, func(s *Service) { s.Env = map[string]string{} }},
		{"env table", "[env]\nA = \"1\"\n\"B.C\" = \"2\"", func(s *Service) { s.Env = map[string]string{"A": "1", "B.C": "2"} }},
		{"env_file relative", `env_file = ".env"`, func(s *Service) { s.EnvFile = testDir + "/.env" }},
		{"env_file absolute goes under the root", `env_file = "/etc/api-app.env"`, func(s *Service) { s.EnvFile = testRoot + "/etc/api-app.env" }},
		{"autostart false", `autostart = false`, func(s *Service) { s.Autostart = false }},
		{"autostart true", `autostart = true`, func(s *Service) {}},
		{"depends_on", `depends_on = ["service-db", "www-1.2_x"]`, func(s *Service) { s.DependsOn = []string{"service-db", "www-1.2_x"} }},
		{"depends_on empty", `depends_on = []`, func(s *Service) { s.DependsOn = []string{} }},
		{"ready_after", `ready_after = "1m30s"`, func(s *Service) { s.ReadyAfter = Duration(90 * time.Second) }},
		{"ready_after zero", `ready_after = "0s"`, func(s *Service) { s.ReadyAfter = 0 }},
		{"stop_command", `stop_command = ["kill-app", "--now"]`, func(s *Service) { s.StopCommand = []string{"kill-app", "--now"} }},
		{"pidfile with command", `pidfile = "run/app.pid"`, func(s *Service) { s.PIDFile = testDir + "/run/app.pid" }},
		{"pidfile absolute goes under the root", `pidfile = "/run/app.pid"`, func(s *Service) { s.PIDFile = testRoot + "/run/app.pid" }},
		{"restart.policy always", "[restart]\npolicy = \"always\"", func(s *Service) {}},
		{"restart.policy on-failure", "[restart]\npolicy = \"on-failure\"", func(s *Service) { s.Restart.Policy = OnFailure }},
		{"restart.policy never", "[restart]\npolicy = \"never\"", func(s *Service) { s.Restart.Policy = Never }},
		{"restart.backoff", "[restart]\nbackoff = \"1s\"", func(s *Service) { s.Restart.Backoff = Duration(time.Second) }},
		{"restart.backoff zero", "[restart]\nbackoff = \"0s\"", func(s *Service) { s.Restart.Backoff = 0 }},
		{"restart.backoff equal to max", "[restart]\nbackoff = \"30s\"", func(s *Service) { s.Restart.Backoff = Duration(30 * time.Second) }},
		{"restart.max_backoff", "[restart]\nmax_backoff = \"5m\"", func(s *Service) { s.Restart.MaxBackoff = Duration(5 * time.Minute) }},
		{"restart.stable_after", "[restart]\nstable_after = \"1h\"", func(s *Service) { s.Restart.StableAfter = Duration(time.Hour) }},
		{"restart.limit", "[restart]\nlimit = 1", func(s *Service) { s.Restart.Limit = 1 }},
		{"restart.window", "[restart]\nwindow = \"10m\"", func(s *Service) { s.Restart.Window = Duration(10 * time.Minute) }},
		{"restart dotted", `restart.policy = "never"`, func(s *Service) { s.Restart.Policy = Never }},
		{"restart inline", `restart = { limit = 3, window = "5s" }`, func(s *Service) {
			s.Restart.Limit, s.Restart.Window = 3, Duration(5*time.Second)
		}},
		{"stop.signal name", "[stop]\nsignal = \"QUIT\"", func(s *Service) { s.Stop.Signal = "QUIT" }},
		{"stop.signal SIG name", "[stop]\nsignal = \"SIGINT\"", func(s *Service) { s.Stop.Signal = "SIGINT" }},
		{"stop.signal number", "[stop]\nsignal = \"15\"", func(s *Service) { s.Stop.Signal = "15" }},
		{"stop.timeout", "[stop]\ntimeout = \"1m\"", func(s *Service) { s.Stop.Timeout = Duration(time.Minute) }},
		{"stop.timeout zero", "[stop]\ntimeout = \"0s\"", func(s *Service) { s.Stop.Timeout = 0 }},
		{"comments and blank lines", "# a comment\n\n[stop] # trailing\ntimeout = \"1s\" # trailing", func(s *Service) {
			s.Stop.Timeout = Duration(time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// command first: a table in tt.body must come after it.
			s, ps := parse("command = [\"/bin/true\"]\n" + tt.body + "\n")
			if len(ps) > 0 || s == nil {
				t.Fatalf("Parse: %v", ps)
			}
			want := defaultsFor("/bin/true")
			tt.want(&want)
			if !reflect.DeepEqual(*s, want) {
				t.Errorf("got\n%+v\nwant\n%+v", *s, want)
			}
		})
	}
}

func TestParseHowItRuns(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		command    []string
		script     string
		start      []string
		pidfile    string
		daemonizes bool
	}{
		{"command", `command = ["node", "server.js"]`, []string{"node", "server.js"}, "", nil, "", false},
		{"script", "script = \"\"\"\n[ -f .env ] && . ./.env\nexec node server.js\n\"\"\"", nil, "[ -f .env ] && . ./.env\nexec node server.js\n", nil, "", false},
		{"start_command and pidfile", "start_command = [\"/usr/sbin/nginx\"]\npidfile = \"/run/nginx.pid\"",
			nil, "", []string{"/usr/sbin/nginx"}, testRoot + "/run/nginx.pid", true},
		{"daemonizing command and pidfile", "command = [\"/usr/sbin/nginx\"]\npidfile = \"nginx.pid\"",
			[]string{"/usr/sbin/nginx"}, "", nil, testDir + "/nginx.pid", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := parse(tt.body)
			if len(ps) > 0 || s == nil {
				t.Fatalf("Parse: %v", ps)
			}
			if !reflect.DeepEqual(s.Command, tt.command) || s.Script != tt.script || !reflect.DeepEqual(s.StartCommand, tt.start) || s.PIDFile != tt.pidfile {
				t.Errorf("got command %q script %q start_command %q pidfile %q", s.Command, s.Script, s.StartCommand, s.PIDFile)
			}
			if s.Daemonizes() != tt.daemonizes {
				t.Errorf("Daemonizes() = %v, want %v", s.Daemonizes(), tt.daemonizes)
			}
		})
	}
}

// TestParseProblems holds every validation error: the definition is refused
// and each problem is placed at file:line:col and named by its key.
func TestParseProblems(t *testing.T) {
	const cmd = "command = [\"/bin/true\"]\n"
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"nothing to run", `version = "1"`, []string{
			"1:1: command: one of command, script or start_command is required"}},
		{"empty command", `command = []`, []string{
			"1:1: command: one of command, script or start_command is required"}},
		{"command and script", "version = \"1\"\ncommand = [\"a\"]\nscript = \"b\"", []string{
			"2:1: command: set only one of command, script and start_command"}},
		{"command and start_command", "command = [\"a\"]\nstart_command = [\"b\"]\npidfile = \"p\"", []string{
			"1:1: command: set only one of command, script and start_command"}},
		{"empty program", "\n  command = [\"\", \"x\"]", []string{
			"2:3: command: the program (first element) is empty"}},
		{"blank program", `command = [" "]`, []string{
			"1:1: command: the program (first element) is empty"}},
		{"NUL in command", `command = ["x", "a\u0000b"]`, []string{
			"1:1: command: contains a NUL byte"}},
		{"empty start_command program", "start_command = [\"\"]\npidfile = \"p\"", []string{
			"1:1: start_command: the program (first element) is empty"}},
		{"NUL in stop_command", cmd + `stop_command = ["x\u0000"]`, []string{
			"2:1: stop_command: contains a NUL byte"}},
		{"empty stop_command program", cmd + `stop_command = [""]`, []string{
			"2:1: stop_command: the program (first element) is empty"}},
		{"start_command without pidfile", "\n\nstart_command = [\"nginx\"]", []string{
			"3:1: start_command: needs pidfile, to follow the process it starts"}},
		{"directory leaves the root", cmd + `directory = "../../../../etc"`, []string{
			`2:1: directory: path "../../../../etc" leaves the root`}},
		{"absolute directory leaves the root", cmd + `directory = "/../etc"`, []string{
			`2:1: directory: path "/../etc" leaves the root`}},
		{"env_file leaves the root", cmd + "\nenv_file = \"../../../../../etc/shadow\"", []string{
			`3:1: env_file: path "../../../../../etc/shadow" leaves the root`}},
		{"absolute env_file leaves the root", cmd + `env_file = "/x/../../etc/shadow"`, []string{
			`2:1: env_file: path "/x/../../etc/shadow" leaves the root`}},
		{"pidfile leaves the root", cmd + `pidfile = "../../../../run/x.pid"`, []string{
			`2:1: pidfile: path "../../../../run/x.pid" leaves the root`}},
		{"env name with =", cmd + `env = { "A=B" = "1" }`, []string{
			`2:1: env: invalid variable "A=B"`}},
		{"empty env name", cmd + "[env]\n\"\" = \"1\"", []string{
			`2:1: env: invalid variable ""`}},
		{"NUL in env value", cmd + `env = { A = "a\u0000" }`, []string{
			`2:1: env: invalid variable "A"`}},
		{"depends_on bad name", cmd + `depends_on = ["Service-DB"]`, []string{
			`2:1: depends_on: service name "Service-DB" must be a-z 0-9 - _ . starting with a letter or digit`}},
		{"depends_on itself", cmd + `depends_on = ["api-app"]`, []string{
			`2:1: depends_on: a service cannot depend on itself`}},
		{"restart.policy", cmd + "version = \"1\"\n\n[restart]\npolicy = \"sometimes\"", []string{
			`5:1: restart.policy: "sometimes" is not one of always, on-failure, never`}},
		{"restart.policy dotted", cmd + `restart.policy = "Always"`, []string{
			`2:1: restart.policy: "Always" is not one of always, on-failure, never`}},
		{"restart.policy inline", cmd + "\nrestart = { policy = \"no\" }", []string{
			`3:1: restart.policy: "no" is not one of always, on-failure, never`}},
		{"restart.policy quoted key", cmd + "[restart]\n  \"policy\" = \"\"", []string{
			`3:3: restart.policy: "" is not one of always, on-failure, never`}},
		{"restart.limit zero", cmd + "[restart]\nlimit = 0", []string{
			`3:1: restart.limit: must be at least 1`}},
		{"restart.limit negative", cmd + "[restart]\nlimit = -3", []string{
			`3:1: restart.limit: must be at least 1`}},
		{"restart.backoff over max_backoff", cmd + "[restart]\nbackoff = \"1m\"", []string{
			`3:1: restart.backoff: is longer than restart.max_backoff (30s)`}},
		{"restart.max_backoff under backoff", cmd + "[restart]\nbackoff = \"1s\"\nmax_backoff = \"500ms\"", []string{
			`3:1: restart.backoff: is longer than restart.max_backoff (500ms)`}},
		{"restart.window zero", cmd + "[restart]\nwindow = \"0s\"", []string{
			`3:1: restart.window: must be longer than 0`}},
		{"stop.signal unknown", cmd + "[stop]\nsignal = \"NOPE\"", []string{
			`3:1: stop.signal: unknown signal "NOPE"`}},
		{"stop.signal zero", cmd + "[stop]\nsignal = \"0\"", []string{
			`3:1: stop.signal: unknown signal "0"`}},
		{"stop.signal out of range", cmd + "[stop]\nsignal = \"65\"", []string{
			`3:1: stop.signal: unknown signal "65"`}},
		{"stop.signal empty", cmd + "[stop]\nsignal = \"\"", []string{
			`3:1: stop.signal: unknown signal ""`}},
		{"user with colon", cmd + `user = "app:app"`, []string{
			`2:1: user: "app:app" is not a user or group name`}},
		{"user with slash", cmd + `user = "../x"`, []string{
			`2:1: user: "../x" is not a user or group name`}},
		{"group with space", cmd + `group = "www data"`, []string{
			`2:1: group: "www data" is not a user or group name`}},
		{"name differs from the directory", "\nname = \"api-other\"\n" + cmd, []string{
			`2:1: name: "api-other" differs from the directory's name "api-app"`}},
		{"unknown top-level key", cmd + "\ncomand = [\"x\"]", []string{
			`3:1: comand: unknown key; did you mean "command"?`}},
		{"unknown key in a table", cmd + "[restart]\npolicy = \"always\"\n  retries = 3", []string{
			`4:3: restart.retries: unknown key`}},
		{"unknown key in an inline table", cmd + `stop = { signal = "TERM", grace = "5s" }`, []string{
			`2:1: stop.grace: unknown key`}},
		{"unknown table", cmd + "[[hook]]\nrun = \"x\"", []string{
			`2:1: hook: unknown key`,
			`3:1: hook.run: unknown key`}},
		{"unknown subtable", cmd + "[restart.extra]\nx = 1", []string{
			`2:1: restart.extra: unknown key`,
			`3:1: restart.extra.x: unknown key`}},
		{"unknown dotted key", cmd + `stop.grace = "1s"`, []string{
			`2:1: stop.grace: unknown key`}},
		// A script's lines are not keys or tables: `[ -f .env ]` must not
		// hide the user key below it.
		{"position after a multi-line script", "script = \"\"\"\n[ -f .env ] && . ./.env\nuser = x\nexec node server.js\n\"\"\"\nuser = \"a b\"", []string{
			`6:1: user: "a b" is not a user or group name`}},
		{"position after a literal multi-line script", "script = '''\n[restart]\n'''\n[restart]\npolicy = \"x\"", []string{
			`5:1: restart.policy: "x" is not one of always, on-failure, never`}},
		{"CRLF line endings", "command = [\"x\"]\r\n[restart]\r\npolicy = \"x\"\r\n[stop]\r\nsignal = \"x\"\r\n", []string{
			`3:1: restart.policy: "x" is not one of always, on-failure, never`,
			`5:1: stop.signal: unknown signal "x"`}},
		{"every problem at once, in line order", "name = \"x\"\nuser = \"a:b\"\n[restart]\npolicy = \"x\"\nlimit = 0\n[stop]\nsignal = \"x\"", []string{
			`1:1: name: "x" differs from the directory's name "api-app"`,
			"1:1: command: one of command, script or start_command is required",
			`2:1: user: "a:b" is not a user or group name`,
			`4:1: restart.policy: "x" is not one of always, on-failure, never`,
			`5:1: restart.limit: must be at least 1`,
			`7:1: stop.signal: unknown signal "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := parse(tt.body)
			if s != nil {
				t.Errorf("Parse returned a service despite %v", ps)
			}
			if len(ps.Errors()) != len(ps) {
				t.Errorf("want only errors, got %v", ps)
			}
			got := positions(t, testFile, ps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// Several bad variables of one inline table are each reported (in no
// particular order: they share a line).
func TestParseEveryEnvProblem(t *testing.T) {
	_, ps := parse("command = [\"x\"]\nenv = { \"A=1\" = \"x\", \"\" = \"y\", OK = \"z\" }")
	got := positions(t, testFile, ps)
	want := map[string]bool{`2:1: env: invalid variable "A=1"`: true, `2:1: env: invalid variable ""`: true}
	if len(got) != len(want) || !want[got[0]] || !want[got[1]] {
		t.Errorf("got %q, want %v", got, want)
	}
}

// TOML syntax errors stop parsing; the one problem carries the decoder's
// line and column.
func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // line:col: key: message prefix
	}{
		{"unterminated array", "version = \"1\"\ncommand = [\"x\"", `2:14: command: expected a comma (',') or array terminator (']'), but got end of file`},
		{"unterminated table header", "command = [\"x\"]\n\n[restart\npolicy = \"never\"", `3:9: expected '.' or ']' to end table name, but got '\n' instead`},
		{"missing value", "command = [\"x\"]\nversion =\n", `2:10: version: expected value but found '\n' instead`},
		{"key defined twice", "command = [\"x\"]\ncommand = [\"y\"]", `2:1: command: Key 'command' has already been defined.`},
		{"table defined twice", "command = [\"x\"]\n[stop]\n[stop]\n", `3:2: Key 'stop' has already been defined.`},
		{"bad escape", "command = [\"x\"]\nversion = \"\\q\"", `2:12: version: invalid escape in string '\q'`},
		{"bare word", "command = [\"x\"]\nuser = nodejs", `2:8: user: expected value but found "nodejs" instead`},
		{"invalid UTF-8", "command = [\"x\"]\n\xff", `2:1: invalid UTF-8 byte: 0xff`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := parse(tt.body)
			if s != nil || len(ps) != 1 {
				t.Fatalf("want one problem and no service, got %v, %v", s, ps)
			}
			got := positions(t, testFile, ps)[0]
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// A value of the wrong type is a positioned problem too.
func TestParseTypeMismatch(t *testing.T) {
	const notDuration = `not a duration (want e.g. "500ms", "5s", "1m"): `
	tests := []struct {
		name string
		body string
		want string
	}{
		{"duration as a number", "command = [\"x\"]\n[stop]\ntimeout = 5", `3:11: stop.timeout: must be a duration string such as "5s", not the number 5`},
		{"duration without a unit", "command = [\"x\"]\n[stop]\ntimeout = \"5\"", `3:11: stop.timeout: ` + notDuration + `"5"`},
		{"duration in an inline table", "command = [\"x\"]\nrestart = { backoff = \"soon\" }", `2:11: restart.backoff: ` + notDuration + `"soon"`},
		{"negative duration", "command = [\"x\"]\nready_after = \"-1s\"", `2:15: ready_after: negative duration "-1s"`},
		{"command as a string", "version = \"1\"\ncommand = \"node server.js\"", `2:11: command: must be a list of strings, e.g. ["node", "server.js"]`},
		{"number in command", "command = [\"x\", 1]", `1:11: command: must be a list of strings; element 2 is the number 1`},
		{"autostart as a string", "command = [\"x\"]\nautostart = \"yes\"", `2:13: autostart: must be true or false, not the string "yes"`},
		{"limit as a string", "command = [\"x\"]\n[restart]\nlimit = \"5\"", `3:9: restart.limit: must be a whole number, not the string "5"`},
		{"depends_on as a string", "command = [\"x\"]\ndepends_on = \"service-db\"", `2:14: depends_on: must be a list of strings, e.g. ["service-db"]`},
		{"env value as a number", "command = [\"x\"]\nenv = { PORT = 8080 }", `2:7: env.PORT: must be a string, not the number 8080`},
		{"env as a string", "command = [\"x\"]\nenv = \"A=1\"", `2:1: env: must be a table, such as { NAME = "value" }`},
		{"env as an array", "command = [\"x\"]\n\nenv = [\"A=1\"]", `3:1: env: must be a table, such as { NAME = "value" }`},
		{"env as a number", "command = [\"x\"]\nenv = 5", `2:1: env: must be a table, such as { NAME = "value" }`},
		{"restart as a number", "command = [\"x\"]\nrestart = 5", `2:11: restart: must be a table ([restart]), not the number 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := parse(tt.body)
			if s != nil || len(ps) != 1 {
				t.Fatalf("want one problem and no service, got %v, %v", s, ps)
			}
			if got := positions(t, testFile, ps)[0]; got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"7", true},
		{"api-app", true},
		{"www-example.com", true},
		{"service_db-2", true},
		{"0day", true},
		{long, true},
		{"", false},
		{long + "b", false},
		{"Api-app", false},
		{"API", false},
		{"api app", false},
		{" api", false},
		{".hidden", false},
		{"-api", false},
		{"_api", false},
		{"a..b", false},
		{"..", false},
		{"a/b", false},
		{"a\x00", false},
		{"café", false},
	}
	for _, tt := range tests {
		if err := CheckName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// The directory gives the service its name; a bad one is a problem of the
// whole file (no line), and the name key may only repeat it.
func TestParseDirectoryName(t *testing.T) {
	tests := []struct {
		dir  string
		want string
	}{
		{"Api-App", `directory name: service name "Api-App" must be a-z 0-9 - _ . starting with a letter or digit`},
		{"api app", `directory name: service name "api app" must be a-z 0-9 - _ . starting with a letter or digit`},
		{".api-app", `directory name: service name ".api-app" must be a-z 0-9 - _ . starting with a letter or digit`},
		{"api..app", `directory name: service name "api..app" must be a-z 0-9 - _ . starting with a letter or digit`},
		{strings.Repeat("x", 65), `directory name: service name "` + strings.Repeat("x", 65) + `" is longer than 64 characters`},
	}
	for _, tt := range tests {
		dir := filepath.Join(testRoot, WWW, tt.dir)
		file := filepath.Join(dir, FileName)
		s, ps := Parse(testRoot, dir, []byte(`command = ["x"]`))
		if s != nil {
			t.Errorf("%q: a service was returned", tt.dir)
		}
		if want := file + ": " + tt.want; len(ps) != 1 || ps[0].String() != want {
			t.Errorf("%q: got %v\nwant %s", tt.dir, ps, want)
		}
	}

	// Even a name key that matches cannot make up for a bad directory.
	dir := filepath.Join(testRoot, WWW, "Api")
	if s, ps := Parse(testRoot, dir, []byte("name = \"Api\"\ncommand = [\"x\"]")); s != nil || len(ps) != 1 {
		t.Errorf("name = \"Api\" in Api/: got %v, %v", s, ps)
	}
}

func TestResolve(t *testing.T) {
	const (
		root = "/srv/root"
		dir  = root + "/var/www/api-app"
	)
	tests := []struct {
		root, path string
		want       string // "" for an error
	}{
		{root, ".", dir},
		{root, "", dir},
		{root, "current/bin", dir + "/current/bin"},
		{root, "../service-db/.env", root + "/var/www/service-db/.env"},
		{root, "../../../", root},
		{root, "/", root},
		{root, "/etc/app.env", root + "/etc/app.env"},
		{root, "/var/www/../../etc", root + "/etc"},
		{root, "../../../..", ""},
		{root, "../../../../etc/passwd", ""},
		{root, "/../etc/passwd", ""},
		{root, "/etc/../../etc/passwd", ""},
		{root, "../../../../root2/x", ""},
		// On a real host (root /) nothing can leave, and absolute paths
		// stay where they are.
		{"/", "/etc/app.env", "/etc/app.env"},
		{"/", "../../../../../etc", "/etc"},
	}
	for _, tt := range tests {
		d := dir
		if tt.root == "/" {
			d = "/var/www/api-app"
		}
		got, err := Resolve(tt.root, d, tt.path)
		if tt.want == "" {
			if err == nil || err.Error() != `path "`+tt.path+`" leaves the root` {
				t.Errorf("Resolve(%q, %q) = %q, %v; want the root-leaving error", tt.root, tt.path, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q", tt.root, tt.path, got, err, tt.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal // 0: an error
	}{
		{"TERM", syscall.SIGTERM},
		{"SIGTERM", syscall.SIGTERM},
		{"term", syscall.SIGTERM},
		{"sigHup", syscall.SIGHUP},
		{"QUIT", syscall.SIGQUIT},
		{"KILL", syscall.SIGKILL},
		{"USR2", syscall.SIGUSR2},
		{"WINCH", syscall.SIGWINCH},
		{"9", syscall.SIGKILL},
		{"15", syscall.SIGTERM},
		{"64", syscall.Signal(64)},
		{"0", 0},
		{"65", 0},
		{"-15", 0},
		{"", 0},
		{"SIG", 0},
		{"NOPE", 0},
		{"SIGNOPE", 0},
		{" TERM", 0},
	}
	for _, tt := range tests {
		got, err := ParseSignal(tt.in)
		if tt.want == 0 {
			if err == nil || err.Error() != `unknown signal "`+tt.in+`"` {
				t.Errorf("ParseSignal(%q) = %v, %v; want an error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, WWW, "api-app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, FileName)

	s, ps := Load(root, dir)
	if s != nil || len(ps) != 1 || ps[0].String() != file+": no such file or directory" {
		t.Errorf("missing file: got %v, %v", s, ps)
	}

	body := "command = [\"./server\"]\nenv_file = \"/etc/api-app.env\"\npidfile = \"/run/api-app.pid\"\ndirectory = \"/\"\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s, ps = Load(root, dir)
	if s == nil || len(ps) > 0 {
		t.Fatalf("Load: %v", ps)
	}
	if s.File != file || s.Dir != dir || s.Name != "api-app" {
		t.Errorf("File, Dir, Name = %q, %q, %q", s.File, s.Dir, s.Name)
	}
	if s.EnvFile != filepath.Join(root, "etc/api-app.env") || s.PIDFile != filepath.Join(root, "run/api-app.pid") || s.Directory != root {
		t.Errorf("absolute paths not placed under the root: env_file %q pidfile %q directory %q", s.EnvFile, s.PIDFile, s.Directory)
	}

	if err := os.WriteFile(file, []byte("command = [\"x\"]\n[restart]\npolicy = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, ps = Load(root, dir)
	if want := file + `:3:1: restart.policy: "sometimes" is not one of always, on-failure, never`; s != nil || ps.Error() != want {
		t.Errorf("got %v, %q\nwant %q", s, ps.Error(), want)
	}
	var err error = ps // Problems is an error
	if err.Error() != ps.Error() {
		t.Error("Problems does not act as an error")
	}
}

func TestLoadUnreadable(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, WWW, "api-app")
	// service.toml is a directory: read fails, with the reason only.
	if err := os.MkdirAll(filepath.Join(dir, FileName), 0o755); err != nil {
		t.Fatal(err)
	}
	s, ps := Load(root, dir)
	if s != nil || len(ps) != 1 || ps[0].Line != 0 || ps[0].Msg != "is a directory" {
		t.Errorf("got %v, %#v", s, ps)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f", Line: 5, Col: 1, Key: "restart.policy", Msg: "bad"}, "f:5:1: restart.policy: bad"},
		{Problem{File: "f", Msg: "no such file or directory"}, "f: no such file or directory"},
		{Problem{File: "f", Line: 2, Col: 3, Msg: "syntax"}, "f:2:3: syntax"},
		{Problem{File: "f", Key: "name", Msg: "missing prefix", Warning: true}, "f: warning: name: missing prefix"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	ps := Problems{{File: "a", Msg: "x", Warning: true}, {File: "b", Msg: "y"}}
	if errs := ps.Errors(); len(errs) != 1 || errs[0].File != "b" {
		t.Errorf("Errors() = %v", errs)
	}
	if got, want := ps.Error(), "a: warning: x\nb: y"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if (Problems{{Warning: true}}).Errors() != nil {
		t.Error("warnings only: Errors() is not empty")
	}
}

func TestHasPrefix(t *testing.T) {
	for name, want := range map[string]bool{"www-site": true, "api-app": true, "service-db": true, "app": false, "apiapp": false, "www": false} {
		if got := HasPrefix(name, Prefixes); got != want {
			t.Errorf("HasPrefix(%q) = %v", name, got)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second, "0": 0, "2h": 2 * time.Hour} {
		if err := d.UnmarshalText([]byte(in)); err != nil || d.D() != want {
			t.Errorf("UnmarshalText(%q) = %v, %v", in, d.D(), err)
		}
		b, _ := d.MarshalText()
		if string(b) != want.String() {
			t.Errorf("MarshalText(%v) = %q", want, b)
		}
	}
	for _, in := range []string{"", "5", "soon", "-1s", "1 s"} {
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", in)
		}
	}
}

func TestLocate(t *testing.T) {
	const text = `command = ["x"]
  user = "a"
script = """
[stop]
signal = "in the script"
"""
"group" = "b"
restart.limit = 0

[stop] # a comment
	signal = "X"

[[hook]]
run = "y"

[ env ]
A = "1"
`
	tests := []struct {
		key       string
		line, col int
	}{
		{"command", 1, 1},
		{"user", 2, 3},
		{"group", 7, 1},
		{"restart.limit", 8, 1},
		{"stop", 10, 1},
		{"stop.signal", 11, 2},
		{"stop.timeout", 10, 1}, // not set: the table's header
		{"hook", 13, 1},
		{"hook.run", 14, 1},
		{"env", 16, 1},
		{"env.A", 17, 1},
		{"restart", 1, 1}, // only set through a dotted key
		{"nowhere", 1, 1},
		{"nowhere.deeper", 1, 1},
	}
	for _, tt := range tests {
		if line, col := locate(text, tt.key); line != tt.line || col != tt.col {
			t.Errorf("locate(%q) = %d:%d, want %d:%d", tt.key, line, col, tt.line, tt.col)
		}
	}
}

// nameChars is the regexp it replaced, for every byte at either end.
func TestNameChars(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "a", "www-a.b_c"} {
			if nameChars(s) != re.MatchString(s) {
				t.Errorf("%q: nameChars %v, regexp %v", s, nameChars(s), re.MatchString(s))
			}
		}
	}
}
