package logsink

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// liveFile is the file the sink writes now, and when to look at it again;
// guarded by Sink.mu. The methods below and spliceFrom (drain.go) use it.
type liveFile struct {
	f        *os.File
	fd       int // f's descriptor: splice and pread
	id       fileID
	size     int64 // where the next byte goes: the file is written at explicit offsets
	closed   bool
	retryAt  time.Time // f == nil: when to try opening again
	checkAt  time.Time // when to look whether path is still f
	noSplice bool      // the file system refused splice
	spliced  int64     // bytes moved by splice: what tests and the benchmark look at
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

// closeFile closes the file; a line that a drain is inside stays as it
// is in the old file.
func (s *Sink) closeFile() {
	s.f.Close()
	s.f, s.fd = nil, -1
	s.closeIndex()
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
			s.fail(now, err)
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

// fileID is a file's identity: what tells a renamed file from its
// successor at the same path.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}
