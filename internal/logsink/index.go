package logsink

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The time index. The log files stay plain lines (the guide's promise, and
// what logrotate, grep and zcat expect), so the capture time of each line
// lives beside them: for each log file, a file of marks under
// <dir>/.upkeep/, named <base>.<inode>.<birth>.idx. A mark is 16 bytes,
// the capture time (Unix nanoseconds) and the file offset where the bytes
// written at that time begin; a line's time is that of the last mark at or
// before its first byte. The sink writes a mark before a write (or splice)
// only when markEvery has passed since the last one, so a busy service
// costs one 16-byte write per millisecond at most, and a flood one per
// splice of up to a megabyte: times are exact to markEvery.
//
// The index follows its file by the file's identity, not its name: a
// rotation renames the log (.1, .2, dateext), which keeps its inode, so the
// index needs no renaming. Compression makes a new file; the archive writes
// the index's name into the gzip header's comment (gzip(1) and zcat ignore
// it). The birth (the first mark's time) tells an index from that of an
// earlier file whose inode the kernel gave again: of the indexes for one
// inode, an existing plain file's is the newest. Retention removes the
// indexes no file names any more.

// markEvery is the finest a line's time is known to: a write within it of
// the last mark gets that mark's time.
const markEvery = time.Millisecond

// markSize is one mark's size on disk.
const markSize = 16

// indexDir is where the indexes of the logs in dir live.
func indexDir(dir string) string { return filepath.Join(dir, ".upkeep") }

// gzComment prefixes the index's name in a compressed file's gzip header.
const gzComment = "upkeep-index:"

// mark is one entry of an index: bytes from Off on were captured at Time.
type mark struct {
	Time time.Time
	Off  int64
}

// index is what a sink keeps of its live file's index; guarded by Sink.mu.
type index struct {
	idx     *os.File  // nil: not opened yet for this file
	idxLast time.Time // the last mark written
	idxOff  int64     // the offset of the last mark written
	idxFail bool      // opening failed for this file: no times, output unaffected
}

// mark records that the bytes from off on are written now. A failure costs
// the times of this file's lines, never its output.
func (s *Sink) mark(now time.Time, off int64) {
	if s.idxFail {
		return
	}
	if now.IsZero() {
		now = s.now()
	}
	if s.idx != nil && now.Sub(s.idxLast) < markEvery && off >= s.idxOff {
		return
	}
	if s.idx == nil {
		s.openIndex(now, off)
		if s.idx == nil {
			return
		}
	}
	var b [markSize]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	if _, err := s.idx.Write(b[:]); err != nil {
		s.closeIndex()
		s.idxFail = true
		return
	}
	s.idxLast, s.idxOff = now, off
}

// openIndex opens the live file's index for appending: the newest one of
// its inode when the file has bytes already (a daemon restarted), a new one
// when it is empty.
func (s *Sink) openIndex(now time.Time, off int64) {
	dir := indexDir(filepath.Dir(s.path))
	base := filepath.Base(s.path)
	name := ""
	if off > 0 {
		name = newestIndex(dir, base, s.id.ino)
	}
	flag := os.O_WRONLY | os.O_APPEND
	if name == "" {
		name = base + "." + strconv.FormatUint(s.id.ino, 10) + "." + strconv.FormatInt(now.UnixNano(), 10) + ".idx"
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(filepath.Join(dir, name), flag, 0o640)
	if err != nil && os.IsNotExist(err) {
		if os.MkdirAll(dir, 0o755) == nil {
			f, err = os.OpenFile(filepath.Join(dir, name), flag, 0o640)
		}
	}
	if err != nil {
		s.idxFail = true
		return
	}
	s.idx, s.idxLast, s.idxOff = f, time.Time{}, 0
}

// closeIndex closes the index of the file the sink is done with.
func (s *Sink) closeIndex() {
	if s.idx != nil {
		s.idx.Close()
	}
	s.idx, s.idxLast, s.idxOff, s.idxFail = nil, time.Time{}, 0, false
}

// indexName is an index file's name taken apart.
type indexName struct {
	name  string
	ino   uint64
	birth int64
}

// indexesOf lists the indexes of the log base in dir.
func indexesOf(dir, base string) []indexName {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []indexName
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		rest, ok = strings.CutSuffix(rest, ".idx")
		if !ok {
			continue
		}
		a, b, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		ino, err1 := strconv.ParseUint(a, 10, 64)
		birth, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, indexName{e.Name(), ino, birth})
	}
	return out
}

// newestIndex is the name of the newest index of inode ino, or "".
func newestIndex(dir, base string, ino uint64) string {
	best := indexName{birth: -1 << 63}
	for _, n := range indexesOf(dir, base) {
		if n.ino == ino && n.birth >= best.birth {
			best = n
		}
	}
	return best.name
}

// readMarks reads an index, bounded by maxMarks (a corrupt or foreign file
// must not take the reader's memory); marks out of offset order, which a
// sane index never has, end it.
func readMarks(path string) []mark {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return appendMarks(nil, f)
}

const maxMarks = 1 << 24 // 256 MB of index: far beyond any one file's

func appendMarks(ms []mark, r io.Reader) []mark {
	br := bufio.NewReaderSize(r, 64<<10)
	var b [markSize]byte
	for len(ms) < maxMarks {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return ms
		}
		m := mark{time.Unix(0, int64(binary.LittleEndian.Uint64(b[:8]))), int64(binary.LittleEndian.Uint64(b[8:]))}
		if m.Off < 0 || len(ms) > 0 && m.Off < ms[len(ms)-1].Off {
			return ms
		}
		ms = append(ms, m)
	}
	return ms
}

// marksOf loads the marks of one file of the log at logPath: a plain file
// by its inode, a compressed one by the name in its header.
func marksOf(logPath string, p *piece) []mark {
	dir := indexDir(filepath.Dir(logPath))
	base := filepath.Base(logPath)
	name := ""
	if p.gz {
		name = gzIndexName(p.f, base)
	} else {
		name = newestIndex(dir, base, p.id.ino)
	}
	if name == "" {
		return nil
	}
	return readMarks(filepath.Join(dir, name))
}

// gzIndexName reads the index's name from a compressed file's header; ""
// when it has none or one that is not an index of base (a file from
// elsewhere must not make the reader open another path).
func gzIndexName(f *os.File, base string) string {
	zr, err := gzip.NewReader(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return ""
	}
	defer zr.Close()
	name, ok := strings.CutPrefix(zr.Header.Comment, gzComment)
	if !ok || strings.ContainsAny(name, "/\x00") || !strings.HasPrefix(name, base+".") || !strings.HasSuffix(name, ".idx") {
		return ""
	}
	return name
}

// timeAt is the time of the byte at off: the last mark at or before it.
// ok is false when no mark covers it (no index, or bytes from before the
// index began).
func timeAt(ms []mark, off int64) (time.Time, bool) {
	i := sort.Search(len(ms), func(i int) bool { return ms[i].Off > off })
	if i == 0 {
		return time.Time{}, false
	}
	return ms[i-1].Time, true
}

// pruneIndexes removes the indexes of base that no file of the log names
// any more: the live file's and each plain rotated file's (by inode, the
// newest), each compressed one's (by its header). Called by the archive's
// worker after retention. An index made after the listing is not in it,
// so a live file's new index is never removed.
func (a *archive) pruneIndexes(files []rotated) {
	dir := indexDir(a.dir)
	idx := indexesOf(dir, a.base)
	if len(idx) == 0 {
		return
	}
	keep := map[string]bool{}
	inos := []uint64{}
	if fi, err := os.Stat(filepath.Join(a.dir, a.base)); err == nil {
		inos = append(inos, idOf(fi).ino)
	}
	for _, r := range files {
		if !r.gz {
			inos = append(inos, r.id.ino)
			continue
		}
		if f, err := os.Open(r.path); err == nil {
			if n := gzIndexName(f, a.base); n != "" {
				keep[n] = true
			}
			f.Close()
		}
	}
	for _, ino := range inos {
		if n := newestIndex(dir, a.base, ino); n != "" {
			keep[n] = true
		}
	}
	for _, n := range idx {
		if !keep[n.name] {
			os.Remove(filepath.Join(dir, n.name))
		}
	}
}
