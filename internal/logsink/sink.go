package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

const (
	minBuf = 4 << 10   // what a service that has written costs (a silent one: nothing)
	maxBuf = 256 << 10 // a flooding service's: a quarter of its pipe
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

// pipeSize is what a flooding service's pipe grows to (the default is 64
// KiB): fewer, larger reads and splices, and fewer wakeups of the service
// and the daemon. The kernel allocates its pages only as they fill, and
// limits it (fs.pipe-max-size). A variable for the benchmark.
var pipeSize = 1 << 20

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
type Sink struct {
	path    string
	cfg     spec.Log
	auto    bool // rotate by cfg (OpenWith), not only when asked
	arch    *archive
	dropped atomic.Int64
	// lostFrom is dropped when output was last written fine: a
	// "recovered" event reports what was lost since (guarded by mu).
	lostFrom int64
	// settling is set while output is written fine again after a
	// condition, for less than settleWait: a failure then continues the
	// same condition, unreported; settled reports its end.
	settling   *time.Timer
	lastErr    error // the condition that settling ends
	told       bool  // the "error" event of the condition went to a Notify function
	settleWait time.Duration

	now        func() time.Time
	boundary   func(when string, t time.Time) time.Time // the next period start after t
	checkEvery time.Duration
	retryEvery time.Duration
	lineWait   time.Duration

	mu      sync.Mutex
	f       *os.File
	fd      int // f's descriptor: splice and pread
	id      fileID
	size    int64 // where the next byte goes: the file is written at explicit offsets
	closed  bool
	err     error     // why output is dropped; nil when writing fine
	retryAt time.Time // f == nil: when to try opening again
	checkAt time.Time // when to look whether path is still f
	due     time.Time // the period start the timer is set for
	timer   *time.Timer

	// owner is the drain whose line the file ends inside, or nil.
	owner     *drainer
	ownerGone chan struct{} // closed when owner lets go
	lineFloor int64         // the owner's line starts at or after this offset
	// A rotation asked for (Rotate) or due by the clock (tick) while
	// owner is inside a line: done at the end of that line.
	pendForced, pendTimed bool
	next                  *rotation // what Rotate waits for
	noSplice              bool      // the file system refused splice
	spliced               int64     // bytes moved by splice: what tests and the benchmark look at

	notify atomic.Pointer[func(Event)]
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
	s := &Sink{path: path, cfg: cfg, auto: auto, now: time.Now, boundary: nextBoundary,
		checkEvery: checkEvery, retryEvery: retryEvery, lineWait: lineWait, settleWait: settleWait, fd: -1,
		next: &rotation{done: make(chan struct{})}}
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
		s.fail(now, err, true)
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
	n, err := pwrite(s.fd, p, s.end())
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

// take makes d the owner of the line the file now ends inside, which
// starts at or after floor.
func (s *Sink) take(d *drainer, floor int64) {
	s.owner, s.ownerGone, s.lineFloor = d, make(chan struct{}), floor
}

// release ends the ownership of the file's last line and wakes whoever
// waits for it.
func (s *Sink) release() {
	if s.owner != nil {
		s.owner = nil
		close(s.ownerGone)
		s.ownerGone = nil
	}
}

// waitLine waits, with mu held, until no other drain is inside a line, at
// most lineWait. A drain whose service wrote half a line and paused for
// that long has its line ended with a newline, so that this write starts
// on a line of its own: the rest of that line becomes a line of its own.
func (s *Sink) waitLine(d *drainer) {
	if s.owner == nil || s.owner == d {
		return
	}
	deadline := time.Now().Add(s.lineWait)
	for s.owner != nil && s.owner != d {
		left := time.Until(deadline)
		if left <= 0 {
			s.endLine()
			return
		}
		gone := s.ownerGone
		s.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-gone:
		case <-t.C:
		}
		t.Stop()
		s.mu.Lock()
	}
}

// endLine ends the owner's line with a newline and releases it.
func (s *Sink) endLine() {
	if s.f != nil {
		if n, err := pwrite(s.fd, []byte{'\n'}, s.size); err == nil {
			s.size += int64(n)
		}
	}
	s.release()
	s.rotateIfDue(time.Time{})
}

// rotationDue reports whether a rotation waits for a line to end.
func (s *Sink) rotationDue() bool {
	return s.pendForced || s.pendTimed || (s.auto && s.cfg.Size > 0 && s.size >= int64(s.cfg.Size))
}

// rotateIfDue rotates when a rotation is due and no drain is inside a
// line: a forced or timed one that waited for a line to end, or one by
// size.
func (s *Sink) rotateIfDue(now time.Time) {
	if s.owner != nil || s.closed || !s.rotationDue() {
		return
	}
	if now.IsZero() {
		now = s.now()
	}
	if s.pendForced || s.pendTimed {
		timed := !s.pendForced
		s.pendForced, s.pendTimed = false, false
		r := s.next
		r.res, r.err = s.rotate(now, timed)
		s.next = &rotation{done: make(chan struct{})}
		close(r.done)
		return
	}
	s.rotate(now, false)
}

// writeFailed takes back the part of p that was written, and the start of
// the line that p ends, when d wrote it, so that no torn line stays in the
// file, and counts all of it as dropped. A full disk (or file size limit)
// keeps the file: the next write tries again and succeeds once there is
// room. Any other error closes it, to be reopened.
func (s *Sink) writeFailed(d *drainer, now time.Time, err error, n int, p []byte) {
	start := s.size - int64(n) // where p began
	cut := start
	if d != nil && s.owner == d {
		cut = s.lineStart()
	}
	s.takeBack(cut)
	s.dropped.Add(start - cut + int64(len(p)))
	if d != nil {
		if s.owner == d {
			s.release()
		}
		if p[len(p)-1] != '\n' {
			d.skip = true
		}
	}
	s.fail(now, err, !Full(err))
}

// takeBack truncates the file to cut.
func (s *Sink) takeBack(cut int64) {
	if cut >= s.size {
		return
	}
	if err := s.f.Truncate(cut); err == nil {
		s.size = cut
		return
	}
	// Cannot take it back: end the torn line, so the next one starts
	// on its own.
	if n, err := pwrite(s.fd, []byte{'\n'}, s.size); err == nil {
		s.size += int64(n)
	}
}

// lineStart finds where the owner's line starts: after the last newline
// at or above lineFloor. Only a failed write needs it.
func (s *Sink) lineStart() int64 {
	buf := make([]byte, 64<<10)
	for end := s.size; end > s.lineFloor; {
		start := max(s.lineFloor, end-int64(len(buf)))
		n, err := unix.Pread(s.fd, buf[:end-start], start)
		if err != nil || int64(n) != end-start {
			break
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	return s.lineFloor
}

// pwrite writes all of p at off and, unlike os.File.WriteAt, counts what
// a write that failed part-way did write: writeFailed takes it back.
func pwrite(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pwrite(fd, p[n:], off+int64(n))
		if m > 0 {
			n += m
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
	}
	return n, nil
}

// end is where the file ends, and so where the next bytes go. The sink is
// the file's only writer, but an outside copytruncate may have cut it
// short, and writing on at the old end would leave a hole of NULs: what
// O_APPEND would do, which splice(2) refuses.
func (s *Sink) end() int64 {
	if off, err := unix.Seek(s.fd, 0, io.SeekEnd); err == nil {
		s.size = off
	}
	return s.size
}

// endsLine reports whether the file ends with a newline (or is empty).
func (s *Sink) endsLine() bool {
	if s.size == 0 {
		return true
	}
	var b [1]byte
	n, err := unix.Pread(s.fd, b[:], s.size-1)
	return err == nil && n == 1 && b[0] == '\n'
}

// Full reports whether err says the disk (or the file size limit, or a
// quota) has no room: the file is kept and written again as soon as there
// is.
func Full(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT)
}

// fail records a condition; closeFile also gives up the file, to be
// reopened after retryEvery.
func (s *Sink) fail(now time.Time, err error, closeFile bool) {
	if closeFile && s.f != nil {
		s.closeFile()
	}
	if s.f == nil {
		s.retryAt = now.Add(s.retryEvery)
	}
	switch {
	case s.err == nil && s.settling != nil:
		// The condition came back before it was reported over: the
		// same one goes on.
		s.settling.Stop()
		s.settling = nil
	case s.err == nil:
		s.err = err
		s.told = s.notify.Load() != nil
		s.emit(Event{Kind: "error", Err: err})
	}
	s.err = err
}

// settled reports the end of a condition once output has been written
// fine for settleWait (or the sink closes), with what it cost.
func (s *Sink) settled() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endCondition()
}

// endCondition emits "recovered" for a condition that settling ends.
// Called with mu held.
func (s *Sink) endCondition() {
	if s.settling == nil || s.err != nil {
		return
	}
	s.settling.Stop()
	s.settling = nil
	dropped := s.dropped.Load()
	s.emit(Event{Kind: "recovered", Err: s.lastErr, Lost: dropped - s.lostFrom})
	s.lostFrom = dropped
}

// closeFile closes the file; a line that a drain is inside stays as it
// is in the old file.
func (s *Sink) closeFile() {
	s.f.Close()
	s.f, s.fd = nil, -1
	s.release()
}

// reopen tries to open the file again when it is time to; the directory is
// made again if it was removed.
func (s *Sink) reopen(now time.Time) bool {
	if now.Before(s.retryAt) {
		return false
	}
	if err := s.open(now); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if os.MkdirAll(filepath.Dir(s.path), 0o755) == nil {
				err = s.open(now)
			}
		}
		if err != nil {
			s.fail(now, err, true)
			return false
		}
	}
	return true
}

// open opens the file for writing at explicit offsets, from its end, and
// for reading: splice(2) refuses a file opened O_APPEND, and pread tells
// whether a splice ended a line. The sink is the file's only writer.
func (s *Sink) open(now time.Time) error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.fd, s.id, s.size = f, int(f.Fd()), idOf(fi), fi.Size()
	s.checkAt = now.Add(s.checkEvery)
	return nil
}

// check looks whether the path still names the open file. A file renamed
// away (logrotate without copytruncate) or removed is replaced by a new
// one: lines written meanwhile went to the renamed file, none are lost;
// a file truncated in place (copytruncate) has its size taken again, so
// that writing goes on at its new end.
func (s *Sink) check(now time.Time) {
	s.checkAt = now.Add(s.checkEvery)
	fi, err := os.Stat(s.path)
	if err == nil && idOf(fi) == s.id {
		if fi.Size() < s.size {
			s.size = fi.Size()
		}
		return
	}
	s.closeFile()
	s.retryAt = time.Time{}
	s.reopen(now)
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

// arm sets the timer for the next period start. A timer is one wakeup a
// day (an hour), where checking the clock on every write would cost every
// write.
func (s *Sink) arm(now time.Time) {
	if !s.auto || !s.cfg.Timed() {
		return
	}
	s.due = s.boundary(s.cfg.When, now)
	s.timer = time.AfterFunc(s.due.Sub(now), s.tick)
}

func (s *Sink) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.now()
	// The timer runs on the monotonic clock; the wall clock may not have
	// reached the period's start yet (a clock step): wait for it.
	if now.Before(s.due) {
		s.timer = time.AfterFunc(s.due.Sub(now), s.tick)
		return
	}
	s.timedDue(now)
}

// timedPast reports whether the wall clock has passed the period start
// the timer is set for. The timer runs on the monotonic clock, so a wall
// clock stepped forward (an hour, or a day while suspended) is not seen by
// it until its full wait is over; a write looks at the clock anyway, so
// it notices at the next line. Called with mu held.
func (s *Sink) timedPast(now time.Time) bool {
	return s.auto && !s.due.IsZero() && !now.Before(s.due)
}

// timedDue does the rotation a period start calls for, once however many
// periods the clock skipped (logrotate too rotates once per run, not once
// per missed day), and sets the timer for the next period start after now.
// A drain inside a line has it done at the end of the line. Called with mu
// held.
func (s *Sink) timedDue(now time.Time) {
	if s.owner != nil {
		s.pendTimed = true
	} else {
		s.rotate(now, true)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.arm(now)
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
	s.release()
	return err
}

// Wait returns once the background work on rotated files (compression,
// retention) has finished.
func (s *Sink) Wait() { s.arch.wait() }

// drainer is one Drain: a reader and what it has read but not written.
type drainer struct {
	s    *Sink
	r    io.Reader
	rc   syscall.RawConn // r is a pipe in Go's poller: its bytes can be spliced
	buf  []byte
	n    int
	skip bool // the start of its current line was dropped (guarded by s.mu)
}

// Drain copies r into the sink until r ends. The buffer starts small and
// grows only for a service that fills it, so a hundred quiet services cost
// little memory, and never beyond maxBuf, so a flooding one costs no more:
// when the disk is slower than the service, writing takes longer, the pipe
// fills and the service waits in its own write.
//
// A quiet service's output is read, and handed to the file a whole line at
// a time (a line longer than maxBuf in pieces). A flood (reads that fill
// the buffer, or empty a full pipe) grows the buffer to maxBuf and the pipe
// to pipeSize; from then on, when r is a pipe, its bytes go pipe → file
// with splice(2): the kernel copies them once, from the pipe's pages to the
// page cache, instead of twice through the daemon's buffer. That holds as
// long as nothing needs to see the bytes: a rotation that comes due, a look
// at the path, a write that failed, all go back to reading for a chunk. A splice may end inside
// a line; the drain then owns the file until its next bytes end the line
// (see Sink). At the end of r, a last line without a newline stays as it
// is.
func (s *Sink) Drain(r io.Reader) {
	d := &drainer{s: s, r: r, rc: pipeConn(r)}
	defer s.leave(d)
	if d.rc != nil {
		// Most services say nothing for long stretches: a thousand idle
		// pipes held 8 MB of buffers. Wait (parked, no buffer) until the
		// pipe has something to read or has ended.
		_ = d.rc.Read(func(fd uintptr) bool {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0 || (err != nil && err != unix.EINTR)
		})
	}
	d.buf = make([]byte, minBuf)
	for {
		if d.rc != nil && d.n == 0 && len(d.buf) == maxBuf {
			if done, ok := d.splice(); done {
				return
			} else if ok {
				continue
			}
		}
		if !d.read() {
			return
		}
	}
}

// splice moves one pipeful into the file. done: the pipe has ended; ok
// false: the next chunk must be read (see spliceFrom).
func (d *drainer) splice() (done, ok bool) {
	var n int
	var err error
	rerr := d.rc.Read(func(fd uintptr) bool {
		n, err, ok = d.s.spliceFrom(d, int(fd))
		return !ok || err != unix.EAGAIN
	})
	if rerr != nil {
		d.rc = nil // closed under us, or not pollable after all: read
		return false, false
	}
	return ok && n == 0 && err == nil, ok
}

// read reads one chunk and hands over what it can.
func (d *drainer) read() bool {
	buf := d.buf
	free := len(buf) - d.n
	m, err := d.r.Read(buf[d.n:])
	d.n += m
	if d.n > 0 {
		if d.rc != nil && len(buf) == maxBuf {
			// A flood, to be spliced next: all of it, a partial
			// last line too.
			d.s.put(d, buf[:d.n])
			d.n = 0
		} else if cut := bytes.LastIndexByte(buf[:d.n], '\n') + 1; cut > 0 {
			d.s.put(d, buf[:cut])
			d.n = copy(buf, buf[cut:d.n])
		} else if d.n == maxBuf {
			d.s.put(d, buf[:d.n])
			d.n = 0
		}
	}
	// A read that fills the buffer, or empties a full pipe of the
	// default size, is a flood.
	if (m == free || m >= 64<<10) && len(buf) < maxBuf {
		bigger := make([]byte, 2*len(buf))
		copy(bigger, buf[:d.n])
		d.buf = bigger
		if len(d.buf) == maxBuf {
			growPipe(d.r)
		}
	}
	if err != nil {
		if d.n > 0 {
			d.s.put(d, d.buf[:d.n])
			d.n = 0
		}
		return false
	}
	return true
}

// spliceFrom splices what the pipe fd holds into the file, with the pipe
// side non-blocking: EAGAIN when it is empty. ok is false when the bytes
// must be seen instead: another drain is inside a line, a rotation is due
// (it must fall after a newline), the path is due for a look, or the file
// is gone or failing; n == 0 with a nil err is the pipe's end.
func (s *Sink) spliceFrom(d *drainer, fd int) (n int, err error, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noSplice {
		d.rc = nil
		return 0, nil, false
	}
	if (s.owner != nil && s.owner != d) || s.closed || s.f == nil || s.err != nil || d.skip || s.rotationDue() {
		return 0, nil, false
	}
	var now time.Time
	if s.auto && s.owner == nil {
		if now = s.now(); now.After(s.checkAt) || s.timedPast(now) {
			return 0, nil, false
		}
	}
	off := s.end()
	var moved int64
	for {
		moved, err = unix.Splice(fd, nil, s.fd, &off, pipeSize, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if err != unix.EINTR {
			break
		}
	}
	n = int(max(moved, 0))
	if n == 0 {
		switch {
		case err == nil || err == unix.EAGAIN:
			return 0, err, true
		case err == unix.EINVAL || err == unix.ENOSYS:
			s.noSplice = true // a file system without splice: read
			d.rc = nil
			return 0, nil, false
		}
		// The file refused the bytes (disk full, file size limit,
		// I/O error): they are still in the pipe, and the next read
		// drops them whole; the start of the line goes too.
		if s.owner == d {
			cut := s.lineStart()
			before := s.size
			s.takeBack(cut)
			s.dropped.Add(before - s.size)
			s.release()
			d.skip = true
		}
		s.fail(s.now(), err, !Full(err))
		return 0, nil, false
	}
	before := s.size
	s.size += int64(n)
	s.spliced += int64(n)
	if s.endsLine() {
		if s.owner == d {
			s.release()
		}
	} else if s.owner != d {
		s.take(d, before)
	}
	s.rotateIfDue(now)
	return n, nil, true
}

// leave ends a drain: a line it is inside stays as it is (a process's
// last line without a newline), and a rotation that waited for it is done.
func (s *Sink) leave(d *drainer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == d {
		s.release()
		s.rotateIfDue(time.Time{})
	}
}

// pipeConn returns r's raw descriptor when r is a pipe that Go's poller
// waits on (non-blocking): the one kind Drain splices from.
func pipeConn(r io.Reader) syscall.RawConn {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	nonblock := false
	rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = err == nil && fl&unix.O_NONBLOCK != 0
	})
	if !nonblock {
		return nil
	}
	return rc
}

// growPipe enlarges the pipe r reads from, if it is one; where the kernel
// refuses (an unprivileged user over fs.pipe-user-pages-soft), it stays
// as it is.
func growPipe(r io.Reader) {
	if f, ok := r.(*os.File); ok {
		if sc, err := f.SyscallConn(); err == nil {
			sc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
		}
	}
}

// fileID is a file's identity: what tells a renamed file from its
// successor at the same path.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}
