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
	minBuf = 4 << 10   // what an idle service costs
	maxBuf = 256 << 10 // a flooding service's: a quarter of its pipe
	// pipeSize is what a flooding service's pipe grows to (the default is
	// 64 KiB): fewer, larger reads and writes. The kernel allocates its
	// pages only as they fill, and limits it (fs.pipe-max-size).
	pipeSize = 1 << 20

	// checkEvery is how often a writing sink looks whether its file is
	// still at its path (renamed by an outside logrotate, removed by an
	// operator) and reopens it if not.
	checkEvery = time.Second
	// retryEvery is how often a sink without a file tries to open one.
	retryEvery = time.Second
)

// ErrMissing is returned by Rotate when the file had been removed behind
// the sink's back and the settings do not say missingok. The sink has
// made a new one all the same.
var ErrMissing = errors.New("log file was missing")

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
}

// Sink appends one stream of a service to its log file and rotates it.
// Writes are whole lines (Drain makes them so), serialised, so output of a
// service's old and new runs never interleaves inside a line, and a
// rotation, which happens between two writes, never splits one.
type Sink struct {
	path    string
	cfg     spec.Log
	auto    bool // rotate by cfg (OpenWith), not only when asked
	arch    *archive
	dropped atomic.Int64

	now        func() time.Time
	boundary   func(when string, t time.Time) time.Time // the next period start after t
	checkEvery time.Duration
	retryEvery time.Duration

	mu      sync.Mutex
	f       *os.File
	id      fileID
	size    int64
	closed  bool
	err     error     // why output is dropped; nil when writing fine
	retryAt time.Time // f == nil: when to try opening again
	checkAt time.Time // when to look whether path is still f
	due     time.Time // the period start the timer is set for
	timer   *time.Timer

	notify atomic.Pointer[func(Event)]
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
		checkEvery: checkEvery, retryEvery: retryEvery}
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
// safe for concurrent use, and must not call the Sink.
func (s *Sink) Notify(f func(Event)) { s.notify.Store(&f) }

func (s *Sink) emit(e Event) {
	if f := s.notify.Load(); f != nil && *f != nil {
		e.Path = s.path
		e.Dropped = s.dropped.Load()
		(*f)(e)
	}
}

// Write appends p. It never fails towards the service: what cannot be
// written is counted as dropped, so a full disk never stops a service.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Add(int64(len(p)))
		return len(p), nil
	}
	var now time.Time
	if s.auto || s.f == nil {
		now = s.now()
		if s.f == nil && !s.reopen(now) {
			s.dropped.Add(int64(len(p)))
			return len(p), nil
		}
		if s.auto && now.After(s.checkAt) {
			if s.check(now); s.f == nil {
				s.dropped.Add(int64(len(p)))
				return len(p), nil
			}
		}
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		s.writeFailed(now, err, n, len(p))
		return len(p), nil
	}
	if s.err != nil {
		s.err = nil
		s.emit(Event{Kind: "recovered"})
	}
	if s.auto && s.cfg.Size > 0 && s.size >= int64(s.cfg.Size) {
		s.rotate(now, false)
	}
	return len(p), nil
}

// writeFailed takes back the part of p that was written, so that no torn
// line stays in the file, and counts p as dropped. A full disk (or file
// size limit) keeps the file: the next write tries again and succeeds once
// there is room. Any other error closes it, to be reopened.
func (s *Sink) writeFailed(now time.Time, err error, n, total int) {
	if n > 0 {
		if terr := s.f.Truncate(s.size - int64(n)); terr == nil {
			s.size -= int64(n)
		} else {
			// Cannot take it back: end the torn line, so the next
			// one starts on its own.
			s.f.Write([]byte("\n"))
		}
	}
	s.dropped.Add(int64(total))
	full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT)
	s.fail(now, err, !full)
}

// fail records a condition; closeFile also gives up the file, to be
// reopened after retryEvery.
func (s *Sink) fail(now time.Time, err error, closeFile bool) {
	if closeFile && s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.f == nil {
		s.retryAt = now.Add(s.retryEvery)
	}
	if s.err == nil {
		s.err = err
		s.emit(Event{Kind: "error", Err: err})
	}
	s.err = err
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

func (s *Sink) open(now time.Time) error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.id, s.size = f, idOf(fi), fi.Size()
	s.checkAt = now.Add(s.checkEvery)
	return nil
}

// check looks whether the path still names the open file. A file renamed
// away (logrotate without copytruncate) or removed is replaced by a new
// one: lines written meanwhile went to the renamed file, none are lost;
// a file truncated in place (copytruncate) has its size taken again.
func (s *Sink) check(now time.Time) {
	s.checkAt = now.Add(s.checkEvery)
	fi, err := os.Stat(s.path)
	if err == nil && idOf(fi) == s.id {
		if fi.Size() < s.size {
			s.size = fi.Size()
		}
		return
	}
	s.f.Close()
	s.f = nil
	s.retryAt = time.Time{}
	s.reopen(now)
}

// Rotate rotates the file now (logrotate -f), unless notifempty holds it
// back. ErrMissing: the file had been removed (a new one is made);
// ErrExists: the dateext name is taken, nothing was rotated.
func (s *Sink) Rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	return s.rotate(s.now(), false)
}

// rotate renames the file to its first rotated name (shifting the older
// ones) and opens a new one, all between two writes. Compression and
// retention are left to the archive's worker, off the write path. timed:
// minsize applies.
func (s *Sink) rotate(now time.Time, timed bool) error {
	if s.f == nil && !s.reopen(now) {
		return s.err
	}
	fi, err := os.Stat(s.path)
	if err != nil || idOf(fi) != s.id {
		// Removed (or replaced) behind our back: nothing to rotate.
		// What was written since went to a file no one can see.
		s.f.Close()
		s.f = nil
		s.retryAt = time.Time{}
		s.reopen(now)
		if s.cfg.MissingOK {
			return nil
		}
		s.emit(Event{Kind: "archive-error", Err: fmt.Errorf("rotate %s: %w", s.path, ErrMissing)})
		return ErrMissing
	}
	if s.size = fi.Size(); s.size == 0 && s.cfg.NotIfEmpty {
		return nil
	}
	if timed && s.size < int64(s.cfg.MinSize) {
		return nil
	}
	to, err := s.arch.rotate(now, s.path)
	if err != nil {
		s.emit(Event{Kind: "archive-error", Err: err})
		return err
	}
	s.f.Close()
	s.f = nil
	s.retryAt = time.Time{}
	s.reopen(now)
	s.emit(Event{Kind: "rotated", To: to})
	s.arch.kick()
	return nil
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
	s.rotate(now, true)
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
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Wait returns once the background work on rotated files (compression,
// retention) has finished.
func (s *Sink) Wait() { s.arch.wait() }

// Drain copies r into the sink until r ends, handing Write whole lines only
// (a line longer than the largest buffer is written in pieces). The buffer
// starts small and grows only for a service that fills it, so a hundred quiet
// services cost little memory, and never beyond maxBuf, so a flooding one
// costs no more: when the disk is slower than the service, Write takes
// longer, the pipe fills and the service waits in its own write.
func (s *Sink) Drain(r io.Reader) {
	buf := make([]byte, minBuf)
	n := 0
	for {
		free := len(buf) - n
		m, err := r.Read(buf[n:])
		n += m
		if cut := bytes.LastIndexByte(buf[:n], '\n') + 1; cut > 0 {
			s.Write(buf[:cut])
			n = copy(buf, buf[cut:n])
		} else if n == maxBuf {
			s.Write(buf[:n])
			n = 0
		}
		if m == free && len(buf) < maxBuf {
			bigger := make([]byte, 2*len(buf))
			copy(bigger, buf[:n])
			buf = bigger
			if len(buf) == maxBuf {
				growPipe(r)
			}
		}
		if err != nil {
			if n > 0 {
				s.Write(buf[:n])
			}
			return
		}
	}
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
