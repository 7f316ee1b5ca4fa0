package dashboard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/paths"
)

// tick is how often the stream refreshes figures that change without an
// event (CPU, RSS): the daemon samples every 10 s.
const tick = 10 * time.Second

// sse writes server-sent events; each is flushed at once.
type sse struct {
	w  io.Writer
	rc *http.ResponseController
}

func (e sse) send(event string, data []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\n", event)
	for _, l := range strings.Split(string(data), "\n") {
		fmt.Fprintf(&b, "data: %s\n", l)
	}
	b.WriteByte('\n')
	if _, err := e.w.Write(b.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

func startSSE(w http.ResponseWriter) sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	e := sse{w: w, rc: http.NewResponseController(w)}
	// retry: a browser reconnects a second after the daemon went away.
	io.WriteString(w, "retry: 1000\n\n")
	e.rc.Flush()
	return e
}

// stream follows the daemon's event stream: each event is sent as is
// ("event") and with its service's row rendered again ("row"), so the page
// changes within the event's own latency. Every tick it sends the host's
// figures and (host page) all rows, for what changes without events.
// ?service=NAME limits it to one service.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query().Get("service")
	if only != "" {
		if _, err := s.b.Status([]string{only}); err != nil {
			httpError(w, err)
			return
		}
	}
	ch, cancel := s.b.Follow()
	defer cancel()
	e := startSSE(w)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if only != "" && ev.Service != only {
				continue
			}
			if err := s.sendEvent(e, ev); err != nil {
				return
			}
		case <-t.C:
			if err := s.sendTick(e, only); err != nil {
				return
			}
		}
	}
}

func (s *Server) sendEvent(e sse, ev api.Event) error {
	b, _ := json.Marshal(ev)
	if err := e.send("event", b); err != nil {
		return err
	}
	if ev.Service == "" {
		return nil
	}
	sts, err := s.b.Status([]string{ev.Service})
	if err != nil || len(sts) != 1 {
		return nil // removed meanwhile: the next tick shows it gone
	}
	now := time.Now()
	return s.sendRow(e, s.makeRow(sts[0], s.traces(ev.Service, s.window(now), now, sparkW/2), now))
}

func (s *Server) sendRow(e sse, r row) error {
	var html bytes.Buffer
	if err := s.pages.ExecuteTemplate(&html, "row", r); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"name": r.Name, "state": r.State, "html": html.String()})
	return e.send("row", b)
}

func (s *Server) sendTick(e sse, only string) error {
	if only != "" {
		return e.send("plots", []byte(only))
	}
	sts, err := s.b.Status(nil)
	if err != nil {
		return nil
	}
	rows := s.rows(sts)
	var host, html bytes.Buffer
	if err := s.pages.ExecuteTemplate(&host, "host", s.host(rows)); err != nil {
		return err
	}
	if err := e.send("host", host.Bytes()); err != nil {
		return err
	}
	if err := s.pages.ExecuteTemplate(&html, "rows", rows); err != nil {
		return err
	}
	return e.send("rows", html.Bytes())
}

// tailLines is how much of a log file the tail starts with.
const tailLines = 100

// logTail streams a service's .log (?file=out, the default) or
// .error.log (?file=err): its last lines, then each new line as it is
// written, across rotations (a renamed file is read to its end before the
// new one; a truncated one is read again from its start).
func (s *Server) logTail(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.b.Status([]string{name}); err != nil {
		httpError(w, err)
		return
	}
	path := paths.Log(s.o.Root, name)
	if r.URL.Query().Get("file") == "err" {
		path = paths.ErrorLog(s.o.Root, name)
	}
	e := startSSE(w)
	f, off := openTail(path)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var part []byte
	buf := make([]byte, 32<<10)
	// drain sends what f holds past off, in whole lines.
	drain := func() error {
		for f != nil {
			n, err := f.ReadAt(buf, off)
			if n > 0 {
				off += int64(n)
				part = append(part, buf[:n]...)
				if i := bytes.LastIndexByte(part, '\n'); i >= 0 {
					if err := e.send("lines", part[:i]); err != nil {
						return err
					}
					part = append(part[:0], part[i+1:]...)
				}
				if len(part) > 64<<10 { // a line without an end: send what there is
					if err := e.send("lines", part); err != nil {
						return err
					}
					part = part[:0]
				}
			}
			if err != nil || n < len(buf) {
				return nil
			}
		}
		return nil
	}
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		if drain() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-poll.C:
		}
		if f == nil {
			f, off = openAt(path, 0)
			continue
		}
		fi, err := os.Stat(path)
		cur, _ := f.Stat()
		switch {
		case err != nil: // rotated away, the new one not there yet: keep reading the old
		case cur != nil && !os.SameFile(fi, cur):
			// renamed: finish the old file, then go on in the new one
			if drain() != nil {
				return
			}
			if len(part) > 0 && e.send("lines", part) != nil {
				return
			}
			f.Close()
			f, off = openAt(path, 0)
			part = part[:0]
		case fi.Size() < off: // copytruncate
			off = 0
			part = part[:0]
		}
	}
}

// openTail opens path at the start of its last tailLines lines.
func openTail(path string) (*os.File, int64) {
	f, _ := openAt(path, 0)
	if f == nil {
		return nil, 0
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0
	}
	size := fi.Size()
	start := max(size-256<<10, 0) // enough for 100 lines of any sane length
	br := bufio.NewReader(io.NewSectionReader(f, start, size-start))
	var ends []int64
	pos := start
	for {
		l, err := br.ReadSlice('\n')
		pos += int64(len(l))
		if err == nil {
			ends = append(ends, pos)
		} else if err != bufio.ErrBufferFull {
			break
		}
	}
	off := start
	if len(ends) > tailLines {
		off = ends[len(ends)-tailLines-1]
	} else if start > 0 && len(ends) > 0 {
		off = ends[0]
	}
	return f, off
}

// openAt opens a regular file only: O_NONBLOCK keeps a FIFO put in the
// log's place from blocking the handler.
func openAt(path string, off int64) (*os.File, int64) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0
	}
	return f, off
}
