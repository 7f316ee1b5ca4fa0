package logsink

import (
	"bytes"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// condition is the failure that makes the sink drop output, and the
// report of its end; guarded by Sink.mu. fail starts (or continues) one,
// append starts its settling, endCondition reports it over.
type condition struct {
	err error // why output is dropped; nil when writing fine
	// lostFrom is dropped when output was last written fine: a
	// "recovered" event reports what was lost since.
	lostFrom int64
	// settling is set while output is written fine again after a
	// condition, for less than settleWait: a failure then continues the
	// same condition, unreported; settled reports its end.
	settling *time.Timer
	lastErr  error // the condition that settling ends
	told     bool  // the "error" event of the condition went to a Notify function
}

// writeFailed takes back the part of p that was written, and the start of
// the line that p ends, when d wrote it, so that no torn line stays in the
// file, counts all of it as dropped, and records the condition (fail).
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
	s.fail(now, err)
}

// spliceFailed is writeFailed for a splice the file refused (disk full,
// file size limit, I/O error): the bytes are still in the pipe, and the
// next read drops them whole; when d is inside a line, the start of the
// line goes too.
func (s *Sink) spliceFailed(d *drainer, err error) {
	if s.owner == d {
		cut := s.lineStart()
		before := s.size
		s.takeBack(cut)
		s.dropped.Add(before - s.size)
		s.release()
		d.skip = true
	}
	s.fail(s.now(), err)
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

// fail records a condition. A full disk (Full) keeps the file, written
// again as soon as there is room; any other error gives it up, to be
// reopened after retryEvery. This is the one place that tells the two
// apart.
func (s *Sink) fail(now time.Time, err error) {
	if s.f != nil && !Full(err) {
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
