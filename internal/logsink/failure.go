package logsink

import (
	"bytes"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
