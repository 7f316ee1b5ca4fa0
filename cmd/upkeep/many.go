package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/spec"
)

// What start, stop, restart, status and rotate share: which services a
// command line means (--all, shell patterns), the order they are shown
// in, the line printed per service when done, and the progress shown on a
// terminal while waiting.

// exitStatus is an error that carries only an exit status: status and
// is-active exit 3 for "not in its wanted state", which is an answer, not
// a failure worth a line on stderr.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// notWanted is the exit status of status and is-active when a service is
// not in its wanted state: systemctl is-active's 3 ("program is not
// running" in the LSB's init-script codes).
const notWanted = exitStatus(3)

func isPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// checkSelectors checks names and patterns before anything is asked of the
// daemon: a bad name or a malformed pattern is a usage error.
func checkSelectors(args []string) error {
	for _, a := range args {
		if isPattern(a) {
			if _, err := path.Match(a, ""); err != nil {
				return usageError{fmt.Errorf("pattern %q: %w", a, err)}
			}
			continue
		}
		if err := spec.CheckName(a); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// selection is what a command line names: plain names as they are (the
// daemon says when one is unknown), patterns and --all expanded against
// the daemon's services.
func selection(ctx context.Context, c *control.Client, args []string, all bool) ([]string, error) {
	if !all && !anyPattern(args) {
		return args, nil
	}
	st, err := c.Status(ctx, nil)
	if err != nil {
		return nil, err
	}
	known := make([]string, 0, len(st))
	for _, s := range st {
		known = append(known, s.Name)
	}
	if all {
		return known, nil
	}
	return expand(args, known)
}

func anyPattern(args []string) bool {
	for _, a := range args {
		if isPattern(a) {
			return true
		}
	}
	return false
}

// expand replaces each pattern of args by the known names it matches, in
// known's order, and keeps plain names; each name once. A pattern that
// matches nothing is an error, as systemctl's "no units matched" is.
func expand(args, known []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, a := range args {
		if !isPattern(a) {
			add(a)
			continue
		}
		n := 0
		for _, k := range known {
			if ok, _ := path.Match(a, k); ok { // checked by checkSelectors
				add(k)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("no service matches %q", a)
		}
	}
	return out, nil
}

// dependencyOrder sorts names so that each comes after what it depends
// on (reverse for stop), by the definitions under root: the order the
// daemon acts in, for the lines printed afterwards. Names without a
// definition keep their place at the end.
func dependencyOrder(root string, names []string, reverse bool) []string {
	h, err := spec.LoadHost(root)
	if err != nil {
		return names
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		if s := h.Services[n]; s != nil {
			deps := append([]string(nil), s.DependsOn...)
			sort.Strings(deps)
			for _, d := range deps {
				visit(d)
			}
		}
		if want[n] {
			out = append(out, n)
		}
	}
	for _, n := range names {
		visit(n)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// withDependents is names and, transitively, the services under root
// that depend on them: what a stop of names stops.
func withDependents(root string, names []string) []string {
	h, err := spec.LoadHost(root)
	if err != nil {
		return names
	}
	out := append([]string(nil), names...)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for i := 0; i < len(out); i++ {
		for _, n := range h.Names() {
			if !seen[n] && slices.Contains(h.Services[n].DependsOn, out[i]) {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// doneLine is what start, stop and restart print for one service when
// they are done: "www-hello: running (pid 123)", "www-hello: stopped".
func doneLine(s api.Status) string {
	line := s.Name + ": " + s.State.String()
	var extra []string
	if s.Pid != 0 {
		extra = append(extra, fmt.Sprintf("pid %d", s.Pid))
	}
	if s.Detail != "" {
		extra = append(extra, s.Detail)
	}
	if s.State.Down() && s.LastExit != "" && s.State != api.Stopped {
		extra = append(extra, s.LastExit)
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

// wanted reports whether s is in the state its definition and the
// operator want: running, or stopped on purpose (a service that is not
// autostarted, or was stopped, with nothing wrong with it). Anything else
// (starting, stopping, backoff, exited, fatal, a stopped service with a
// broken definition or an unmet dependency) is not, as systemctl
// is-active calls anything but "active" inactive.
func wanted(s api.Status) bool {
	switch s.State {
	case api.Running:
		return true
	case api.Stopped:
		return s.Error == "" && s.Detail == ""
	}
	return false
}

// failed is is-failed's test: the states systemd calls "failed".
func failed(s api.Status) bool {
	switch s.State {
	case api.Fatal, api.Backoff:
		return true
	case api.Exited:
		return s.LastExit != "" && s.LastExit != "exit 0"
	case api.Stopped:
		return s.Error != ""
	}
	return false
}

// progress shows, on a terminal, what an action is still waiting for: one
// line on w, rewritten in place, such as "waiting: www-a stopping (SIGKILL
// in 7s)". Scripts and -q see nothing: the caller passes a nil w then.
type progress struct {
	w        io.Writer
	c        *control.Client
	names    []string
	timeouts map[string]time.Duration // each service's stop timeout
	stop     chan struct{}
	done     chan struct{}
}

// stderrTTY returns os.Stderr when it is a terminal, nil otherwise.
func stderrTTY() io.Writer {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return os.Stderr
	}
	return nil
}

func startProgress(w io.Writer, c *control.Client, root string, names []string) *progress {
	p := &progress{w: w, c: c, names: names, stop: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		close(p.done)
		return p
	}
	p.timeouts = map[string]time.Duration{}
	if h, err := spec.LoadHost(root); err == nil {
		for n, s := range h.Services {
			p.timeouts[n] = time.Duration(s.Stop.Timeout)
		}
	}
	go p.run()
	return p
}

// run redraws the line four times a second: a display's refresh, not a
// wait for a condition (the action's own call does the waiting).
func (p *progress) run() {
	defer close(p.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	drawn := false
	for {
		select {
		case <-p.stop:
			if drawn {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := p.c.Status(ctx, p.names)
		cancel()
		if err != nil {
			continue
		}
		var parts []string
		for _, s := range st {
			waited := time.Since(s.Since).Truncate(time.Second)
			switch s.State {
			case api.Stopping:
				left := (p.timeouts[s.Name] - time.Since(s.Since)).Round(time.Second)
				if left < 0 {
					left = 0
				}
				parts = append(parts, fmt.Sprintf("%s stopping (SIGKILL in %v)", s.Name, left))
			case api.Starting, api.Backoff:
				parts = append(parts, fmt.Sprintf("%s %s (%v)", s.Name, s.State, waited))
			}
		}
		if len(parts) == 0 {
			continue
		}
		fmt.Fprint(p.w, "\r\033[Kwaiting: "+strings.Join(parts, ", "))
		drawn = true
	}
}

// end stops the display and clears its line.
func (p *progress) end() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.stop)
	<-p.done
}

// createRoot makes a missing --root for provision, as docker makes a bind
// mount's missing source and systemd a StateDirectory: the root is
// upkeep's to lay out. Its parent must exist (a typo two levels up is
// refused), and a missing --home is not created: that is the operator's.
func createRoot(root string, dryRun bool) error {
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if dryRun {
		fmt.Printf("mkdir -m 0755 %s   # the root\n", root)
		return nil
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("create the root: %w", err)
	}
	fmt.Printf("created the root %s\n", root)
	return nil
}
