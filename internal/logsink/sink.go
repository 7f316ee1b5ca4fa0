package logsink

import (
	"bytes"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

const (
	minBuf = 4 << 10  // what an idle service costs
	maxBuf = 64 << 10 // a pipe's default capacity: one read can fill it
)

// Sink appends one stream of a service to its log file. Writes are whole
// lines (Drain makes them so), serialised, so output of a service's old and
// new runs never interleaves inside a line.
type Sink struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	dropped atomic.Int64
}

// Open opens (creating) the log file at path for appending.
func Open(path string) (*Sink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &Sink{path: path, f: f}, nil
}

// Path is the file the sink writes to.
func (s *Sink) Path() string { return s.path }

// Dropped is how many bytes could not be written.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// Write appends p. It never fails towards the service: what cannot be
// written is counted as dropped, so a full disk never stops a service.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		s.dropped.Add(int64(len(p)))
		return len(p), nil
	}
	n, err := s.f.Write(p)
	if err != nil {
		s.dropped.Add(int64(len(p) - n))
	}
	return len(p), nil
}

// Close closes the file; later writes are dropped.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Drain copies r into the sink until r ends, handing Write whole lines only
// (a line longer than the largest buffer is written in pieces). The buffer
// starts small and grows only for a service that fills it, so a hundred quiet
// services cost little memory.
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
		}
		if err != nil {
			if n > 0 {
				s.Write(buf[:n])
			}
			return
		}
	}
}
