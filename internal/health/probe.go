package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// maxBody is how much of an HTTP response a check reads.
const maxBody = 1 << 20

// ProbeState carries what a probe keeps between runs of one check: the
// previous CPU sample (cpu), and the HTTP connection kept alive for the next
// run with the request made for it (http). The zero value is ready to use;
// a nil *ProbeState is allowed (cpu then always reports a first sample, http
// uses a fresh connection each time). It is not safe for concurrent use: one
// check's runs are sequential. Close releases what it holds.
type ProbeState struct {
	service    string // for the environment of exec checks
	exec       Exec   // how exec checks run
	cpuSeconds float64
	cpuAt      time.Time
	http       httpConn
}

// Close closes the connection kept for the next run.
func (s *ProbeState) Close() {
	if s != nil {
		s.http.close()
	}
}

// timeoutOf is c's timeout, or the default for a check that did not pass
// through validation.
func timeoutOf(c *spec.Check) time.Duration {
	if c.Timeout <= 0 {
		return spec.DefaultCheckTimeout
	}
	return time.Duration(c.Timeout)
}

// Probe runs one check once, bounded by c.Timeout (and ctx). Due and
// Started are both the time it ran; a Monitor sets Due to the slot.
func Probe(ctx context.Context, c *spec.Check, t Target, state *ProbeState) Result {
	timeout := timeoutOf(c)
	start := time.Now() // before the deadline is set: Latency >= timeout on a timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := Result{Check: c.Name, Due: start, Started: start}
	var err error
	switch c.Type {
	case "http":
		r.Message, err = probeHTTP(ctx, c, state)
	case "tcp", "unix":
		r.Message, err = probeConn(ctx, c.Type, c.Address, c.Send, c.Expect)
	case "exec":
		r.Message, err = probeExec(ctx, c, state)
	case "cpu", "memory", "children", "fds", "uptime":
		r.Message, r.Value, err = probeResource(c, t, state)
	default:
		err = fmt.Errorf("unknown check type %q", c.Type)
	}
	r.Latency = time.Since(start)
	r.OK = err == nil
	if err != nil {
		r.Message = describe(ctx, err, timeout)
	}
	return r
}

// describe turns a probe's error into a result's message: a timeout is
// "timeout after 5s" whichever step it hit; an HTTP error loses the
// `Get "url":` prefix the check's name already implies.
func describe(ctx context.Context, err error, timeout time.Duration) string {
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
	if ctx.Err() != nil || timedOut {
		if errors.Is(ctx.Err(), context.Canceled) {
			return "canceled"
		}
		return "timeout after " + timeout.String()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func probeHTTP(ctx context.Context, c *spec.Check, s *ProbeState) (string, error) {
	if s == nil {
		s = &ProbeState{}
		defer s.Close()
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	if err := s.http.prepare(method, c.URL, c.Host); err != nil {
		return "", err
	}
	status, body, err := s.http.do(ctx)
	if err != nil {
		return "", err
	}
	lo, hi := c.StatusMin, c.StatusMax
	if lo == 0 && hi == 0 { // a check that did not pass through validation
		lo, hi = 200, 399
	}
	if status < lo || status > hi {
		return "", fmt.Errorf("HTTP %d, want %d-%d", status, lo, hi)
	}
	if c.Body != "" && !bytes.Contains(body, []byte(c.Body)) {
		return "", fmt.Errorf("HTTP %d: body does not contain %q", status, c.Body)
	}
	return "HTTP " + strconv.Itoa(status), nil
}

// probeConn connects; with send it writes it; with expect it reads until
// the reply is as long as expect, failing at the first byte that differs.
func probeConn(ctx context.Context, network, addr, send, expect string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Cancellation (Stop) has no deadline of its own: unblock I/O by hand.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })()
	if send != "" {
		if _, err := io.WriteString(conn, send); err != nil {
			return "", err
		}
	}
	if expect == "" {
		return "connected to " + addr, nil
	}
	reply := make([]byte, 0, len(expect))
	buf := make([]byte, 512)
	for len(reply) < len(expect) {
		n, err := conn.Read(buf)
		reply = append(reply, buf[:n]...)
		if !strings.HasPrefix(expect, string(reply[:min(len(reply), len(expect))])) {
			break
		}
		if err != nil && len(reply) < len(expect) {
			if err == io.EOF {
				return "", fmt.Errorf("connection closed after %s, want %s", quote(reply), quote([]byte(expect)))
			}
			return "", err
		}
	}
	if !bytes.HasPrefix(reply, []byte(expect)) {
		return "", fmt.Errorf("reply %s does not start with %s", quote(reply), quote([]byte(expect)))
	}
	return "reply " + quote(reply), nil
}

// quote shows at most 64 bytes of a reply.
func quote(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}

// Exec is how a service's exec checks and hooks run their commands:
// through the daemon's reaper, as As (the service's own user, groups and
// privileges, given by the supervisor), in Dir. Without a Reaper no
// command runs.
type Exec struct {
	Reaper *proc.Reaper
	As     proc.Identity
	Dir    string
}

// NewProbeState is the state of one check of service, whose exec checks
// run as ex says.
func NewProbeState(service string, ex Exec) *ProbeState {
	return &ProbeState{service: service, exec: ex}
}

// errNoReaper is an exec check's result with nothing to run it through.
var errNoReaper = errors.New("exec check: no reaper to run it")

// probeExec runs the command with stdin, stdout and stderr on /dev/null and
// UPKEEP_CHECK (and, run by a Monitor, UPKEEP_SERVICE) in its environment;
// exit 0 passes. At the timeout its whole process group is killed.
func probeExec(ctx context.Context, c *spec.Check, s *ProbeState) (string, error) {
	if s == nil || s.exec.Reaper == nil {
		return "", errNoReaper
	}
	env := environ("UPKEEP_CHECK=" + c.Name)
	if s.service != "" {
		env = append(env, "UPKEEP_SERVICE="+s.service)
	}
	ex, err := s.exec.Reaper.Run(ctx, proc.Cmd{Argv: c.Command, Env: env, Dir: s.exec.Dir, As: s.exec.As})
	if err != nil {
		return "", err
	}
	if !ex.Success() {
		return "", errors.New(ex.String())
	}
	return ex.String(), nil
}

// environ is the clean environment of checks and hooks, as the supervisor
// gives services: PATH and locale from the daemon, nothing else of it.
func environ(extra ...string) []string { return append(proc.BaseEnv(), extra...) }

// probeResource measures the target's processes. With no processes there
// is nothing to judge, and the check passes: that the service is not
// running is the supervisor's business, not a health failure on top.
func probeResource(c *spec.Check, t Target, s *ProbeState) (string, float64, error) {
	if t == nil {
		return "", 0, errors.New("no target to measure")
	}
	if c.Type == "uptime" {
		up := time.Since(t.Started())
		limit := time.Duration(c.Limit * float64(time.Second))
		msg := "uptime " + up.Round(time.Second).String()
		if up > limit {
			return "", up.Seconds(), fmt.Errorf("%s > %s", msg, limit)
		}
		return msg, up.Seconds(), nil
	}
	pids := t.Pids()
	if len(pids) == 0 {
		return "no processes", 0, nil
	}
	var v float64
	var msg, limit string
	switch c.Type {
	case "cpu":
		cpu, now := proc.Measure(pids).CPUSeconds, time.Now()
		if s == nil || s.cpuAt.IsZero() {
			if s != nil {
				s.cpuSeconds, s.cpuAt = cpu, now
			}
			return "cpu 0.0% (first sample)", 0, nil
		}
		if wall := now.Sub(s.cpuAt).Seconds(); wall > 0 {
			// A process that left the set takes its CPU time with it.
			v = max(0, 100*(cpu-s.cpuSeconds)/wall)
		}
		s.cpuSeconds, s.cpuAt = cpu, now
		msg, limit = fmt.Sprintf("cpu %.1f%%", v), fmt.Sprintf("%.1f%%", c.Limit)
	case "memory":
		v = float64(proc.Measure(pids).RSSBytes)
		msg, limit = "rss "+size(v), size(c.Limit)
	case "children":
		v = float64(len(pids) - 1)
		msg, limit = fmt.Sprintf("children %.0f", v), fmt.Sprintf("%.0f", c.Limit)
	case "fds":
		v = float64(proc.OpenFiles(pids))
		msg, limit = fmt.Sprintf("fds %.0f", v), fmt.Sprintf("%.0f", c.Limit)
	}
	if v > c.Limit {
		return "", v, fmt.Errorf("%s > %s", msg, limit)
	}
	return msg, v, nil
}

// size prints bytes the way `max` is written: 210.0M, in powers of 1024.
func size(b float64) string {
	for _, u := range []string{"T", "G", "M", "K"} {
		m, _ := spec.ParseSize("1" + u)
		if b >= m {
			return fmt.Sprintf("%.1f%s", b/m, u)
		}
	}
	return fmt.Sprintf("%.0fB", b)
}
