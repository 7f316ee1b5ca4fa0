package logsink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"upkeep/internal/spec"
)

// Reading a log back needs no daemon: the files are the interface. A log
// is its rotated files, oldest first, then the live file; cfg says how
// rotated files are named (numbered or dateext).

// piece is one file of a log, opened: reading from the descriptor keeps
// working whatever renames or compresses the name meanwhile.
type piece struct {
	f    *os.File
	live bool
	size int64 // the live file: what is read of it before following
	gz   bool
	mod  time.Time
	id   fileID
}

// snapshot opens the files of the log at path, newest first (the live file
// first, when present). The names are another process's to change at any
// time, so the snapshot is taken again (a few times, then it makes do)
// until the live file and the listing are the same after the files are
// opened as before: no rotation happened in between.
func snapshot(path string, cfg spec.Log) ([]piece, error) {
	a := newArchive(path, cfg, nil)
	for try := 0; ; try++ {
		out, stable, err := snapshotOnce(a, path)
		if err != nil || stable || try == 50 {
			return out, err
		}
		for _, p := range out {
			p.f.Close()
		}
		time.Sleep(time.Millisecond)
	}
}

func snapshotOnce(a *archive, path string) ([]piece, bool, error) {
	var out []piece
	live, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	var liveID fileID
	if live != nil {
		fi, err := live.Stat()
		if err != nil {
			live.Close()
			return nil, false, err
		}
		liveID = idOf(fi)
		out = append(out, piece{f: live, live: true, size: fi.Size(), mod: fi.ModTime(), id: liveID})
	}
	files, _, _ := a.list()
	stable := true
	seen := map[string]bool{}
	for _, r := range files {
		key := strings.TrimSuffix(r.path, ".gz")
		if seen[key] {
			continue // a compressed twin is listed first
		}
		seen[key] = true
		f, err := os.Open(r.path)
		if err != nil {
			stable = false
			continue
		}
		fi, err := f.Stat()
		if err != nil || idOf(fi) != r.id {
			f.Close()
			stable = false
			continue
		}
		out = append(out, piece{f: f, size: fi.Size(), gz: r.gz, mod: fi.ModTime(), id: r.id})
	}
	again, _, _ := a.list()
	if len(again) != len(files) {
		stable = false
	} else {
		for i := range files {
			if again[i].path != files[i].path || again[i].id != files[i].id {
				stable = false
			}
		}
	}
	fi, err := os.Stat(path)
	if (err == nil) != (live != nil) || (err == nil && idOf(fi) != liveID) {
		stable = false
	}
	return out, stable, nil
}

// Tail calls line with the last n lines of the log at path (n < 0: all of
// them), reaching back into its rotated files, compressed ones too, when
// the live file holds fewer. A non-zero since leaves out the files last
// written before it and the lines that start with a time before it
// (RFC 3339, "2006-01-02 15:04:05", slog's time=… or {"time":…}); lines
// without a time are kept. The Follower it returns continues right after
// the last line of the live file that Tail saw.
func Tail(path string, cfg spec.Log, n int, since time.Time, line func([]byte)) (*Follower, error) {
	pieces, err := snapshot(path, cfg)
	if err != nil {
		return nil, err
	}
	fl := &Follower{path: path, cfg: cfg, Poll: 200 * time.Millisecond}
	if len(pieces) > 0 && pieces[0].live {
		// The live file may end inside a line that the daemon is
		// still writing (it splices a flood without looking at it):
		// that line is the Follower's, to print once it is whole, or
		// Rest's.
		p := &pieces[0]
		fl.rest = p.size
		p.size = lineEnd(p.f, p.size)
		fl.f, fl.off, fl.id = p.f, p.size, p.id
	}
	defer func() {
		for _, p := range pieces {
			if p.f != fl.f {
				p.f.Close()
			}
		}
	}()
	keep := func(l []byte) bool {
		if since.IsZero() {
			return true
		}
		t, ok := lineTime(l)
		return !ok || !t.Before(since)
	}
	if n < 0 {
		for i := len(pieces) - 1; i >= 0; i-- {
			p := pieces[i]
			if !since.IsZero() && p.mod.Before(since) {
				continue
			}
			if err := eachLine(p, func(l []byte) {
				if keep(l) {
					line(l)
				}
			}); err != nil {
				return fl, err
			}
		}
		return fl, nil
	}
	// Newest first, as many lines from each file as are still wanted.
	var chunks [][][]byte
	need := n
	if fl.rest > fl.off {
		need-- // the line held back is one of the n
	}
	for _, p := range pieces {
		if need <= 0 || (!since.IsZero() && p.mod.Before(since)) {
			break
		}
		ls, err := lastLines(p, need, keep)
		if err != nil {
			return fl, err
		}
		chunks = append(chunks, ls)
		need -= len(ls)
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		for _, l := range chunks[i] {
			line(l)
		}
	}
	return fl, nil
}

// lineEnd is where the last line of f that ends with a newline ends,
// looking back at most a megabyte from size; size when f ends with a
// newline, or when no newline is that close.
func lineEnd(f *os.File, size int64) int64 {
	buf := make([]byte, 64<<10)
	for end := size; end > 0 && size-end < 1<<20; {
		start := max(0, end-int64(len(buf)))
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF || int64(n) != end-start {
			return size
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	if size < 1<<20 {
		return 0 // one line, not ended yet
	}
	return size
}

// lastLines returns the last need lines of p that keep accepts, oldest
// first. A plain file is read backwards from its end, so `-n 10` of a
// large live file costs one block; a compressed one has to be read
// through, keeping the last lines in a ring.
func lastLines(p piece, need int, keep func([]byte) bool) ([][]byte, error) {
	if p.gz {
		ring := make([][]byte, 0, min(need, 4096))
		start := 0
		err := eachLine(p, func(l []byte) {
			if !keep(l) {
				return
			}
			l = bytes.Clone(l)
			if len(ring) < need {
				ring = append(ring, l)
				return
			}
			ring[start] = l
			start = (start + 1) % need
		})
		return append(ring[start:], ring[:start]...), err
	}
	const block = 64 << 10
	var out [][]byte // newest first
	pos := p.size
	if pos > 0 {
		last := make([]byte, 1)
		if _, err := p.f.ReadAt(last, pos-1); err != nil {
			return nil, err
		}
		if last[0] == '\n' {
			pos-- // the last line's end, not an empty line after it
		}
	}
	var tail []byte // the end of a line whose start is further back
	for pos > 0 && len(out) < need {
		start := max(0, pos-block)
		buf := make([]byte, pos-start, pos-start+int64(len(tail)))
		if _, err := p.f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(buf, tail...)
		tail = nil
		for len(out) < need {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				tail = buf
				break
			}
			if l := buf[i+1:]; keep(l) {
				out = append(out, l)
			}
			buf = buf[:i]
		}
		pos = start
	}
	if pos == 0 && len(out) < need && tail != nil && keep(tail) {
		out = append(out, tail) // the file's first line
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// eachLine calls line for every line of p, without its newline (a last
// line without one too). The live file is read up to the size it had when
// opened: what comes later is the Follower's.
func eachLine(p piece, line func([]byte)) error {
	var r io.Reader = io.NewSectionReader(p.f, 0, p.size)
	if p.gz {
		p.f.Seek(0, io.SeekStart)
		zr, err := gzip.NewReader(bufio.NewReaderSize(p.f, 64<<10))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		l, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: hand it whole.
			long := bytes.Clone(l)
			for err == bufio.ErrBufferFull {
				l, err = br.ReadSlice('\n')
				long = append(long, l...)
			}
			l = long
		}
		if len(l) > 0 {
			line(bytes.TrimSuffix(l, []byte("\n")))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lineTime reads the time a line starts with, if it does: RFC 3339 (as
// slog and most JSON loggers write it, bare or as time=… or {"time":…}),
// or "2006-01-02 15:04:05" and Go's log "2006/01/02 15:04:05" in local
// time, to the second.
func lineTime(l []byte) (time.Time, bool) {
	s := string(l[:min(len(l), 64)])
	s = strings.TrimLeft(s, "[ ")
	for _, p := range []string{`{"time":"`, `{"ts":"`, `{"timestamp":"`, `time="`, "time="} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if len(s) < 19 {
		return time.Time{}, false
	}
	if s[10] == 'T' {
		tok := s
		if i := strings.IndexAny(s, " \"]"); i >= 0 {
			tok = s[:i]
		}
		t, err := time.Parse(time.RFC3339Nano, tok)
		return t, err == nil
	}
	for _, layout := range []string{time.DateTime, "2006/01/02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s[:19], time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Follower prints what is appended to a log, across its rotations.
type Follower struct {
	path string
	cfg  spec.Log
	// Poll is how often it looks for more when there is none.
	Poll time.Duration

	f       *os.File
	off     int64
	rest    int64     // where the live file ended when Tail looked (Rest)
	id      fileID    // of f, or of the last rotated file read whole
	mod     time.Time // its time once read to the end (compression keeps it)
	partial []byte
}

// Rest calls line with the live file's last line as Tail saw it, when it
// did not end with a newline yet, for a caller that does not follow: Tail
// leaves such a line to the Follower, which prints it once it is whole.
func (fl *Follower) Rest(line func([]byte)) error {
	if fl.f == nil || fl.rest <= fl.off {
		return nil
	}
	b := make([]byte, fl.rest-fl.off)
	n, err := fl.f.ReadAt(b, fl.off)
	if n > 0 {
		line(b[:n])
	}
	if err == io.EOF {
		err = nil
	}
	return err
}

// Close releases the file the follower holds.
func (fl *Follower) Close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// Follow calls line with every line appended to the log until ctx ends.
// When the file is rotated it first reads the old one to its end (the
// sink writes nothing to a file after renaming it), then the files
// rotated after it, if any came and went meanwhile, then the new live
// file from its start: no line written during a rotation is missed.
func (fl *Follower) Follow(ctx context.Context, line func([]byte)) error {
	buf := make([]byte, 64<<10)
	for {
		got, err := fl.read(buf, line)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			fl.flush(line)
			return nil
		}
		fi, err := os.Stat(fl.path)
		switch {
		case err == nil && (fl.f == nil || idOf(fi) != fl.id):
			if _, err := fl.read(buf, line); err != nil {
				return err
			}
			fl.flush(line)
			if fl.f != nil {
				if fi, err := fl.f.Stat(); err == nil {
					fl.mod = fi.ModTime()
				}
			}
			if err := fl.catchUp(line); err != nil {
				return err
			}
			continue
		case err == nil:
			if cur, err := fl.f.Stat(); err == nil && cur.Size() < fl.off {
				fl.off = 0 // truncated in place (copytruncate)
			}
		}
		if got {
			continue
		}
		t := time.NewTimer(fl.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// read hands over the complete lines from the offset to the end of the
// file, keeping a last incomplete one for later.
func (fl *Follower) read(buf []byte, line func([]byte)) (bool, error) {
	if fl.f == nil {
		return false, nil
	}
	got := false
	for {
		n, err := fl.f.ReadAt(buf, fl.off)
		fl.off += int64(n)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				fl.partial = append(fl.partial, data...)
				break
			}
			if len(fl.partial) > 0 {
				line(append(fl.partial, data[:i]...))
				fl.partial = fl.partial[:0]
			} else {
				line(data[:i])
			}
			data = data[i+1:]
			got = true
		}
		if err == io.EOF || n == 0 {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func (fl *Follower) flush(line func([]byte)) {
	if len(fl.partial) > 0 {
		line(fl.partial)
		fl.partial = fl.partial[:0]
	}
}

// catchUp moves from the file just finished to the live one, reading
// whole the files rotated after it, if more than one rotation came
// between two looks. The file just finished is found by its identity, or,
// compressed meanwhile, by its time, which compression keeps; if it is
// gone altogether (retention), only the live file is left to go to.
func (fl *Follower) catchUp(line func([]byte)) error {
	pieces, err := snapshot(fl.path, fl.cfg)
	if err != nil {
		return err
	}
	fl.Close()
	defer func() {
		for _, p := range pieces {
			if p.f != fl.f {
				p.f.Close()
			}
		}
	}()
	first := 0 // the newest rotated file
	if len(pieces) > 0 && pieces[0].live {
		first = 1
	}
	at := -1
	for i := first; i < len(pieces) && at < 0; i++ {
		if p := pieces[i]; p.id == fl.id || (p.gz && !fl.mod.IsZero() && p.mod.Equal(fl.mod)) {
			at = i
		}
	}
	for j := at - 1; j >= first; j-- {
		if err := eachLine(pieces[j], line); err != nil {
			return err
		}
		fl.id, fl.mod = pieces[j].id, pieces[j].mod
	}
	if first == 1 {
		fl.f, fl.id, fl.off, fl.mod = pieces[0].f, pieces[0].id, 0, time.Time{}
	}
	return nil
}
