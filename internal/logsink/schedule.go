package logsink

import "time"

// rotationTimer is the timer set for the next period start; guarded by
// Sink.mu. arm sets it, tick and timedDue act on it.
type rotationTimer struct {
	due   time.Time // the period start the timer is set for
	timer *time.Timer
}

// pendingRotation is a rotation asked for (Rotate) or due by the clock
// (tick) while a drain is inside a line: done at the end of that line, by
// rotateIfDue. Guarded by Sink.mu.
type pendingRotation struct {
	pendForced, pendTimed bool
	next                  *rotation // what Rotate waits for
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
