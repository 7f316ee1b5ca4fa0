package spec

import (
	"strings"
	"time"
)

// Test is a service's own test ([test]), run by `upkeep test` inside the
// sandbox once the service is healthy, with the service's environment.
type Test struct {
	Command []string `toml:"command"`
	Script  string   `toml:"script"`
	// Timeout bounds the test; a test still running then is killed (its
	// whole process group) and counts as failed.
	Timeout Duration `toml:"timeout"`
}

// DefaultTestTimeout is a [test]'s timeout when it sets none.
const DefaultTestTimeout = Duration(time.Minute)

// Declared reports whether the service has a test to run.
func (t Test) Declared() bool { return len(t.Command) > 0 || t.Script != "" }

// Argv is the test's command line; a script runs as the service's own
// script does, with /bin/sh -e.
func (t Test) Argv(name string) []string {
	if t.Script != "" {
		return []string{"/bin/sh", "-e", "-c", t.Script, name + "-test"}
	}
	return t.Command
}

func (t *Test) check(add func(key, format string, args ...any)) {
	if len(t.Command) > 0 && t.Script != "" {
		add("test.command", "set only one of test.command and test.script")
	}
	if len(t.Command) > 0 && strings.TrimSpace(t.Command[0]) == "" {
		add("test.command", "the program (first element) is empty")
	}
	for _, a := range t.Command {
		if strings.IndexByte(a, 0) >= 0 {
			add("test.command", "contains a NUL byte")
		}
	}
	if strings.IndexByte(t.Script, 0) >= 0 {
		add("test.script", "contains a NUL byte")
	}
	if t.Timeout <= 0 {
		add("test.timeout", "must be longer than 0")
	}
}
