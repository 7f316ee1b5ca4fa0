package spec

import (
	"fmt"
	"time"
)

// Service is one service's definition, as read from its service.toml with
// defaults applied.
type Service struct {
	Name         string            `toml:"name"`
	Version      string            `toml:"version"`
	Command      []string          `toml:"command"`
	Script       string            `toml:"script"`
	Directory    string            `toml:"directory"`
	User         string            `toml:"user"`
	Group        string            `toml:"group"`
	Env          map[string]string `toml:"env"`
	EnvFile      string            `toml:"env_file"`
	Autostart    bool              `toml:"autostart"`
	DependsOn    []string          `toml:"depends_on"`
	ReadyAfter   Duration          `toml:"ready_after"`
	StartCommand []string          `toml:"start_command"`
	StopCommand  []string          `toml:"stop_command"`
	PIDFile      string            `toml:"pidfile"`
	Restart      Restart           `toml:"restart"`
	Stop         Stop              `toml:"stop"`
	Checks       []Check           `toml:"check"`
	Log          Log               `toml:"log"`
	// Test is the service's own test, run by `upkeep test` (test.go).
	Test Test `toml:"test"`
	// LogFiles are the files the service writes itself ([[log.file]]),
	// rotated on the same schedule (logfiles.go).
	LogFiles []LogFile `toml:"-"`
	// Copy lists files of config/ (paths beneath the root, or directories
	// holding them) that the overlay copies instead of symlinking.
	Copy []string `toml:"copy"`
	// KeepReleases is how many releases deploy keeps (0: the host's setting).
	KeepReleases int `toml:"keep_releases"`
	// DBMount says the service's data (var/db/<name>) must be on a mount of
	// its own: doctor reports it when not, and deploy refuses.
	DBMount bool `toml:"db_mount"`
	// Ready is how the service counts as started (ready.go): "notify",
	// "fd:N", "log:REGEX", "checks" or "after"; empty: checks if it has
	// any, else ready_after. ReadyTimeout bounds notify, fd and log;
	// Watchdog (notify only) is how often WATCHDOG=1 must come.
	Ready        string   `toml:"ready"`
	ReadyTimeout Duration `toml:"ready_timeout"`
	Watchdog     Duration `toml:"watchdog"`
	// Privileges: capabilities, no_new_privileges, umask, groups, [limits]
	// (privs.go).
	Privileges

	// Dir is the service's directory (absolute); File its service.toml.
	Dir  string `toml:"-"`
	File string `toml:"-"`
}

// Restart is the policy applied when the main process exits on its own.
type Restart struct {
	Policy      Policy   `toml:"policy"`
	Backoff     Duration `toml:"backoff"`
	MaxBackoff  Duration `toml:"max_backoff"`
	StableAfter Duration `toml:"stable_after"`
	Limit       int      `toml:"limit"`
	Window      Duration `toml:"window"`
}

// Stop says how the service is asked to stop before it is killed.
type Stop struct {
	Signal  string   `toml:"signal"`
	Timeout Duration `toml:"timeout"`
}

// Policy is when a service is restarted after its main process exits.
type Policy string

const (
	Always    Policy = "always"
	OnFailure Policy = "on-failure"
	Never     Policy = "never"
)

// Defaults returns a definition holding every default; decoding a file on
// top of it leaves the defaults where the file is silent. This is the one
// place defaults live.
func Defaults() Service {
	return Service{
		Directory:  ".",
		Autostart:  true,
		ReadyAfter: Duration(time.Second),
		Restart: Restart{
			Policy:      Always,
			Backoff:     Duration(100 * time.Millisecond),
			MaxBackoff:  Duration(30 * time.Second),
			StableAfter: Duration(10 * time.Second),
			Limit:       10,
			Window:      Duration(60 * time.Second),
		},
		Stop:       Stop{Signal: "TERM", Timeout: Duration(10 * time.Second)},
		Log:        DefaultLog(),
		Privileges: Privileges{Umask: "0022"},
		Test:       Test{Timeout: DefaultTestTimeout},
		// ready.go
		ReadyTimeout: DefaultReadyTimeout,
	}
}

// Ready is how a service counts as started: with checks, once each check
// has passed; without, once it has stayed up for ready_after.
func (s *Service) HasChecks() bool { return len(s.Checks) > 0 }

// Daemonizes reports whether the service forks away from its start command
// and is followed through its pid file (monit's start program + pidfile).
func (s *Service) Daemonizes() bool { return s.PIDFile != "" }

// Duration is a Go duration string in TOML ("500ms", "5s", "1m").
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"500ms\", \"5s\", \"1m\"): %q", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
