package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"upkeep/internal/spec"
)

const (
	// checkEvery is how often a writing sink looks whether its file is
	// still at its path (renamed by an outside logrotate, removed by an
	// operator) and reopens it if not.
	checkEvery = time.Second
	// retryEvery is how often a sink without a file tries to open one.
	retryEvery = time.Second
	// lineWait bounds how long a write, or a forced rotation, waits for a
	// drain to end the line the file ends inside (see Sink.owner).
	lineWait = time.Second
	// settleWait is how long output must be written fine after a
	// condition before it is reported over (the "recovered" event): a
	// nearly full disk flaps, a few writes fitting whenever the archive
	// frees a file, and each flap would be two events, pushing the
	// service's state changes out of its bounded history.
	settleWait = time.Second
)

// ErrMissing is returned by Rotate when the file had been removed behind
// the sink's back and the settings do not say missingok. The sink has
// made a new one all the same.
var ErrMissing = errors.New("log file was missing")

// ErrPending is returned by Rotate when the file ends inside a line that a
// drain is still writing (a service that wrote half a line and paused): the
// rotation happens at the end of that line, so that no line is split.
var ErrPending = errors.New("rotation waits for the end of a line")

// ErrExists is returned by Rotate when a dateext name is taken: logrotate
// skips such a rotation, and so does the sink (the lines stay in the live
// file).
var ErrExists = errors.New("rotated file already exists")

// Event is something a caller may want to report: a rotation, a condition
// that makes the sink drop output (disk full, unwritable directory), its
// end, or a failure in the background work on rotated files.
type Event struct {
	Path    string
	Kind    string // "rotated", "error", "recovered", "archive-error"
	Err     error  // for "error" and "archive-error"
	To      string // for "rotated": the file's new name
	Dropped int64  // bytes dropped so far
	// Lost is, for "recovered", the bytes dropped since output was last
	// written fine: what the condition that ended cost. Err is then that
	// condition.
	Lost int64
}

// Sink appends one stream of a service to its log file and rotates it.
// Writes are serialised, so output of a service's old and new runs never
// interleaves inside a line, and a rotation, which happens between two
// writes, never splits one.
//
// A drain that moves a flood with splice(2) (Drain) does not see the bytes
// it moves, so the file may end inside a line for a moment. That drain then
// owns the file (owner) until it ends the line: other writers wait for it,
// and a rotation that comes due waits for it and happens right after the
// line's newline. See Drain.
//
// The Sink's state is in small parts, each with one job: the tuning it
// was made with, the live file, the failure condition, the line a drain
// owns, the timer and the rotations pending. mu guards all but the tuning
// (set before the sink is used and only read after) and the two atomics;
// each part says where its methods live.
type Sink struct {
	path    string
	cfg     spec.Log
	auto    bool // rotate by cfg (OpenWith), not only when asked
	arch    *archive
	dropped atomic.Int64
	notify  atomic.Pointer[func(Event)]
	tuning

	mu              sync.Mutex
	liveFile        // guarded by mu
	condition       // guarded by mu
	lineOwner       // guarded by mu
	rotationTimer   // guarded by mu
	pendingRotation // guarded by mu
	index           // guarded by mu: the live file's time index (index.go)
}

// tuning is how often a sink looks, retries and waits, and its clock:
// constants in the daemon, shorter in tests, which set them before the
// sink is used. Nothing writes them after; no lock.
type tuning struct {
	now        func() time.Time
	boundary   func(when string, t time.Time) time.Time // the next period start after t
	checkEvery time.Duration
	retryEvery time.Duration
	lineWait   time.Duration
	settleWait time.Duration
}

// rotation is one rotation that was pending, for Rotate to wait on.
type rotation struct {
	done chan struct{}
	res  Rotation
	err  error
}

// Rotation is what a rotation asked for did.
type Rotation struct {
	// Rotated is false when there was nothing to rotate: an empty file
	// with notifempty, a missing one with missingok.
	Rotated bool
	// To is the rotated file's name; "" with rotate = 0, which discards
	// the old contents.
	To string
}

// Open opens (creating) the log file at path for appending, with no
// rotation; it fails when the file cannot be opened.
func Open(path string) (*Sink, error) {
	s := newSink(path, spec.Log{When: spec.Untimed, Rotate: -1}, false)
	if err := s.open(s.now()); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenWith opens the log file at path, rotated by cfg: by time on a
// timer, by size on the write that crosses it. It never fails because of
// the file: a sink that cannot open it (a missing or unwritable
// directory) counts what it is given as dropped, reports the condition
// (Err, Notify) and tries again at most once a second, so a service never
// stops for its log. A zero cfg rotates nothing.
func OpenWith(path string, cfg spec.Log) (*Sink, error) {
	if cfg.When == "" { // a zero spec.Log: no rotation
		cfg.When = spec.Untimed
	}
	if !cfg.Timed() && cfg.When != spec.Untimed {
		return nil, fmt.Errorf("log %s: when = %q", path, cfg.When)
	}
	s := newSink(path, cfg, true)
	s.start()
	return s, nil
}

func newSink(path string, cfg spec.Log, auto bool) *Sink {
	s := &Sink{path: path, cfg: cfg, auto: auto,
		tuning: tuning{now: time.Now, boundary: nextBoundary,
			checkEvery: checkEvery, retryEvery: retryEvery, lineWait: lineWait, settleWait: settleWait},
		liveFile:        liveFile{fd: -1},
		pendingRotation: pendingRotation{next: &rotation{done: make(chan struct{})}}}
	s.arch = newArchive(path, cfg, s.emit)
	return s
}

// start opens the file, rotates one left from an earlier period (the
// daemon was down when it ended), sets the timer, and has the archive
// finish what an earlier daemon may have left (compression, retention).
func (s *Sink) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if err := s.open(now); err != nil {
		s.fail(now, err)
	} else if s.cfg.Timed() && s.size > 0 {
		if fi, err := s.f.Stat(); err == nil && fi.ModTime().Before(periodStart(s.cfg.When, now)) {
			s.rotate(now, true)
		}
	}
	s.arm(now)
	s.arch.kick()
}

// Path is the file the sink writes to.
func (s *Sink) Path() string { return s.path }

// Dropped is how many bytes could not be written.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// Err is the condition that makes the sink drop output now (disk full,
// unwritable directory), or nil.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Notify sets the function told about events. It is called from the
// writing goroutine, the timer and the archive's worker: it must be quick,
// safe for concurrent use, and must not call the Sink. A condition the
// sink is in already (its file could not be opened: OpenWith reports
// nothing) is told at once.
func (s *Sink) Notify(f func(Event)) {
	s.notify.Store(&f)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil && !s.told {
		s.told = true
		s.emit(Event{Kind: "error", Err: s.err})
	}
}

func (s *Sink) emit(e Event) {
	if f := s.notify.Load(); f != nil && *f != nil {
		e.Path = s.path
		e.Dropped = s.dropped.Load()
		(*f)(e)
	}
}

// Write appends p, which should be whole lines. It never fails towards
// the service: what cannot be written is counted as dropped, so a full
// disk never stops a service.
func (s *Sink) Write(p []byte) (int, error) {
	s.put(nil, p)
	return len(p), nil
}

// put appends p for the drain d (nil for Write). A rotation that is due
// while d is inside a line happens right after the line's newline.
func (s *Sink) put(d *drainer, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitLine(d)
	if d != nil && d.skip {
		// The start of this line was dropped: drop the rest too.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.dropped.Add(int64(len(p)))
			return
		}
		s.dropped.Add(int64(i + 1))
		d.skip = false
		p = p[i+1:]
	}
	if len(p) == 0 {
		return
	}
	if s.closed {
		s.drop(d, p)
		return
	}
	var now time.Time
	if s.auto || s.f == nil {
		now = s.now()
		if s.timedPast(now) {
			s.timedDue(now)
		}
		if s.f == nil && !s.reopen(now) {
			s.drop(d, p)
			return
		}
		if s.auto && s.owner == nil && now.After(s.checkAt) {
			if s.check(now); s.f == nil {
				s.drop(d, p)
				return
			}
		}
	}
	if d != nil && s.owner == d && s.rotationDue() {
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			if !s.append(d, now, p[:i+1]) {
				s.drop(d, p[i+1:])
				return
			}
			s.rotateIfDue(now)
			if p = p[i+1:]; len(p) == 0 {
				return
			}
			if s.f == nil { // the new file could not be opened
				s.drop(d, p)
				return
			}
		}
	}
	if s.append(d, now, p) {
		s.rotateIfDue(now)
	}
}

// append writes p at the end of the file and keeps track of who is inside
// a line; false when the write failed (p is dropped).
func (s *Sink) append(d *drainer, now time.Time, p []byte) bool {
	off := s.end()
	s.mark(now, off)
	n, err := pwrite(s.fd, p, off)
	s.size += int64(n)
	if err != nil {
		s.writeFailed(d, now, err, n, p)
		return false
	}
	if s.err != nil {
		s.lastErr, s.err = s.err, nil
		s.settling = time.AfterFunc(s.settleWait, s.settled)
	}
	switch {
	case p[len(p)-1] == '\n':
		if s.owner == d {
			s.release()
		}
	case d == nil:
		// Write's caller hands whole lines; a last line without a
		// newline is its own business, as before.
	case s.owner != d:
		s.take(d, s.size-int64(len(p))+int64(bytes.LastIndexByte(p, '\n')+1))
	default:
		if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
			s.lineFloor = s.size - int64(len(p)) + int64(i+1)
		}
	}
	return true
}

// drop counts p as dropped. A drain's partial line makes it drop the rest
// of that line too, so that what is dropped is whole lines.
func (s *Sink) drop(d *drainer, p []byte) {
	s.dropped.Add(int64(len(p)))
	if d == nil || len(p) == 0 {
		return
	}
	if s.owner == d {
		s.release()
	}
	if p[len(p)-1] != '\n' {
		d.skip = true
	}
}

// Rotate rotates the file now (logrotate -f), unless notifempty holds it
// back, and says what it did. ErrMissing: the file had been removed (a
// new one is made); ErrExists: the dateext name is taken, nothing was
// rotated; ErrPending: the file ends inside a line that has not ended
// within a second, and the rotation happens at its end. File.Rotate is
// the same for a file a service writes itself.
func (s *Sink) Rotate() (Rotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Rotation{}, os.ErrClosed
	}
	if s.owner == nil {
		return s.rotate(s.now(), false)
	}
	// A drain is inside a line; its next bytes end it, within
	// microseconds for a busy service.
	s.pendForced = true
	r := s.next
	s.mu.Unlock()
	t := time.NewTimer(s.lineWait)
	select {
	case <-r.done:
	case <-t.C:
	}
	t.Stop()
	s.mu.Lock()
	select {
	case <-r.done:
		return r.res, r.err
	default:
		return Rotation{}, ErrPending
	}
}

// rotate renames the file to its first rotated name (shifting the older
// ones) and opens a new one, all between two writes. Compression and
// retention are left to the archive's worker, off the write path. timed:
// minsize applies. No drain may be inside a line.
func (s *Sink) rotate(now time.Time, timed bool) (Rotation, error) {
	if s.f == nil && !s.reopen(now) {
		return Rotation{}, s.err
	}
	fi, err := os.Stat(s.path)
	if err != nil || idOf(fi) != s.id {
		// Removed (or replaced) behind our back: nothing to rotate.
		// What was written since went to a file no one can see.
		s.closeFile()
		s.retryAt = time.Time{}
		s.reopen(now)
		if s.cfg.MissingOK {
			return Rotation{}, nil
		}
		s.emit(Event{Kind: "archive-error", Err: fmt.Errorf("rotate %s: %w", s.path, ErrMissing)})
		return Rotation{}, ErrMissing
	}
	if s.size = fi.Size(); s.size == 0 && s.cfg.NotIfEmpty {
		return Rotation{}, nil
	}
	if timed && s.size < int64(s.cfg.MinSize) {
		return Rotation{}, nil
	}
	to, err := s.arch.rotate(now, s.path, false)
	if err != nil {
		s.emit(Event{Kind: "archive-error", Err: err})
		return Rotation{}, err
	}
	s.closeFile()
	s.retryAt = time.Time{}
	s.reopen(now)
	s.emit(Event{Kind: "rotated", To: to})
	s.arch.kick()
	return Rotation{Rotated: true, To: to}, nil
}

// Close closes the file; later writes are dropped. Work on rotated files
// goes on in the background (Wait waits for it).
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.endCondition()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f, s.fd = nil, -1
	s.closeIndex()
	s.release()
	return err
}

// Wait returns once the background work on rotated files (compression,
// retention) has finished.
func (s *Sink) Wait() { s.arch.wait() }
