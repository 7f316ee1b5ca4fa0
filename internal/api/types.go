package api

import (
	"errors"
	"time"

	"upkeep/internal/health"
)

// ErrUnknown is the error for a name that is not a service of this host:
// the daemon wraps it, the control API answers it with 404, and the client
// returns it again, so errors.Is finds it on either side of the socket.
var ErrUnknown = errors.New("unknown service")

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
	// StatusText is the service's own STATUS= (sd_notify); Announced is
	// "reloading" or "stopping" after RELOADING=1 or STOPPING=1.
	StatusText string `json:"status_text,omitempty"`
	Announced  string `json:"announced,omitempty"`
	// StoppedPids are its processes in state T (stopped by a signal:
	// frozen, so they neither serve nor stop until continued).
	StoppedPids []int `json:"stopped_pids,omitempty"`
}

// Event is one thing that happened to a service, as `upkeep events` prints
// it and the event log records it.
type Event struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Kind    string    `json:"kind"` // state | check
	From    string    `json:"from,omitempty"`
	State   string    `json:"state,omitempty"`
	Check   string    `json:"check,omitempty"`
	OK      bool      `json:"ok,omitempty"`
	Message string    `json:"message,omitempty"`
	Pid     int       `json:"pid,omitempty"`
}

// Sample is a service's resource use at one moment.
type Sample struct {
	Time       time.Time `json:"time"`
	CPUSeconds float64   `json:"cpu_seconds"`
	RSSBytes   uint64    `json:"rss_bytes"`
	Restarts   int       `json:"restarts"`
}

// CheckResult is one check run, as the history keeps it.
type CheckResult struct {
	Time    time.Time     `json:"time"`
	Check   string        `json:"check"`
	OK      bool          `json:"ok"`
	Latency time.Duration `json:"latency_ns"`
	Late    time.Duration `json:"late_ns"`
}

// History is what the daemon remembers of one service, bounded: about an
// hour of samples at the 10 s sampling interval, the last 1024 check runs,
// and the last 256 events.
type History struct {
	Events  []Event       `json:"events"`
	Checks  []CheckResult `json:"checks"`
	Samples []Sample      `json:"samples"`
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged []string `json:"unchanged"`
	Broken    []string `json:"broken"`
	Problems  string   `json:"problems,omitempty"`
	Policy    string   `json:"policy,omitempty"` // the host policy did not parse: the control socket keeps its previous access
}

// Rotated is what a forced rotation (`upkeep rotate`) did to one file.
type Rotated struct {
	Service string `json:"service"`
	File    string `json:"file"`
	Rotated bool   `json:"rotated"`           // false: empty (notifempty), missing (missingok), or pending
	To      string `json:"to,omitempty"`      // the rotated file; "" with rotate = 0
	Pending bool   `json:"pending,omitempty"` // waits for the end of a line the service is writing
	Error   string `json:"error,omitempty"`
}

// LogCounter is what one captured log file (stdout's or stderr's) could
// not take: the metrics' upkeep_log_dropped_bytes_total. It is read in the
// daemon's process, not sent over the socket.
type LogCounter struct {
	Service string
	File    string // the file's name in var/log: api-app.log, api-app.error.log
	Dropped int64  // bytes dropped since the file's sink was opened
	Err     string // why output is dropped now; "" when it is written fine
}
