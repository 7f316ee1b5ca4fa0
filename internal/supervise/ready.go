package supervise

// Readiness the services announce themselves (ready = "notify", "fd:N",
// "log:REGEX"): what each run is given to announce it with, and how the
// words come back to the service's loop. Nothing here moves a state: the
// words arrive at handle as evAnnounced and evNotify.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"upkeep/internal/logsink"
	"upkeep/internal/notify"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// readyWord is what a run said about itself, on its way to the loop.
type readyWord struct {
	run  int              // the run it belongs to: words of an earlier run are stale
	note *notify.Datagram // notify; nil for a newline on fd N or a matching log line
	from sender           // notify: the sender as /proc described it on receipt
}

// sender is where a notification came from: read from /proc the moment it
// arrived, while the sender (systemd-notify waits on its barrier) is alive.
type sender struct {
	pid, pgid, sid int
	cgroup         string
}

// launch is what the next spawn of a run gets to announce its readiness.
type launch struct {
	env   []string
	files []*os.File     // from fd 3: the write end of fd:N's pipe at N
	close []*os.File     // the daemon's copies of what the child inherits
	match *regexp.Regexp // log:REGEX
	found atomic.Bool    // a line matched (on stdout or stderr)
	run   int
}

// prepare sets up the next run's readiness channel, and counts the run.
func (s *service) prepare() (*launch, error) {
	s.runs++
	s.early = false
	s.endReadiness()
	s.statusText, s.announced = "", ""
	r := s.spec.Readiness()
	l := &launch{run: s.runs}
	switch r.Kind {
	case spec.ReadyNotify:
		if err := s.listenNotify(); err != nil {
			return nil, err
		}
		l.env = append(l.env, "NOTIFY_SOCKET="+s.nsock.Addr())
		if w := s.spec.Watchdog.D(); w > 0 {
			l.env = append(l.env, "WATCHDOG_USEC="+strconv.FormatInt(w.Microseconds(), 10))
		}
	case spec.ReadyFD:
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("ready fd: %w", err)
		}
		l.files = make([]*os.File, r.FD-2)
		l.files[r.FD-3] = pw
		l.close = append(l.close, pw)
		s.readyPipe = pr
		go s.awaitNewline(pr, l.run)
	case spec.ReadyLog:
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("ready: %w", err)
		}
		l.match = re
	}
	return l, nil
}

// done closes what the daemon keeps of a spawn's readiness channel once
// the child has its own copies.
func (l *launch) done() {
	if l == nil {
		return
	}
	for _, f := range l.close {
		f.Close() // a second time (spawn, then begin) is harmless
	}
}

// say hands a word to the loop; after the loop ended, nobody listens.
func (s *service) say(w readyWord) {
	select {
	case s.readyC <- w:
	case <-s.done:
	}
}

// awaitNewline is s6's notification-fd: the first newline on the pipe is
// the word. The daemon's end is closed after it (or when the run ends,
// which unblocks the read).
func (s *service) awaitNewline(r *os.File, run int) {
	defer r.Close()
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			s.say(readyWord{run: run})
			return
		}
		if err != nil {
			return // closed without a newline: ready_timeout decides
		}
	}
}

// endReadiness drops the current run's fd:N pipe, if it still waits.
func (s *service) endReadiness() {
	if s.readyPipe != nil {
		s.readyPipe.Close()
		s.readyPipe = nil
	}
}

// watchLog stands in for Drain until a line matches l.match: it reads the
// pipe, matches each whole line and writes them to the sink (a line longer
// than its 64 KiB buffer is matched by its start). Once a line of
// either stream matched, it hands the pipe to Drain, so capture after
// readiness (and of every service without log:REGEX) is Drain's own, with
// its splicing.
func (s *service) watchLog(sink *logsink.Sink, r *os.File, wg *sync.WaitGroup, l *launch) {
	defer wg.Done()
	defer r.Close()
	buf := make([]byte, 0, 64<<10)
	for !l.found.Load() {
		if len(buf) == cap(buf) { // a line longer than the buffer: match its start, write it
			l.check(s, buf)
			sink.Write(buf)
			buf = buf[:0]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		// Whole lines are matched one by one and written at once.
		if end := bytes.LastIndexByte(buf, '\n'); end >= 0 {
			for rest := buf[:end+1]; len(rest) > 0 && !l.found.Load(); {
				i := bytes.IndexByte(rest, '\n')
				l.check(s, rest[:i])
				rest = rest[i+1:]
			}
			sink.Write(buf[:end+1])
			buf = buf[:copy(buf, buf[end+1:])]
		}
		if err != nil {
			if len(buf) > 0 {
				sink.Write(buf)
			}
			return
		}
	}
	if len(buf) > 0 {
		sink.Write(buf) // a line's start: Drain writes its end
	}
	sink.Drain(r)
}

// check matches one line; the first match of the run is the word.
func (l *launch) check(s *service, line []byte) {
	if l.match.Match(line) && l.found.CompareAndSwap(false, true) {
		s.say(readyWord{run: l.run})
	}
}

// listenNotify opens the service's notification socket, once for the
// loop's lifetime: run/upkeep/notify/NAME, or, under a root too deep for
// sun_path, an abstract name unique to the root.
func (s *service) listenNotify() error {
	if s.nsock != nil {
		return nil
	}
	path := filepath.Join(s.d.runDir, "notify", s.name)
	sum := sha256.Sum256([]byte(s.d.root))
	sock, err := notify.Listen(path, "upkeep/"+hex.EncodeToString(sum[:8])+"/"+s.name)
	if err != nil {
		return err
	}
	s.nsock = sock
	go sock.Serve(func(d notify.Datagram) {
		s.notes.Add(1)
		s.mu.Lock()
		main := s.snap.Pid
		s.mu.Unlock()
		from := sender{pid: d.From.Pid}
		if from.pid != main { // the main process needs no look at /proc
			from = describe(d.From.Pid)
		}
		s.say(readyWord{note: &d, from: from})
	})
	return nil
}

func (s *service) closeNotify() {
	if s.nsock != nil {
		s.nsock.Close()
		s.nsock = nil
	}
}

// word hands what a run said to handle.
func (s *service) word(w readyWord) {
	if w.note == nil {
		s.handle(event{kind: evAnnounced, run: w.run})
		return
	}
	s.notes.Add(-1)
	s.handle(event{kind: evNotify, note: w.note, from: w.from})
}

// noteWait bounds takeNotes: a datagram in the socket reaches the loop
// within microseconds, unless the machine is starved.
const noteWait = 100 * time.Millisecond

// takeNotes handles, before the main process's exit, the datagrams it
// sent before exiting: those in the channel, those its reader holds, and
// those still in the socket. (Between the reader's read and its count
// there are a few instructions where a datagram is in neither; that one
// comes after the exit, as it can under systemd.)
func (s *service) takeNotes() {
	if s.nsock == nil {
		return
	}
	var deadline <-chan time.Time
	for {
		select {
		case w := <-s.readyC:
			s.word(w)
			continue
		default:
		}
		if s.notes.Load() == 0 && !s.nsock.Pending() {
			return
		}
		if deadline == nil {
			t := time.NewTimer(noteWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case w := <-s.readyC:
			s.word(w)
		case <-deadline:
			return
		}
	}
}

// describe reads what identifies pid as a service's process.
func describe(pid int) sender {
	f := sender{pid: pid}
	f.pgid, f.sid, _ = proc.GroupAndSession(pid)
	f.cgroup, _ = proc.CgroupOf(pid)
	return f
}

// owns reports whether a process so described is this service's current
// run's: in its cgroup, else its process group or session (services start
// as session leaders), or the main process itself — the same rule as
// Daemon.Owner, applied on the loop to its own current values.
func (s *service) owns(f sender) bool {
	if s.main != nil && f.pid == s.main.Pid {
		return true
	}
	if s.cg != nil && f.cgroup != "" {
		return f.cgroup == s.cg.Path || strings.HasPrefix(f.cgroup, s.cg.Path+"/")
	}
	return s.pgid > 1 && (f.pgid == s.pgid || f.sid == s.pgid)
}

// readyDetail is what `status` says while a run has not yet announced.
func readyDetail(r spec.Readiness) string {
	switch r.Kind {
	case spec.ReadyNotify:
		return "waiting for READY=1"
	case spec.ReadyFD:
		return fmt.Sprintf("waiting for a newline on fd %d", r.FD)
	case spec.ReadyLog:
		return "waiting for a log line matching " + strconv.Quote(r.Pattern)
	}
	return ""
}

// follow makes pid the main process (MAINPID=), once it is proven to be
// the service's: a forking service's real daemon.
func (s *service) follow(pid int) error {
	if s.main != nil && pid == s.main.Pid {
		return nil
	}
	if !s.owns(describe(pid)) {
		return fmt.Errorf("MAINPID=%d is not a process of this service", pid)
	}
	st, err := proc.StartTime(pid)
	if err != nil {
		return fmt.Errorf("MAINPID=%d: %w", pid, err)
	}
	p, err := s.d.reaper.Watch(pid, st)
	if err != nil {
		return fmt.Errorf("MAINPID=%d: %w", pid, err)
	}
	s.main, s.mainDone = p, p.Done()
	s.d.rememberPid(s.name, proc.Record{Pid: p.Pid, StartTime: p.StartTime, Pgid: s.pgid})
	return nil
}

// armWatchdog (re)starts the watchdog: WATCHDOG=1 must come within it.
func (s *service) armWatchdog() {
	s.stopWatchdog()
	if w := s.spec.Watchdog.D(); w > 0 {
		s.wd = time.NewTimer(w)
		s.wdC = s.wd.C
	}
}

func (s *service) stopWatchdog() {
	if s.wd != nil {
		s.wd.Stop()
		s.wd, s.wdC = nil, nil
	}
}

// extra is the descriptors from 3 on for the spawn, if any.
func (l *launch) extra() []*os.File {
	if l == nil {
		return nil
	}
	return l.files
}
