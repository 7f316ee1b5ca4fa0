package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ReadyKind is how a service tells that it has started: by what it
// announces itself (notify, fd, log) or by what upkeep judges (checks,
// after).
type ReadyKind string

const (
	ReadyChecks ReadyKind = "checks" // every [[check]] has passed
	ReadyAfter  ReadyKind = "after"  // up for ready_after
	ReadyNotify ReadyKind = "notify" // READY=1 on $NOTIFY_SOCKET (sd_notify)
	ReadyFD     ReadyKind = "fd"     // a newline on fd N (s6's notification-fd)
	ReadyLog    ReadyKind = "log"    // a line of stdout or stderr matches
)

// Readiness is the parsed value of `ready`.
type Readiness struct {
	Kind    ReadyKind
	FD      int    // ReadyFD: the descriptor the service writes its newline on
	Pattern string // ReadyLog: the regular expression, as written
}

// Announced reports whether the service itself says when it is ready, so
// that a start without the word within ready_timeout has failed.
func (r Readiness) Announced() bool {
	return r.Kind == ReadyNotify || r.Kind == ReadyFD || r.Kind == ReadyLog
}

// maxReadyFD bounds fd:N: the service's descriptors 3..N-1 are closed to
// place the pipe at N, and a number past any rlimit is a typo.
const maxReadyFD = 1023

// DefaultReadyTimeout is how long an announced readiness may take.
const DefaultReadyTimeout = Duration(60 * 1e9)

// ParseReady reads a `ready` value. The empty string is the default:
// checks when the service has some, else ready_after.
func ParseReady(v string, hasChecks bool) (Readiness, error) {
	switch {
	case v == "":
		if hasChecks {
			return Readiness{Kind: ReadyChecks}, nil
		}
		return Readiness{Kind: ReadyAfter}, nil
	case v == "notify" || v == "checks" || v == "after":
		if v == "checks" && !hasChecks {
			return Readiness{}, fmt.Errorf("%q needs at least one [[check]]", v)
		}
		return Readiness{Kind: ReadyKind(v)}, nil
	case strings.HasPrefix(v, "fd:"):
		n, err := strconv.Atoi(v[3:])
		if err != nil || n < 3 || n > maxReadyFD {
			return Readiness{}, fmt.Errorf("%q: N must be a number from 3 to %d (0-2 are stdin, stdout, stderr)", v, maxReadyFD)
		}
		return Readiness{Kind: ReadyFD, FD: n}, nil
	case strings.HasPrefix(v, "log:"):
		p := v[4:]
		if p == "" {
			return Readiness{}, fmt.Errorf("%q: the pattern is empty", v)
		}
		if _, err := regexp.Compile(p); err != nil {
			return Readiness{}, fmt.Errorf("%q: %v", v, err)
		}
		return Readiness{Kind: ReadyLog, Pattern: p}, nil
	}
	return Readiness{}, fmt.Errorf("%q is not one of notify, fd:N, log:REGEX, checks, after", v)
}

// Readiness is how this (validated) service counts as started.
func (s *Service) Readiness() Readiness {
	r, _ := ParseReady(s.Ready, s.HasChecks())
	return r
}

// checkReady validates ready, ready_timeout and watchdog.
func (s *Service) checkReady(add func(key, format string, args ...any)) {
	r, err := ParseReady(s.Ready, s.HasChecks())
	if err != nil {
		add("ready", "%v", err)
	}
	if s.ReadyTimeout == 0 {
		add("ready_timeout", "must be longer than 0")
	}
	if s.Watchdog != 0 && err == nil && r.Kind != ReadyNotify {
		add("watchdog", "needs ready = \"notify\": only sd_notify has WATCHDOG=1 pings")
	}
	if s.Watchdog != 0 && s.Watchdog.D() < 1e6 {
		add("watchdog", "must be at least 1ms")
	}
}
