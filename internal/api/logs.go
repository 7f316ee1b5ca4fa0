package api

import "time"

// LogLine is one line of a service's captured output, as `upkeep logs -o
// json` prints it and the control socket's /v1/logs streams it.
type LogLine struct {
	Time time.Time `json:"time"`
	// Exact: Time is the capture time from the log's time index; false:
	// the line's own leading time, or its file's modification time.
	Exact   bool   `json:"exact"`
	Service string `json:"service"`
	Stream  string `json:"stream"` // "out" (NAME.log) or "err" (NAME.error.log)
	Line    string `json:"line"`
}

// LogQuery is what `upkeep logs` asks for: the services (none: all that
// have logs), the streams, a time range, the last N lines (N < 0: all),
// lines matching Grep (an RE2 expression), and with Follow the new lines
// as they are written.
type LogQuery struct {
	Names  []string
	Stream string // "" (both), "out" or "err"
	Since  time.Time
	Until  time.Time
	N      int
	Grep   string
	Follow bool
}
