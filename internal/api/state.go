package api

import "fmt"

// State is where a service is in its life. docs/states.md draws the
// diagram; supervise's service.handle is the only place that moves between
// states. On the wire a state is its name (shared/DESIGN.md).
type State int

const (
	Stopped  State = iota // not running, and not meant to
	Starting              // spawned, not yet up for ready_after; or waiting for dependencies
	Running               // up
	Backoff               // exited; waiting before the next start
	Stopping              // stop signal sent; waiting for the process group to end
	Exited                // exited and the policy says not to restart
	Fatal                 // restarted too often within the window; needs a manual start
)

// States lists every state, in order: for gauges that want all of them.
var States = []State{Stopped, Starting, Running, Backoff, Stopping, Exited, Fatal}

var stateNames = [...]string{"stopped", "starting", "running", "backoff", "stopping", "exited", "fatal"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// Down reports whether no process of the service is meant to be running.
func (s State) Down() bool { return s == Stopped || s == Exited || s == Fatal }
