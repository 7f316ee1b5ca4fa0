package logread

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/logsink"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Streams, in the order lines captured at the same time are shown: a
// service's stdout first, then its stderr, as a terminal would most often
// have shown them.
const (
	Out = "out"
	Err = "err"
)

// ErrNoLogs is returned for a named service that has no log files.
var ErrNoLogs = errors.New("no logs")

// Services lists the services that have captured logs under root, sorted:
// var/log/NAME.log and NAME.error.log, rotated ones too, without the
// daemon's own upkeep.log.
func Services(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, paths.LogDir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		i := strings.Index(n, ".log")
		if i <= 0 || !e.Type().IsRegular() {
			continue
		}
		name := strings.TrimSuffix(n[:i], ".error")
		if name == "upkeep" || spec.CheckName(name) != nil {
			continue
		}
		if rest := n[i+len(".log"):]; rest != "" && rest[0] != '.' && rest[0] != '-' {
			continue // "x.logfoo": not a log of x
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// source is one stream of one service being read.
type source struct {
	service, stream string
	order           int // ties in time: by service, then stdout before stderr
	path            string
	cfg             spec.Log
	fl              *logsink.Follower
	err             error
}

// Read calls emit with the lines q asks for, oldest first; with q.Follow
// it then calls it with each new line until ctx ends. It stops at emit's
// first error and returns it. root is the host's root; the services'
// service.toml say how their rotated files are named.
func Read(ctx context.Context, root string, q api.LogQuery, emit func(api.LogLine) error) error {
	var re *regexp.Regexp
	if q.Grep != "" {
		var err error
		if re, err = regexp.Compile(q.Grep); err != nil {
			return fmt.Errorf("grep: %w", err)
		}
	}
	names := q.Names
	if len(names) == 0 {
		var err error
		if names, err = Services(root); err != nil {
			return err
		}
	} else {
		names = append([]string(nil), names...)
		sort.Strings(names)
		for _, n := range names {
			if err := spec.CheckName(n); err != nil {
				return err
			}
			if !hasLogs(root, n) {
				return fmt.Errorf("%s: %w under %s", n, ErrNoLogs, filepath.Join(root, paths.LogDir))
			}
		}
	}
	var srcs []*source
	for _, n := range names {
		cfg := logSettings(root, n)
		if q.Stream != Err {
			srcs = append(srcs, &source{service: n, stream: Out, order: len(srcs), path: paths.Log(root, n), cfg: cfg})
		}
		if q.Stream != Out {
			srcs = append(srcs, &source{service: n, stream: Err, order: len(srcs), path: paths.ErrorLog(root, n), cfg: cfg})
		}
	}
	keep := func(l logsink.Line) bool {
		if !q.Until.IsZero() && l.Time.After(q.Until) {
			return false
		}
		return re == nil || re.Match(l.Text)
	}
	defer func() {
		for _, s := range srcs {
			if s.fl != nil {
				s.fl.Close()
			}
		}
	}()
	if err := backlog(srcs, q, keep, emit); err != nil {
		return err
	}
	if !q.Follow {
		return nil
	}
	return follow(ctx, srcs, keep, emit)
}

// hasLogs reports whether service n has any log file, live or rotated.
func hasLogs(root, n string) bool {
	for _, p := range []string{paths.Log(root, n), paths.ErrorLog(root, n)} {
		if m, _ := filepath.Glob(p + "*"); len(m) > 0 {
			return true
		}
	}
	return false
}

// logSettings is the service's [log] section, which says how its rotated
// files are named; the defaults when the service is gone or broken.
func logSettings(root, name string) spec.Log {
	if s, _ := spec.Load(root, paths.Service(root, name)); s != nil {
		return s.Log
	}
	return spec.DefaultLog()
}

// backlog merges the streams' lines by time: each stream is read in file
// order (its lines are in capture order) as a pull iterator, and the
// oldest head goes next, so that memory holds one line a stream, or the
// last q.N lines.
func backlog(srcs []*source, q api.LogQuery, keep func(logsink.Line) bool, emit func(api.LogLine) error) error {
	type head struct {
		src  *source
		next func() (logsink.Line, bool)
		stop func()
		line logsink.Line
	}
	var heads []*head
	defer func() {
		for _, h := range heads {
			h.stop()
		}
	}()
	for _, s := range srcs {
		seq := func(yield func(logsink.Line) bool) {
			on := true
			put := func(l logsink.Line) {
				if on && !yield(l) {
					on = false
				}
			}
			s.fl, s.err = logsink.TailLines(s.path, s.cfg, q.N, q.Since, keep, put)
			if s.err == nil && !q.Follow && s.fl != nil {
				s.err = s.fl.RestLines(func(l logsink.Line) {
					if keep(l) && (q.Since.IsZero() || !l.Time.Before(q.Since)) {
						put(l)
					}
				})
			}
		}
		next, stop := iter.Pull(iter.Seq[logsink.Line](seq))
		h := &head{src: s, next: next, stop: stop}
		heads = append(heads, h)
	}
	live := heads[:0:0]
	for _, h := range heads {
		if l, ok := h.next(); ok {
			h.line = l
			live = append(live, h)
		} else if h.src.err != nil {
			return fmt.Errorf("%s: %w", h.src.path, h.src.err)
		}
	}
	// The last q.N lines of the merge: a ring, when q.N is not all.
	var ring []api.LogLine
	start := 0
	out := func(l api.LogLine) error {
		if q.N < 0 {
			return emit(l)
		}
		if q.N == 0 {
			return nil
		}
		if len(ring) < q.N {
			ring = append(ring, l)
		} else {
			ring[start] = l
			start = (start + 1) % q.N
		}
		return nil
	}
	for len(live) > 0 {
		k := 0
		for i, h := range live[1:] {
			if h.line.Time.Before(live[k].line.Time) {
				k = i + 1
			}
		}
		h := live[k]
		if err := out(entry(h.src, h.line)); err != nil {
			return err
		}
		if l, ok := h.next(); ok {
			h.line = l
			continue
		}
		if h.src.err != nil {
			return fmt.Errorf("%s: %w", h.src.path, h.src.err)
		}
		live = append(live[:k], live[k+1:]...)
	}
	for _, l := range append(ring[start:], ring[:start]...) {
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

// follow calls emit with each new line of every stream, as each comes.
func follow(ctx context.Context, srcs []*source, keep func(logsink.Line) bool, emit func(api.LogLine) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(srcs))
	for i, s := range srcs {
		if s.fl == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.fl.FollowLines(ctx, func(l logsink.Line) {
				if !keep(l) || ctx.Err() != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if err := emit(entry(s, l)); err != nil {
					cancel(err)
				}
			})
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return errors.Join(errs...)
}

func entry(s *source, l logsink.Line) api.LogLine {
	return api.LogLine{Time: l.Time, Exact: l.Exact, Service: s.service, Stream: s.stream, Line: string(l.Text)}
}

// ParseTime reads a --since or --until: RFC 3339 ("2026-12-03T18:00:00Z"),
// a local date and time ("2026-12-03 18:00:00", "2026-12-03 18:00", or a
// date alone), a duration before now ("10m", "1h30m", "2d" for days), or
// "now", "today", "yesterday", as journalctl takes them.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	day := func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	}
	switch s {
	case "now":
		return now, nil
	case "today":
		return day(now), nil
	case "yesterday":
		return day(now).AddDate(0, 0, -1), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	rel := strings.TrimPrefix(s, "-")
	if days, ok := strings.CutSuffix(rel, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(rel); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want a time like 2026-12-03T18:00:00Z or \"2026-12-03 18:00\", or a duration like 10m or 2d before now, got %q", s)
}
