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
	"path/filepath"
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
	// marks is the file's time index, read when first needed.
	marks  []mark
	marked bool
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

// Line is one line of a log as read back, without its newline.
type Line struct {
	// Time is when the daemon captured the line, from the log's time
	// index (index.go), when Exact; otherwise the time the line starts
	// with, if any (see lineTime), or else the file's modification
	// time: the latest the line can have been written.
	Time  time.Time
	Exact bool
	Text  []byte
}

// Tail calls line with the last n lines of the log at path (n < 0: all of
// them), reaching back into its rotated files, compressed ones too, when
// the live file holds fewer. A non-zero since leaves out the files last
// written before it and the lines whose time (Line.Time) is before it.
// The Follower it returns continues right after the last line of the live
// file that Tail saw.
func Tail(path string, cfg spec.Log, n int, since time.Time, line func([]byte)) (*Follower, error) {
	return TailLines(path, cfg, n, since, nil, func(l Line) { line(l.Text) })
}

// TailLines is Tail with each line's time; keep, when not nil, chooses
// the lines that count (a --grep, an --until) among the last n.
func TailLines(path string, cfg spec.Log, n int, since time.Time, keep func(Line) bool, line func(Line)) (*Follower, error) {
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
		fl.marks = p.loadMarks(path)
		fl.fmod = p.mod
	}
	defer func() {
		for _, p := range pieces {
			if p.f != fl.f {
				p.f.Close()
			}
		}
	}()
	ok := func(l Line) bool {
		if !since.IsZero() && l.Time.Before(since) {
			return false
		}
		return keep == nil || keep(l)
	}
	if n < 0 {
		for i := len(pieces) - 1; i >= 0; i-- {
			p := &pieces[i]
			if !since.IsZero() && p.mod.Before(since) {
				continue
			}
			if err := eachLine(path, p, func(l Line) {
				if ok(l) {
					line(l)
				}
			}); err != nil {
				return fl, err
			}
		}
		return fl, nil
	}
	// Newest first, as many lines from each file as are still wanted.
	var chunks [][]Line
	need := n
	if fl.rest > fl.off {
		need-- // the line held back is one of the n
	}
	for i := range pieces {
		p := &pieces[i]
		if need <= 0 || (!since.IsZero() && p.mod.Before(since)) {
			break
		}
		ls, err := lastLines(path, p, need, ok)
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

// loadMarks reads p's index once.
func (p *piece) loadMarks(logPath string) []mark {
	if !p.marked {
		p.marks, p.marked = marksOf(logPath, p), true
	}
	return p.marks
}

// stamp makes the Line for the line l that starts at off of a file with
// the marks ms, last written at mod.
func stamp(ms []mark, mod time.Time, off int64, l []byte) Line {
	if t, ok := timeAt(ms, off); ok {
		return Line{Time: t, Exact: true, Text: l}
	}
	if t, ok := lineTime(l); ok {
		return Line{Time: t, Text: l}
	}
	if len(ms) > 0 && ms[0].Time.Before(mod) {
		mod = ms[0].Time // before the index began: no later than its first mark
	}
	return Line{Time: mod, Text: l}
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
func lastLines(logPath string, p *piece, need int, keep func(Line) bool) ([]Line, error) {
	if p.gz {
		ring := make([]Line, 0, min(need, 4096))
		start := 0
		err := eachLine(logPath, p, func(l Line) {
			if !keep(l) {
				return
			}
			l.Text = bytes.Clone(l.Text)
			if len(ring) < need {
				ring = append(ring, l)
				return
			}
			ring[start] = l
			start = (start + 1) % need
		})
		return append(ring[start:], ring[:start]...), err
	}
	ms := p.loadMarks(logPath)
	const block = 64 << 10
	var out []Line // newest first
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
			if l := stamp(ms, p.mod, start+int64(i)+1, buf[i+1:]); keep(l) {
				out = append(out, l)
			}
			buf = buf[:i]
		}
		pos = start
	}
	if pos == 0 && len(out) < need && tail != nil {
		if l := stamp(ms, p.mod, 0, tail); keep(l) {
			out = append(out, l) // the file's first line
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// eachLine calls line for every line of p, without its newline (a last
// line without one too). The live file is read up to the size it had when
// opened: what comes later is the Follower's. The Text is valid only
// during the call.
func eachLine(logPath string, p *piece, line func(Line)) error {
	ms := p.loadMarks(logPath)
	var r io.Reader = io.NewSectionReader(p.f, 0, p.size)
	if p.gz {
		zr, err := gzip.NewReader(bufio.NewReaderSize(io.NewSectionReader(p.f, 0, p.size), 64<<10))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
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
			line(stamp(ms, p.mod, off, bytes.TrimSuffix(l, []byte("\n"))))
			off += int64(len(l))
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
	pstart  int64 // the offset partial starts at

	marks []mark    // f's index as far as read
	fmod  time.Time // f's time when Tail opened it
	idx   *os.File  // f's index, read on as it grows
	idxAt int64
}

// Rest calls line with the live file's last line as Tail saw it, when it
// did not end with a newline yet, for a caller that does not follow: Tail
// leaves such a line to the Follower, which prints it once it is whole.
func (fl *Follower) Rest(line func([]byte)) error {
	return fl.RestLines(func(l Line) { line(l.Text) })
}

// RestLines is Rest with the line's time.
func (fl *Follower) RestLines(line func(Line)) error {
	if fl.f == nil || fl.rest <= fl.off {
		return nil
	}
	b := make([]byte, fl.rest-fl.off)
	n, err := fl.f.ReadAt(b, fl.off)
	if n > 0 {
		line(stamp(fl.marks, fl.fmod, fl.off, b[:n]))
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
	fl.closeIndex()
}

func (fl *Follower) closeIndex() {
	if fl.idx != nil {
		fl.idx.Close()
	}
	fl.idx, fl.idxAt = nil, 0
}

// Follow calls line with every line appended to the log until ctx ends.
// When the file is rotated it first reads the old one to its end (the
// sink writes nothing to a file after renaming it), then the files
// rotated after it, if any came and went meanwhile, then the new live
// file from its start: no line written during a rotation is missed.
func (fl *Follower) Follow(ctx context.Context, line func([]byte)) error {
	return fl.FollowLines(ctx, func(l Line) { line(l.Text) })
}

// FollowLines is Follow with each line's time.
func (fl *Follower) FollowLines(ctx context.Context, line func(Line)) error {
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

// moreMarks reads what the sink has added to f's index: it writes a
// mark before the bytes it stands for, so the marks read after the bytes
// cover them.
func (fl *Follower) moreMarks() {
	if fl.idx == nil {
		dir, base := indexDir(filepath.Dir(fl.path)), filepath.Base(fl.path)
		name := newestIndex(dir, base, fl.id.ino)
		if name == "" {
			return
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return
		}
		fl.idx, fl.idxAt = f, int64(len(fl.marks))*markSize
	}
	before := len(fl.marks)
	fl.marks = appendMarks(fl.marks, io.NewSectionReader(fl.idx, fl.idxAt, 1<<62))
	fl.idxAt += int64(len(fl.marks)-before) * markSize
}

// read hands over the complete lines from the offset to the end of the
// file, keeping a last incomplete one for later.
func (fl *Follower) read(buf []byte, line func(Line)) (bool, error) {
	if fl.f == nil {
		return false, nil
	}
	got := false
	for {
		n, err := fl.f.ReadAt(buf, fl.off)
		if n > 0 {
			fl.moreMarks()
		}
		at := fl.off
		fl.off += int64(n)
		data := buf[:n]
		now := time.Now()
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if len(fl.partial) == 0 {
					fl.pstart = at
				}
				fl.partial = append(fl.partial, data...)
				break
			}
			if len(fl.partial) > 0 {
				line(stamp(fl.marks, now, fl.pstart, append(fl.partial, data[:i]...)))
				fl.partial = fl.partial[:0]
			} else {
				line(stamp(fl.marks, now, at, data[:i]))
			}
			data = data[i+1:]
			at += int64(i + 1)
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

func (fl *Follower) flush(line func(Line)) {
	if len(fl.partial) > 0 {
		line(stamp(fl.marks, time.Now(), fl.pstart, fl.partial))
		fl.partial = fl.partial[:0]
	}
}

// catchUp moves from the file just finished to the live one, reading
// whole the files rotated after it, if more than one rotation came
// between two looks. The file just finished is found by its identity, or,
// compressed meanwhile, by its time, which compression keeps; if it is
// gone altogether (retention), only the live file is left to go to.
func (fl *Follower) catchUp(line func(Line)) error {
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
		if err := eachLine(fl.path, &pieces[j], line); err != nil {
			return err
		}
		fl.id, fl.mod = pieces[j].id, pieces[j].mod
	}
	fl.marks = nil
	if first == 1 {
		fl.f, fl.id, fl.off, fl.mod = pieces[0].f, pieces[0].id, 0, time.Time{}
	}
	return nil
}
