package logsink

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	minBuf = 4 << 10   // what a service that has written costs (a silent one: nothing)
	maxBuf = 256 << 10 // a flooding service's: a quarter of its pipe
)

// pipeSize is what a flooding service's pipe grows to (the default is 64
// KiB): fewer, larger reads and splices, and fewer wakeups of the service
// and the daemon. The kernel allocates its pages only as they fill, and
// limits it (fs.pipe-max-size). A variable for the benchmark.
var pipeSize = 1 << 20

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
	s.mark(now, off)
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
		s.spliceFailed(d, err)
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

// lineOwner is the drain whose line the file ends inside, if any; guarded
// by Sink.mu. Only take and release change it.
type lineOwner struct {
	owner     *drainer      // nil: the file ends a line
	ownerGone chan struct{} // closed when owner lets go
	lineFloor int64         // the owner's line starts at or after this offset
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
