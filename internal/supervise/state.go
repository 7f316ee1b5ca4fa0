package supervise

import (
	"fmt"
	"time"

	"upkeep/internal/health"
)

// State is where a service is in its life. docs/states.md draws the diagram;
// service.handle is the only place that moves between states: requests,
// timers, exits and the health monitor's verdicts all reach it as events.
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

var stateNames = [...]string{"stopped", "starting", "running", "backoff", "stopping", "exited", "fatal"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Down reports whether no process of the service is meant to be running.
func (s State) Down() bool { return s == Stopped || s == Exited || s == Fatal }

// Status is a snapshot of one service, as `upkeep status --json` prints it.
type Status struct {
	Name          string               `json:"name"`
	State         State                `json:"state"`
	Pid           int                  `json:"pid"`
	Restarts      int                  `json:"restarts"`
	Since         time.Time            `json:"since"`
	StartedAt     time.Time            `json:"started_at,omitzero"`
	UptimeSeconds float64              `json:"uptime_seconds"`
	LastExit      string               `json:"last_exit,omitempty"`
	Detail        string               `json:"detail,omitempty"`
	Error         string               `json:"error,omitempty"`
	CPUSeconds    float64              `json:"cpu_seconds"`
	RSSBytes      uint64               `json:"rss_bytes"`
	Autostart     bool                 `json:"autostart"`
	DroppedBytes  int64                `json:"log_dropped_bytes,omitempty"`
	LogError      string               `json:"log_error,omitempty"`
	Checks        []health.CheckStatus `json:"checks,omitempty"`
}

func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}
