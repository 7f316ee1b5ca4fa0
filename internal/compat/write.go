package compat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"upkeep/internal/crash"
	"upkeep/internal/spec"
)

// ErrExists is returned by WriteService for a service.toml that is
// already there, when it may not be replaced.
var ErrExists = errors.New("exists")

// ServiceFile is one service.toml to write.
type ServiceFile struct {
	Name string
	Data []byte
}

// Written is what became of one ServiceFile: File is dir/<name>/service.toml
// (also with ErrExists), Err why it was not written.
type Written struct {
	Name string
	File string
	Err  error
}

// WriteService writes data as dir/<name>/service.toml. It never writes
// outside dir (a service directory that is a symlink must stay inside it,
// and service.toml itself must not be a symlink) and never replaces an
// existing file unless force. The file appears whole or not at all.
func WriteService(dir, name string, data []byte, force bool) (string, error) {
	w := WriteServices(dir, []ServiceFile{{Name: name, Data: data}}, force)[0]
	return w.File, w.Err
}

// WriteServices writes many service.toml files with WriteService's
// guarantees, each whole or not at all; one service's error keeps back
// that service only. An import writes thousands, so it works in three
// passes rather than file by file:
//
//  1. stage: each file is written under a temporary name in its service
//     directory, on several goroutines (the time is the file system's,
//     making directories and inodes);
//  2. flush: one syncfs(2) puts the data of all of them on disk, where an
//     fsync each cost a disk write (and a journal commit) each; a single
//     file still gets its fsync;
//  3. commit: each file gets its name, by a rename that fails if the
//     name exists (or a hard link, where the file system cannot), or with
//     force a plain rename.
//
// The flush comes before any name appears, so a crash never leaves a
// service.toml that is empty or cut short, only temporary files.
func WriteServices(dir string, files []ServiceFile, force bool) []Written {
	out := make([]Written, len(files))
	for i, f := range files {
		out[i].Name = f.Name
	}
	abs, real, dev, err := outputDir(dir)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	seen := make(map[string]bool, len(files))
	for i, f := range files {
		if seen[f.Name] {
			out[i].Err = errors.New("given twice; written once")
			continue
		}
		seen[f.Name] = true
	}
	st := make([]staged, len(files))
	parallelIO(len(files), func(i int) {
		if out[i].Err == nil {
			st[i], out[i].File, out[i].Err = stage(abs, real, dev, files[i], force)
		}
	})
	defer func() {
		parallelIO(len(st), func(i int) { st[i].clean() })
	}()
	if err := flush(abs, st); err != nil {
		err = fmt.Errorf("sync %s: %w", abs, err)
		for i := range st {
			if st[i].tmp != "" {
				out[i].Err = err
			}
		}
		return out
	}
	crash.Point("import-staged")
	parallelIO(len(files), func(i int) {
		if st[i].tmp != "" {
			out[i].Err = st[i].commit(out[i].File, force)
			crash.Point("import-committed") // the first file named, the others not
		}
	})
	// The renames (and the service directories made for them) on disk
	// before import says written: one syncfs again, not an fsync a directory.
	if err := syncTree(abs); err != nil {
		for i := range out {
			if out[i].Err == nil && st[i].done {
				out[i].Err = fmt.Errorf("written, but not synced: %w", err)
			}
		}
	}
	return out
}

// syncTree writes out the file system holding dir: syncfs(2).
func syncTree(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// staged is a file written under its temporary name.
type staged struct {
	tmp     string // "" if nothing was staged
	dir     string
	madeDir bool // dir was made for it: removed again if the file is not written
	synced  bool // on another file system than the output directory: synced already
	done    bool
}

// outputDir makes dir and resolves it: its absolute path, the real one
// (which service directories that are symlinks must stay inside) and its
// file system.
func outputDir(dir string) (abs, real string, dev uint64, err error) {
	if abs, err = filepath.Abs(dir); err != nil {
		return "", "", 0, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", "", 0, err
	}
	if real, err = filepath.EvalSymlinks(abs); err != nil {
		return "", "", 0, err
	}
	var s unix.Stat_t
	if err := unix.Stat(real, &s); err != nil {
		return "", "", 0, err
	}
	return abs, real, s.Dev, nil
}

var (
	tmpSeq atomic.Uint64
	pid    = os.Getpid()
)

// writeAll writes b to fd, as os.File.Write does: short writes continue,
// EINTR is tried again.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// stage checks where the file goes and writes it under a temporary name
// next to it.
func stage(abs, real string, dev uint64, f ServiceFile, force bool) (staged, string, error) {
	if err := spec.CheckName(f.Name); err != nil {
		return staged{}, "", err
	}
	svcDir := filepath.Join(abs, f.Name)
	file := filepath.Join(svcDir, spec.FileName)
	st := staged{dir: svcDir}
	switch err := os.Mkdir(svcDir, 0o755); {
	case err == nil:
		// New and empty: nothing there to check.
		st.madeDir = true
	case !errors.Is(err, fs.ErrExist):
		return staged{}, "", err
	default:
		removeStale(svcDir)
		if err := checkServiceDir(real, svcDir, file, force); err != nil {
			if errors.Is(err, ErrExists) {
				return staged{}, file, err
			}
			return staged{}, "", err
		}
	}
	// O_EXCL with a name of our own: another writer's file is never
	// opened, and a name left by a crash is skipped. (unix, not os: an
	// os.File costs four more system calls, for the poller, and an
	// import makes thousands.)
	var fd int
	var err error
	for range 10 {
		st.tmp = filepath.Join(svcDir, ".service.toml."+strconv.Itoa(pid)+"."+strconv.FormatUint(tmpSeq.Add(1), 10))
		fd, err = unix.Open(st.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		st.tmp = ""
		st.clean()
		return staged{}, "", &fs.PathError{Op: "open", Path: filepath.Join(svcDir, ".service.toml.*"), Err: err}
	}
	err = writeAll(fd, f.Data)
	if err == nil && umaskMasks() {
		err = unix.Fchmod(fd, 0o644) // whatever the umask
	}
	if err == nil && !st.madeDir {
		// A directory that was there may be a mount, or a symlink to
		// another file system, which flush's syncfs would miss.
		var s unix.Stat_t
		if err = unix.Fstat(fd, &s); err == nil && s.Dev != dev {
			err = unix.Fsync(fd)
			st.synced = true
		}
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		tmp := st.tmp
		st.clean()
		return staged{}, "", &fs.PathError{Op: "write", Path: tmp, Err: err}
	}
	return st, file, nil
}

// removeStale removes the temporary files an import killed before its
// commit left in svcDir: .service.toml.<pid>.<n> of a pid that no longer
// runs. (A live pid may be a reused one; its file stays, harmless.)
func removeStale(svcDir string) {
	tmps, _ := filepath.Glob(filepath.Join(svcDir, ".service.toml.*.*"))
	for _, tmp := range tmps {
		p, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(tmp), ".service.toml."), ".")
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n != pid && unix.Kill(n, 0) == unix.ESRCH {
			os.Remove(tmp)
		}
	}
}

// checkServiceDir vets a service directory that was already there.
func checkServiceDir(real, svcDir, file string, force bool) error {
	fi, err := os.Lstat(svcDir)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		target, err := filepath.EvalSymlinks(svcDir)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(real, target)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s points outside %s; not written", svcDir, filepath.Dir(svcDir))
		}
		if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", svcDir)
		}
	}
	switch fi, err := os.Lstat(file); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink; not written", file)
	case !force:
		return fmt.Errorf("%s %w (--force replaces it)", file, ErrExists)
	}
	return nil
}

// flush puts the staged files' data on disk: one syncfs on dir's file
// system, or an fsync for a single file. (A file in a service directory
// on another file system, a mount or a symlink to one, was synced when it
// was staged.)
func flush(dir string, st []staged) error {
	var one string
	n := 0
	for i := range st {
		if st[i].tmp != "" && !st[i].synced {
			one = st[i].tmp
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return syncFile(one)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit gives a staged file its name.
func (st *staged) commit(file string, force bool) error {
	if force {
		if err := os.Rename(st.tmp, file); err != nil {
			return err
		}
		st.tmp = ""
		st.done = true
		return nil
	}
	// Neither fails but if the name exists: no window in which another
	// writer's file could be replaced.
	err := unix.Renameat2(unix.AT_FDCWD, st.tmp, unix.AT_FDCWD, file, unix.RENAME_NOREPLACE)
	switch err {
	case nil:
		st.tmp = ""
	case unix.EEXIST:
		return fmt.Errorf("%s %w (--force replaces it)", file, ErrExists)
	case unix.EINVAL, unix.ENOSYS: // a file system without the flag
		if err := linkNew(st.tmp, file); err != nil {
			return err
		}
	default:
		return &os.LinkError{Op: "rename", Old: st.tmp, New: file, Err: err}
	}
	st.done = true
	return nil
}

// linkNew gives tmp the name file as well, unless file exists; clean
// removes tmp afterwards.
func linkNew(tmp, file string) error {
	if err := os.Link(tmp, file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s %w (--force replaces it)", file, ErrExists)
		}
		return err
	}
	return nil
}

// clean removes the temporary file, and the service directory if it was
// made for a file that was not written.
func (st *staged) clean() {
	if st.tmp != "" {
		os.Remove(st.tmp)
		st.tmp = ""
	}
	if st.madeDir && !st.done {
		os.Remove(st.dir) // only if empty
		st.madeDir = false
	}
}

// umaskMasks reports whether the process's umask takes bits off 0644,
// read once from /proc/self/status (umask(2) can only be read by
// changing it, for every thread). When it cannot be told, it does.
var umaskMasks = sync.OnceValue(func() bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return err != nil || m&0o644 != 0
		}
	}
	return true
})

// parallelIO runs f(0) … f(n-1) on a few goroutines more than there are
// cores: f mostly waits for the file system.
func parallelIO(n int, f func(i int)) {
	workers := min(8, n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
