package spec

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Check is one monit-style check of a service: a probe run every interval,
// failing after `cycles` failures within `within` runs, recovering after
// `recover` successes, and an action taken when it fails.
type Check struct {
	Name string `toml:"name"`
	Type string `toml:"type"` // http | tcp | unix | exec | cpu | memory | children | fds | uptime

	URL    string `toml:"url"`    // http: http(s)://host:port/path
	Method string `toml:"method"` // http: GET
	Status string `toml:"status"` // http: accepted status range, "200-399"
	Body   string `toml:"body"`   // http: a substring the body must contain
	Host   string `toml:"host"`   // http: Host header

	Address string `toml:"address"` // tcp: host:port; unix: socket path
	Send    string `toml:"send"`    // tcp/unix: written after connecting
	Expect  string `toml:"expect"`  // tcp/unix: prefix of the first reply

	Command []string `toml:"command"` // exec: exit status 0 passes

	Max string `toml:"max"` // cpu "80%", memory "200M", children 10, fds 1000, uptime "72h"

	Timeout  Duration `toml:"timeout"`
	Interval Duration `toml:"interval"`
	Grace    Duration `toml:"grace"` // until the check first passes, failures in the first `grace` after a start do not count
	Cycles   int      `toml:"cycles"`
	Within   int      `toml:"within"`
	Recover  int      `toml:"recover"`
	Then     string   `toml:"then"` // restart | stop | alert | exec
	Exec     []string `toml:"exec"` // then = "exec": run with the event in env and as JSON on stdin

	// Derived by validation.
	Limit     float64 `toml:"-"` // Max as a number: percent, bytes, count or seconds
	StatusMin int     `toml:"-"`
	StatusMax int     `toml:"-"`
}

// Check defaults: monit's "with timeout 5 seconds", a 30 s cycle (monit's
// usual `set daemon 30`), one failed cycle, and restart.
const (
	DefaultCheckTimeout  = 5 * time.Second
	DefaultCheckInterval = 30 * time.Second
	DefaultCheckGrace    = 30 * time.Second // a start timeout, as systemd's TimeoutStartSec
)

var checkTypes = map[string]bool{"http": true, "tcp": true, "unix": true, "exec": true, "cpu": true, "memory": true, "children": true, "fds": true, "uptime": true}

// Resource reports whether the check measures the service's processes
// rather than probing it from outside.
func (c *Check) Resource() bool {
	switch c.Type {
	case "cpu", "memory", "children", "fds", "uptime":
		return true
	}
	return false
}

// checkDefaults fills in what a [[check]] left out; the decoder cannot
// pre-fill elements of an array of tables.
func (c *Check) defaults(i int, graceSet bool) {
	if c.Name == "" {
		c.Name = fmt.Sprintf("%s-%d", c.Type, i+1)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultCheckTimeout)
	}
	if c.Interval == 0 {
		c.Interval = Duration(DefaultCheckInterval)
	}
	if !graceSet {
		c.Grace = Duration(DefaultCheckGrace)
	}
	if c.Cycles == 0 {
		c.Cycles = 1
	}
	if c.Within == 0 {
		c.Within = c.Cycles
	}
	if c.Recover == 0 {
		c.Recover = 1
	}
	if c.Then == "" {
		c.Then = "restart"
	}
	if c.Type == "http" && c.Method == "" {
		c.Method = "GET"
	}
	if c.Type == "http" && c.Status == "" {
		c.Status = "200-399"
	}
}

// validate checks one [[check]]; add reports a problem at a key.
func (c *Check) validate(root, dir string, add func(key, format string, args ...any)) {
	switch {
	case !checkTypes[c.Type]:
		add("check.type", "%q is not one of http, tcp, unix, exec, cpu, memory, children, fds, uptime", c.Type)
		return
	case c.Cycles < 1 || c.Recover < 1:
		add("check.cycles", "cycles and recover must be at least 1")
	case c.Within < c.Cycles:
		add("check.within", "within (%d) must be at least cycles (%d)", c.Within, c.Cycles)
	}
	if c.Within > 1000 {
		add("check.within", "at most 1000 cycles are remembered")
	}
	switch c.Then {
	case "restart", "stop", "alert":
	case "exec":
		if len(c.Exec) == 0 || c.Exec[0] == "" {
			add("check.exec", "then = \"exec\" needs exec = [\"program\", ...]")
		}
	default:
		add("check.then", "%q is not one of restart, stop, alert, exec", c.Then)
	}
	switch c.Type {
	case "http":
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("check.url", "want an http:// or https:// URL with a host, got %q", c.URL)
		}
		lo, hi, err := parseStatusRange(c.Status)
		if err != nil {
			add("check.status", "%v", err)
		}
		c.StatusMin, c.StatusMax = lo, hi
	case "tcp":
		if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
			add("check.address", "want host:port, got %q", c.Address)
		}
	case "unix":
		if c.Address == "" {
			add("check.address", "want the socket's path")
		} else if p, err := Resolve(root, dir, c.Address); err != nil {
			add("check.address", "%v", err)
		} else {
			c.Address = p
		}
	case "exec":
		if len(c.Command) == 0 || c.Command[0] == "" {
			add("check.command", "want [\"program\", \"arg\", ...]")
		}
	default:
		v, err := parseLimit(c.Type, c.Max)
		if err != nil {
			add("check.max", "%v", err)
		}
		c.Limit = v
	}
}

func parseStatusRange(s string) (int, int, error) {
	lo, hi, found := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if found {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return 0, 0, fmt.Errorf("want a status or range like \"200\" or \"200-399\", got %q", s)
	}
	return a, b, nil
}

// parseLimit reads `max` for a resource check: cpu in percent of one core
// ("80%" or "80"), memory in bytes with K/M/G suffixes (powers of 1024, as
// monit's MB), counts for children and fds, a duration for uptime.
func parseLimit(kind, s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("a %s check needs max", kind)
	}
	switch kind {
	case "cpu":
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("want a percentage like \"80%%\", got %q", s)
		}
		return v, nil
	case "memory":
		return ParseSize(s)
	case "uptime":
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("want a duration like \"72h\", got %q", s)
		}
		return d.Seconds(), nil
	default:
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want a count, got %q", s)
		}
		return float64(n), nil
	}
}

// ParseSize reads "512", "64K", "200M", "1G" (also "200MB", "200MiB").
func ParseSize(s string) (float64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.TrimSuffix(strings.TrimSuffix(u, "IB"), "B")
	mult := 1.0
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult, u = 1<<10, u[:n-1]
		case 'M':
			mult, u = 1<<20, u[:n-1]
		case 'G':
			mult, u = 1<<30, u[:n-1]
		case 'T':
			mult, u = 1<<40, u[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(u), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a size like \"200M\", got %q", s)
	}
	return v * mult, nil
}
