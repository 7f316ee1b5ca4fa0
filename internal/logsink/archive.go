package logsink

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/crash"
	"upkeep/internal/spec"
)

// gzipSlots bounds the compressions running at once across all sinks: at
// midnight a hundred services rotate together, and each gzip writer holds
// about a megabyte.
var gzipSlots = make(chan struct{}, 2)

// archive owns the rotated files of one log: their names (app.log.1,
// app.log.2.gz, … or dateext names, as logrotate makes them), their
// compression and their retention. The sink's write path calls rotate,
// which only renames; the rest runs on a worker goroutine that exists only
// while there is work.
type archive struct {
	dir, base string
	cfg       spec.Log
	report    func(Event)
	dated     *regexp.Regexp // dateext: what follows base in a rotated name

	// mu orders the renames of the write path (rotate) and of the
	// worker (compression done, retention); both hold it for a few
	// syscalls only.
	mu sync.Mutex
	// top is the highest index that may exist (-1: not known yet), so
	// that rotate 1000 shifts the files there are, not a thousand names.
	top int
	seq int // of discarded files' names

	wmu      sync.Mutex
	idle     *sync.Cond
	pending  bool
	running  bool
	tmpStale bool // temp files found at start are an earlier daemon's
}

func newArchive(path string, cfg spec.Log, report func(Event)) *archive {
	a := &archive{dir: filepath.Dir(path), base: filepath.Base(path), cfg: cfg, report: report, tmpStale: true, top: -1}
	a.idle = sync.NewCond(&a.wmu)
	if cfg.DateExt {
		a.dated = regexp.MustCompile("^" + dateRE(cfg.DateFormatOf()) + `(\.gz)?$`)
	}
	return a
}

func (a *archive) num(i int) string { return filepath.Join(a.dir, a.base+"."+strconv.Itoa(i)) }

// rotate renames the live file at path to its first rotated name, after
// shifting the older ones the way logrotate does (remove .N, .N-1 → .N, …,
// .1 → .2), and returns that name; "" when rotate = 0 discards it. With
// copy (copytruncate), the file is copied to that name and truncated in
// place instead.
func (a *archive) rotate(now time.Time, path string, copy bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	move := os.Rename
	if copy {
		move = copyTruncate
	}
	if a.cfg.Rotate == 0 {
		var err error
		if copy {
			err = truncate(path)
		} else {
			_, err = a.discard(path)
		}
		if err != nil {
			return "", fmt.Errorf("rotate %s: %w", path, err)
		}
		return "", nil
	}
	if a.cfg.DateExt {
		t := now
		if a.cfg.DateYesterday {
			t = t.AddDate(0, 0, -1)
		}
		to := filepath.Join(a.dir, a.base+strftime(a.cfg.DateFormatOf(), t))
		if exists(to) || exists(to+".gz") {
			return "", fmt.Errorf("rotate %s: %s: %w", path, filepath.Base(to), ErrExists)
		}
		if err := move(path, to); err != nil {
			return "", fmt.Errorf("rotate %s: %w", path, err)
		}
		return to, nil
	}
	n := a.cfg.Rotate
	if n < 0 {
		n = 1
		for exists(a.num(n)) || exists(a.num(n)+".gz") {
			n++
		}
	}
	from := n - 1
	if a.top >= 0 && a.top < from {
		from = a.top
	} else if a.cfg.Rotate > 0 {
		a.discard(a.num(n))
		a.discard(a.num(n) + ".gz")
	}
	for i := from; i >= 1; i-- {
		os.Rename(a.num(i), a.num(i+1))
		os.Rename(a.num(i)+".gz", a.num(i+1)+".gz")
	}
	a.top = from + 1
	to := a.num(1)
	if err := move(path, to); err != nil {
		return "", fmt.Errorf("rotate %s: %w", path, err)
	}
	crash.Point("log-rotated")
	return to, nil
}

// discard takes a file out of the log by renaming it to a hidden name the
// worker removes later (the next sweep, if not the caller): unlinking a
// large file frees its page cache, which takes milliseconds that the write
// path, holding mu, must not spend. It returns the hidden name. Called with
// mu held.
func (a *archive) discard(p string) (string, error) {
	a.seq++
	to := filepath.Join(a.dir, "."+a.base+".drop"+strconv.Itoa(a.seq))
	err := os.Rename(p, to)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", os.Remove(p)
	}
	return to, err
}

// idle runs f on a thread of its own at nice 19: gzip and unlinking large
// files take a small share of a busy CPU, never competing as equals with
// the services or with their output. Not SCHED_IDLE: that gets almost
// nothing while the cores are busy, and here a busy host is exactly when
// retention must keep up (a flood on both cores starved the removal of old
// files until a tmpfs filled), and a SIGKILLed daemon whose idle thread
// waits for a CPU keeps its descriptors, the host lock among them, until
// that thread runs. The thread is never unlocked, so it ends with its
// goroutine and its priority is never lent to other goroutines. f must not
// take mu: a thread that may wait for a CPU must not hold what the write
// path waits for.
func idle(f func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		f()
		close(done)
	}()
	<-done
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// kick has the worker look at the rotated files (compress, remove), now or
// right after its current pass.
func (a *archive) kick() {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.pending = true
	if !a.running {
		a.running = true
		go a.work()
	}
}

func (a *archive) work() {
	for {
		a.wmu.Lock()
		if !a.pending {
			a.running = false
			a.idle.Broadcast()
			a.wmu.Unlock()
			return
		}
		a.pending = false
		a.wmu.Unlock()
		a.sweep()
	}
}

func (a *archive) wait() {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	for a.running || a.pending {
		a.idle.Wait()
	}
}

// rotated is one rotated file.
type rotated struct {
	path  string
	index int    // numbered: 1 is the newest
	date  string // dateext: the date part, sorted as text like logrotate's glob
	gz    bool
	mod   time.Time
	id    fileID
}

// list returns the rotated files, newest first, and the worker's temp and
// discarded files; it learns top on the way. Called with mu held.
func (a *archive) list() (out []rotated, tmps, dropped []string) {
	all, err := listDir(a.dir)
	if err != nil {
		a.top = -1
		return nil, nil, nil
	}
	// Only names that begin with ".base." or "base" can be this log's: look
	// at those two runs of the sorted listing, not the whole directory.
	hidden := withPrefix(all, "."+a.base+".")
	entries := append(hidden[:len(hidden):len(hidden)], withPrefix(all, a.base)...)
	for k, e := range entries {
		name := e.Name()
		if k >= len(hidden) && strings.HasPrefix(name, "."+a.base+".") {
			continue // in both runs (a base that begins with a dot): seen already
		}
		if strings.HasPrefix(name, "."+a.base+".") && strings.HasSuffix(name, ".gz.tmp") {
			tmps = append(tmps, filepath.Join(a.dir, name))
			continue
		}
		if strings.HasPrefix(name, "."+a.base+".drop") {
			dropped = append(dropped, filepath.Join(a.dir, name))
			continue
		}
		r, ok := a.parse(name)
		if !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		r.mod, r.id = fi.ModTime(), idOf(fi)
		out = append(out, r)
	}
	a.top = 0
	for _, r := range out {
		a.top = max(a.top, r.index)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].date != out[j].date {
			return out[i].date > out[j].date
		}
		if out[i].index != out[j].index {
			return out[i].index < out[j].index
		}
		return out[i].gz // a compressed twin first
	})
	return out, tmps, dropped
}

// parse tells whether name is one of the log's rotated files (app.log.3,
// app.log.3.gz, app.log-20261124.gz, …), and which.
func (a *archive) parse(name string) (rotated, bool) {
	rest, ok := strings.CutPrefix(name, a.base)
	if !ok || rest == "" {
		return rotated{}, false
	}
	r := rotated{path: filepath.Join(a.dir, name), gz: strings.HasSuffix(rest, ".gz")}
	if a.dated != nil {
		if !a.dated.MatchString(rest) {
			return rotated{}, false
		}
		r.date = strings.TrimSuffix(rest, ".gz")
		return r, true
	}
	i, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSuffix(rest, ".gz"), "."))
	if err != nil || i < 1 || !strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, ".+") || strings.HasPrefix(rest, ".0") {
		return rotated{}, false
	}
	r.index = i
	return r, true
}

// sweep removes what retention says (beyond rotate N, older than maxage),
// then compresses the rotated files that should be (all but the newest
// with delaycompress), one at a time, oldest first.
func (a *archive) sweep() {
	a.mu.Lock()
	files, tmps, dropped := a.list()
	var gone []string
	if a.tmpStale {
		// The worker is the only writer of temp files and it is here:
		// the ones present now are an earlier daemon's.
		gone = append(gone, tmps...)
		a.tmpStale = false
	}
	var keep []rotated
	cutoff := time.Now().AddDate(0, 0, -a.cfg.MaxAge)
	seen := map[string]bool{}
	for _, r := range files {
		key := strings.TrimSuffix(r.path, ".gz")
		if !r.gz && seen[key] {
			// A compressed twin exists: its compression finished but
			// the daemon stopped before removing the original.
			if to, err := a.discard(r.path); err == nil {
				gone = append(gone, to)
			}
			continue
		}
		seen[key] = true
		n := len(seen)
		if a.dated == nil {
			n = r.index
		}
		if (a.cfg.Rotate >= 0 && n > a.cfg.Rotate) || (a.cfg.MaxAge > 0 && r.mod.Before(cutoff)) {
			if to, err := a.discard(r.path); err == nil {
				gone = append(gone, to)
			}
			continue
		}
		keep = append(keep, r)
	}
	a.mu.Unlock()
	gone = append(gone, dropped...)
	if len(gone) > 0 {
		idle(func() { removeAll(gone) })
	}
	defer func() {
		// Under mu, so that no rotation renames a file between the
		// listing and the look at the live file.
		a.mu.Lock()
		files, _, _ := a.list()
		a.pruneIndexes(files)
		a.mu.Unlock()
	}()
	if !a.cfg.Compress {
		return
	}
	for i := len(keep) - 1; i >= 0; i-- {
		r := keep[i]
		if r.gz || (a.cfg.DelayCompress && i == 0 && (a.dated != nil || r.index == 1)) {
			continue
		}
		if err := a.compress(r); err != nil {
			a.report(Event{Kind: "archive-error", Err: err})
		}
	}
}

// compress writes r as gzip next to it, then, under mu, renames the result
// to wherever r is by now (a rotation may have shifted it) plus ".gz", and
// removes r. The gzip itself runs on an idle thread: it is the one thing
// here that can eat a core, and a service's output must not wait for it.
func (a *archive) compress(r rotated) error {
	gzipSlots <- struct{}{}
	defer func() { <-gzipSlots }()
	f, err := os.Open(r.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // shifted or removed meanwhile; the next pass sees it
		}
		return fmt.Errorf("compress %s: %w", r.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || idOf(fi) != r.id {
		return nil
	}
	crash.Point("log-compress")
	tmp, err := os.CreateTemp(a.dir, "."+a.base+".*.gz.tmp")
	if err != nil {
		return fmt.Errorf("compress %s: %w", r.path, err)
	}
	comment := ""
	if n := newestIndex(indexDir(a.dir), a.base, r.id.ino); n != "" {
		comment = gzComment + n // the index follows the file into its .gz (index.go)
	}
	idle(func() { err = gzipTo(tmp, f, fi, comment) })
	crash.Point("log-compressing") // the temp file written, neither synced nor renamed
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// As gzip(1) does: the archive keeps the file's time and mode,
		// which `upkeep logs --since` and maxage go by.
		os.Chtimes(tmp.Name(), fi.ModTime(), fi.ModTime())
		os.Chmod(tmp.Name(), fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok { // a service's own file keeps its owner
			os.Lchown(tmp.Name(), int(st.Uid), int(st.Gid))
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("compress %s: %w", r.path, err)
	}
	a.mu.Lock()
	now := a.whereIs(r)
	if now == "" {
		now = tmp.Name() // removed by retention meanwhile
	} else if err = os.Rename(tmp.Name(), now+".gz"); err != nil {
		err = fmt.Errorf("compress %s: %w", now, err)
		now = tmp.Name()
	}
	gone, derr := a.discard(now)
	a.mu.Unlock()
	if derr == nil {
		idle(func() { os.Remove(gone) })
	}
	return err
}

// whereIs finds where the plain rotated file r is now: a dateext name never
// changes, a numbered one only moves up (.2 → .3), one step per rotation.
// Called with mu held.
func (a *archive) whereIs(r rotated) string {
	is := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && idOf(fi) == r.id
	}
	if a.dated != nil {
		if is(r.path) {
			return r.path
		}
		return ""
	}
	for i := r.index; ; i++ {
		p := a.num(i)
		if is(p) {
			return p
		}
		if !exists(p) && !exists(p+".gz") {
			return ""
		}
	}
}

func gzipTo(w io.Writer, r io.Reader, fi fs.FileInfo, comment string) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	zw := gzip.NewWriter(bw)
	zw.ModTime = fi.ModTime()
	zw.Comment = comment
	if _, err := io.Copy(zw, r); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// strftime formats t with the specifiers logrotate's dateformat allows.
func strftime(f string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'V':
			_, w := t.ISOWeek()
			fmt.Fprintf(&b, "%02d", w)
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

// dateRE is a regular expression matching what strftime(f, …) makes.
func dateRE(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteString(regexp.QuoteMeta(f[i : i+1]))
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			b.WriteString(`\d{4}`)
		case 'm', 'd', 'H', 'M', 'S', 'V':
			b.WriteString(`\d{2}`)
		case 's':
			b.WriteString(`\d+`)
		default:
			b.WriteString(regexp.QuoteMeta(f[i-1 : i+1]))
		}
	}
	return b.String()
}

// periodStart is the start of the period (hour, day, week from Sunday as
// logrotate's weekly, month, year) that t is in.
func periodStart(when string, t time.Time) time.Time {
	y, m, d := t.Date()
	loc := t.Location()
	switch when {
	case spec.Hourly:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, loc)
	case spec.Weekly:
		return time.Date(y, m, d-int(t.Weekday()), 0, 0, 0, 0, loc)
	case spec.Monthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case spec.Yearly:
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// nextBoundary is the start of the period after the one t is in.
func nextBoundary(when string, t time.Time) time.Time {
	p := periodStart(when, t)
	y, m, d := p.Date()
	loc := p.Location()
	switch when {
	case spec.Hourly:
		return time.Date(y, m, d, p.Hour()+1, 0, 0, 0, loc)
	case spec.Weekly:
		return time.Date(y, m, d+7, 0, 0, 0, 0, loc)
	case spec.Monthly:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	case spec.Yearly:
		return time.Date(y+1, 1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}
