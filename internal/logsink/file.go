package logsink

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"upkeep/internal/spec"
)

// sizePoll is how often a File with a size criterion looks at the file's
// size: the daemon does not see the writes, so it looks, as logrotate run
// from cron does, only more often.
const sizePoll = 5 * time.Second

// Declared says how a File is rotated.
type Declared struct {
	// CopyTruncate copies the file and truncates it in place; otherwise
	// the file is renamed, a new empty one made in its place (with the
	// old one's mode and owner, as logrotate's create), and Reopen called.
	CopyTruncate bool
	// Reopen makes the service open the file again (a signal, a command);
	// it returns nil when nothing holds the file open (the service is not
	// running). It may take a while: it is called on a goroutine of the
	// File's, never under a lock that the caller's code might wait for.
	Reopen func() error
	// Within is the directory the file must stay inside, symbolic links
	// resolved (<root>/var/log). The daemon runs as root, and a service
	// that owns its log directory could otherwise point it at any file.
	Within string
}

// File rotates a log file that a service writes itself (a declared
// [[log.file]]), with the schedule, names, compression and retention of a
// Sink. The daemon never writes to it; it renames it and has the service
// reopen it, or copies and truncates it (copytruncate), and in both cases
// it refuses a symbolic link, a file with more than one hard link and a
// directory outside Within, as logrotate does.
type File struct {
	path string
	cfg  spec.Log
	how  Declared
	arch *archive

	now       func() time.Time
	boundary  func(when string, t time.Time) time.Time
	pollEvery time.Duration

	// rot makes rotations one at a time. Close does not take it: a
	// rotation may wait in Reopen for the service's goroutine, which may
	// be the one closing the File.
	rot sync.Mutex

	mu     sync.Mutex
	closed bool
	timer  *time.Timer
	due    time.Time
	stop   chan struct{}

	notify atomic.Pointer[func(Event)]
}

// NewFile prepares the rotation of the file at path by cfg; Start starts
// it.
func NewFile(path string, cfg spec.Log, how Declared) *File {
	if cfg.When == "" {
		cfg.When = spec.Untimed
	}
	f := &File{path: path, cfg: cfg, how: how, now: time.Now, boundary: nextBoundary, pollEvery: sizePoll, stop: make(chan struct{})}
	f.arch = newArchive(path, cfg, f.emit)
	return f
}

// Matches lists the logs a pattern ([[log.file]] path = ".../*.log")
// stands for: the regular files whose names match, leaving out hidden
// ones (as the shell's glob does, and logrotate's) and rotated files,
// named as cfg names them (app.log.1, app.log.2.gz, app.log-20261124),
// whether or not their log is there: with app.log* or *, a rotated file
// must not become a log of its own.
func Matches(pattern string, cfg spec.Log) ([]string, error) {
	all, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	a := newArchive(pattern, cfg, nil) // its base is set for each name
	var out []string
	for _, p := range all {
		name := filepath.Base(p)
		if strings.HasPrefix(name, ".") || a.rotatedName(name) {
			continue
		}
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// Lookup finds the file that p names among a service's declared files:
// p as declared, or the file on the host (root included or not), or, for
// a pattern, one of the files it stands for. Only those: a command that
// reads logs never reads a file the service does not declare. A pattern
// itself is no file: the error lists the ones it stands for.
func Lookup(root string, files []spec.LogFile, p string) (spec.LogFile, error) {
	abs := p
	if !strings.HasPrefix(abs, root+"/") {
		abs = filepath.Join(root, p)
	}
	hostPath := func(m string) string { return "/" + strings.TrimPrefix(strings.TrimPrefix(m, root), "/") }
	var paths []string
	for _, f := range files {
		named := f.Path == p || f.Abs == abs
		switch {
		case named && f.Pattern:
			matches, _ := Matches(f.Abs, f.Log)
			for i, m := range matches {
				matches[i] = hostPath(m)
			}
			return spec.LogFile{}, fmt.Errorf("%s is a pattern; name one of its files: %s", p, strings.Join(matches, ", "))
		case named:
			return f, nil
		case f.Pattern:
			if ok, _ := filepath.Match(f.Abs, abs); ok {
				matches, _ := Matches(f.Abs, f.Log)
				if _, err := os.Lstat(abs); err != nil || slices.Contains(matches, abs) {
					f.Abs = abs // a file the pattern stands for, or will
					return f, nil
				}
			}
		}
		paths = append(paths, f.Path)
	}
	if len(paths) == 0 {
		return spec.LogFile{}, fmt.Errorf("%s: the service declares no files ([[log.file]])", p)
	}
	return spec.LogFile{}, fmt.Errorf("%s is not one of its files: %s", p, strings.Join(paths, ", "))
}

// rotatedName reports whether name is a rotated file of a log whose
// name is some prefix of it, ending before a '.' or '-'.
func (a *archive) rotatedName(name string) bool {
	for i := 1; i < len(name); i++ {
		if name[i] != '.' && name[i] != '-' {
			continue
		}
		a.base = name[:i]
		if _, ok := a.parse(name); ok {
			return true
		}
	}
	return false
}

// Path is the file rotated.
func (f *File) Path() string { return f.path }

// Notify sets the function told about events ("rotated", "archive-error");
// as Sink.Notify.
func (f *File) Notify(fn func(Event)) { f.notify.Store(&fn) }

func (f *File) emit(e Event) {
	if fn := f.notify.Load(); fn != nil && *fn != nil {
		e.Path = f.path
		(*fn)(e)
	}
}

// Start sets the timer for the next period start, looks at the size every
// pollEvery when there is a size criterion, and, on a goroutine of its
// own, rotates a file left from an earlier period (the daemon was down
// when it ended) and has the archive finish what an earlier daemon left.
func (f *File) Start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.arm(now)
	if f.cfg.Size > 0 {
		go f.poll()
	}
	go func() {
		if fi, err := os.Lstat(f.path); err == nil && f.cfg.Timed() && fi.Size() > 0 && fi.ModTime().Before(periodStart(f.cfg.When, now)) {
			f.rotate(now, true)
		}
		f.arch.kick()
	}()
}

func (f *File) arm(now time.Time) {
	if !f.cfg.Timed() || f.closed {
		return
	}
	f.due = f.boundary(f.cfg.When, now)
	f.timer = time.AfterFunc(f.due.Sub(now), f.tick)
}

func (f *File) tick() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	now := f.now()
	if now.Before(f.due) { // the wall clock is behind the timer (a clock step)
		f.timer = time.AfterFunc(f.due.Sub(now), f.tick)
		f.mu.Unlock()
		return
	}
	f.arm(now)
	f.mu.Unlock()
	f.rotate(now, true)
}

func (f *File) poll() {
	t := time.NewTicker(f.pollEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.bySize()
		}
	}
}

// bySize rotates the file if it has reached the size.
func (f *File) bySize() {
	if fi, err := os.Lstat(f.path); err == nil && fi.Size() >= int64(f.cfg.Size) {
		f.rotate(f.now(), false)
	}
}

// Rotate rotates the file now (logrotate -f), unless notifempty holds it
// back, and says what it did. The error of a Reopen that failed comes with
// a Rotation that did happen.
func (f *File) Rotate() (Rotation, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return Rotation{}, os.ErrClosed
	}
	return f.rotate(f.now(), false)
}

// rotate does one rotation; timed: minsize applies.
func (f *File) rotate(now time.Time, timed bool) (Rotation, error) {
	f.rot.Lock()
	defer f.rot.Unlock()
	fail := func(err error) (Rotation, error) {
		err = fmt.Errorf("rotate %s: %w", f.path, err)
		f.emit(Event{Kind: "archive-error", Err: err})
		return Rotation{}, err
	}
	fi, err := os.Lstat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		if f.cfg.MissingOK {
			return Rotation{}, nil
		}
		return fail(ErrMissing)
	}
	if err == nil {
		err = f.safe(fi)
	}
	if err != nil {
		return fail(err)
	}
	if fi.Size() == 0 && f.cfg.NotIfEmpty {
		return Rotation{}, nil
	}
	if timed && fi.Size() < int64(f.cfg.MinSize) {
		return Rotation{}, nil
	}
	to, err := f.arch.rotate(now, f.path, f.how.CopyTruncate)
	if err != nil {
		f.emit(Event{Kind: "archive-error", Err: err})
		return Rotation{}, err
	}
	done := Rotation{Rotated: true, To: to}
	if !f.how.CopyTruncate {
		create(f.path, fi)
		if f.how.Reopen != nil {
			if err := f.how.Reopen(); err != nil {
				err = fmt.Errorf("rotate %s: reopen: %w", f.path, err)
				f.emit(Event{Kind: "archive-error", Err: err})
				f.arch.kick()
				return done, err
			}
		}
	}
	f.emit(Event{Kind: "rotated", To: to})
	f.arch.kick()
	return done, nil
}

// ErrUnsafe is why a declared file is not rotated: a symbolic link, a file
// with other hard links, or a directory outside the one allowed.
var ErrUnsafe = errors.New("not rotated")

// safe refuses what logrotate refuses, and a file whose directory,
// symbolic links resolved, is not inside Within.
func (f *File) safe(fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: a symbolic link", ErrUnsafe)
	}
	if err := regularOnly(fi); err != nil {
		return err
	}
	if f.how.Within == "" {
		return nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(f.path))
	if err != nil {
		return err
	}
	within, err := filepath.EvalSymlinks(f.how.Within)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(within, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%w: its directory is %s, outside %s", ErrUnsafe, dir, within)
	}
	return nil
}

func regularOnly(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrUnsafe)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("%w: it has %d hard links", ErrUnsafe, st.Nlink)
	}
	return nil
}

// copyTruncate copies the file at path to the new file to, then truncates
// it in place (logrotate's copytruncate). The copy reads to the end of the
// file, and again for what was written meanwhile, a few times at most,
// until little is left; the truncate follows the last read at once. What
// the service writes between that read and the truncate is lost: the
// known flaw of copytruncate, which only rename + reopen avoids.
func copyTruncate(path, to string) error {
	src, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if err := regularOnly(fi); err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	for pass := 0; ; pass++ {
		n, err := io.Copy(dst, src) // copy_file_range, from src's offset on
		if err != nil {
			dst.Close()
			os.Remove(to)
			return err
		}
		if n < 64<<10 || pass == 3 {
			break
		}
	}
	if err := src.Truncate(0); err != nil {
		// Keep the file whole rather than have its lines twice.
		dst.Close()
		os.Remove(to)
		return err
	}
	owner(dst, fi)
	return dst.Close()
}

// truncate empties the file at path in place (copytruncate with rotate 0).
func truncate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(0)
}

// create makes the new, empty file at path with the mode and owner of
// like, the file just renamed away, as logrotate's create does: a service
// that reopens without O_CREAT, or as a user that could not create it,
// finds it there. If the service made one first, that one stays.
func create(path string, like fs.FileInfo) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, like.Mode().Perm())
	if err != nil {
		return
	}
	f.Chmod(like.Mode().Perm()) // past the umask
	owner(f, like)
	f.Close()
}

// owner gives f the owner and group of like, where the daemon may.
func owner(f *os.File, like fs.FileInfo) {
	if st, ok := like.Sys().(*syscall.Stat_t); ok {
		f.Chown(int(st.Uid), int(st.Gid))
	}
}

// Close stops the rotations; a rotation under way finishes. Work on
// rotated files goes on in the background (Wait waits for it).
func (f *File) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	close(f.stop)
}

// Wait returns once the background work on rotated files has finished.
func (f *File) Wait() { f.arch.wait() }
