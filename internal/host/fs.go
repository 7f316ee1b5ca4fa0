package host

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tree is a directory beneath which paths are resolved one component at a
// time, each opened with O_NOFOLLOW relative to the one before (openat(2)),
// so a symlink planted in the tree (<root>/etc -> /tmp/outside) is reported
// rather than followed, and nothing is ever written outside the tree. Paths
// are slash-separated and relative to the tree; the tree's own directory may
// be a symlink.
type tree struct{ dir string }

// SymlinkError reports a path component that is a symlink: upkeep does not
// resolve paths through symlinks beneath the root.
type SymlinkError struct {
	Path   string // the component, relative to the tree
	Target string
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s is a symlink (-> %s); upkeep does not write through symlinks beneath the root", "/"+e.Path, e.Target)
}

// NotDirError reports a path component that exists and is not a directory.
type NotDirError struct{ Path string }

func (e *NotDirError) Error() string { return fmt.Sprintf("%s is not a directory", "/"+e.Path) }

// clean checks a tree-relative path: no "..", no absolute form.
func clean(rel string) (string, error) {
	rel = strings.TrimPrefix(rel, "/")
	for _, c := range strings.Split(rel, "/") {
		if c == ".." {
			return "", fmt.Errorf("path %q has a .. component", rel)
		}
	}
	rel = path.Clean("/" + rel)[1:]
	return rel, nil
}

// openDir opens the directory rel (O_PATH) without following symlinks. With
// create, missing components are made with mode and reported in made (tree
// paths, outermost first).
func (t tree) openDir(rel string, create bool, mode os.FileMode) (fd int, made []string, err error) {
	rel, err = clean(rel)
	if err != nil {
		return -1, nil, err
	}
	fd, err = unix.Open(t.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, &fs.PathError{Op: "open", Path: t.dir, Err: err}
	}
	if rel == "" {
		return fd, nil, nil
	}
	done := ""
	for _, c := range strings.Split(rel, "/") {
		at := path.Join(done, c)
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(fd, c, uint32(mode.Perm())); err == nil {
				made = append(made, at)
				// mkdir is subject to the umask; the mode asked for is the mode wanted.
				_ = unix.Fchmodat(fd, c, uint32(mode.Perm()), 0)
			}
			if err == nil || err == unix.EEXIST {
				next, err = unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			err = t.explain(fd, c, at, err)
			unix.Close(fd)
			return -1, made, err
		}
		unix.Close(fd)
		fd = next
		done = at
	}
	return fd, made, nil
}

// explain turns ENOTDIR/ELOOP from an O_NOFOLLOW open into what the
// component really is.
func (t tree) explain(dirfd int, name, at string, err error) error {
	if err == unix.ENOTDIR || err == unix.ELOOP {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				target, _ := readlinkat(dirfd, name)
				return &SymlinkError{Path: at, Target: target}
			}
			return &NotDirError{Path: at}
		}
	}
	return &fs.PathError{Op: "open", Path: filepath.Join(t.dir, at), Err: err}
}

// parent opens the directory holding rel and returns it with rel's base name.
func (t tree) parent(rel string, create bool) (int, string, []string, error) {
	rel, err := clean(rel)
	if err != nil {
		return -1, "", nil, err
	}
	if rel == "" {
		return -1, "", nil, errors.New("the tree's own directory cannot be changed")
	}
	fd, made, err := t.openDir(path.Dir(rel), create, 0o755)
	return fd, path.Base(rel), made, err
}

// Lstat describes rel without following it or any component before it.
func (t tree) Lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &fs.PathError{Op: "lstat", Path: t.abs(rel), Err: err}
	}
	return st, nil
}

// Readlink reads the symlink rel.
func (t tree) Readlink(rel string) (string, error) {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	s, err := readlinkat(fd, base)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: t.abs(rel), Err: err}
	}
	return s, nil
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// MkdirAll makes rel and its missing parents with mode and returns the ones
// it made.
func (t tree) MkdirAll(rel string, mode os.FileMode) ([]string, error) {
	fd, made, err := t.openDir(rel, true, mode)
	if err == nil {
		unix.Close(fd)
	}
	return made, err
}

// Symlink makes rel a symlink to target, replacing what is there (a file or
// a symlink) in one rename(2): there is no moment without rel.
func (t tree) Symlink(target, rel string) error {
	fd, base, _, err := t.parent(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tmp := tempName(base)
	if err := unix.Symlinkat(target, fd, tmp); err != nil {
		return &fs.PathError{Op: "symlink", Path: t.abs(rel), Err: err}
	}
	if err := unix.Renameat(fd, tmp, fd, base); err != nil {
		_ = unix.Unlinkat(fd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: t.abs(rel), Err: err}
	}
	return nil
}

// Exchange swaps rel with a new symlink to target in one renameat2(2)
// RENAME_EXCHANGE, and returns the temporary name (in the same directory)
// where the old entry now is. It is how a real directory is replaced by a
// symlink without a moment where neither is there.
func (t tree) Exchange(target, rel string) (string, error) {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	tmp := tempName(base)
	if err := unix.Symlinkat(target, fd, tmp); err != nil {
		return "", &fs.PathError{Op: "symlink", Path: t.abs(rel), Err: err}
	}
	if err := unix.Renameat2(fd, tmp, fd, base, unix.RENAME_EXCHANGE); err != nil {
		_ = unix.Unlinkat(fd, tmp, 0)
		return "", &fs.PathError{Op: "exchange", Path: t.abs(rel), Err: err}
	}
	return path.Join(path.Dir(rel), tmp), nil
}

// WriteFile replaces rel with the content of r (a new file renamed over
// the old one) and returns the bytes written.
func (t tree) WriteFile(rel string, r io.Reader, mode os.FileMode) (int64, error) {
	return t.write(rel, r, mode, false)
}

// WriteFileSync is WriteFile made durable: the new file is fsynced before
// the rename and its directory after it, so once it returns the name and
// the content survive a power cut (and before, the old ones do).
func (t tree) WriteFileSync(rel string, r io.Reader, mode os.FileMode) (int64, error) {
	return t.writeSynced(rel, r, mode, true, true)
}

// WriteFileData is WriteFile with the new file fsynced before the rename
// but not its directory after: the name, when it is on disk, never points
// at lost data, and the caller syncs the directory once for many files
// (a journaled op's end does, Host.syncOp).
func (t tree) WriteFileData(rel string, r io.Reader, mode os.FileMode) (int64, error) {
	return t.writeSynced(rel, r, mode, true, false)
}

// write is WriteFile; with sync, the new file is fsynced before the
// rename, so that the name never points at data that is not on disk, and
// the directory after it, so that the rename itself is.
func (t tree) write(rel string, r io.Reader, mode os.FileMode, sync bool) (int64, error) {
	return t.writeSynced(rel, r, mode, sync, sync)
}

// writeSynced is write with the file's fsync (before the rename) and the
// directory's (after it) chosen apart.
func (t tree) writeSynced(rel string, r io.Reader, mode os.FileMode, sync, syncDir bool) (int64, error) {
	fd, base, _, err := t.parent(rel, true)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	tmp := tempName(base)
	nfd, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return 0, &fs.PathError{Op: "create", Path: t.abs(rel), Err: err}
	}
	f := os.NewFile(uintptr(nfd), t.abs(rel))
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode.Perm())
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(fd, tmp, fd, base)
	}
	if err != nil {
		_ = unix.Unlinkat(fd, tmp, 0)
		return n, fmt.Errorf("write %s: %w", t.abs(rel), err)
	}
	if syncDir {
		if err := fsyncAt(fd); err != nil {
			return n, fmt.Errorf("write %s: sync its directory: %w", t.abs(rel), err)
		}
	}
	return n, nil
}

// fsyncAt fsyncs the directory dirfd names. The tree's descriptors are
// O_PATH, which fsync refuses (EBADF); "." opened from one is the same
// directory, reached without a path that could have changed meanwhile.
func fsyncAt(dirfd int) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// SymlinkSync is Symlink made durable: the directory is fsynced after the
// rename.
func (t tree) SymlinkSync(target, rel string) error {
	if err := t.Symlink(target, rel); err != nil {
		return err
	}
	fd, _, _, err := t.parent(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := fsyncAt(fd); err != nil {
		return &fs.PathError{Op: "sync", Path: t.abs(path.Dir(rel)), Err: err}
	}
	return nil
}

// Create makes the empty file rel if it does not exist (O_EXCL: an
// existing file, or one made meanwhile, is left alone).
func (t tree) Create(rel string, mode os.FileMode) error {
	fd, base, _, err := t.parent(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	nfd, err := unix.Openat(fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err == unix.EEXIST {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "create", Path: t.abs(rel), Err: err}
	}
	defer unix.Close(nfd)
	if err := unix.Fchmod(nfd, uint32(mode.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: t.abs(rel), Err: err}
	}
	return nil
}

// Open opens the regular file rel for reading.
func (t tree) Open(rel string) (*os.File, error) {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	nfd, err := unix.Openat(fd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: t.abs(rel), Err: err}
	}
	return os.NewFile(uintptr(nfd), t.abs(rel)), nil
}

// Remove removes the file, symlink or empty directory rel.
func (t tree) Remove(rel string) error {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "remove", Path: t.abs(rel), Err: err}
	}
	flags := 0
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(fd, base, flags); err != nil {
		return &fs.PathError{Op: "remove", Path: t.abs(rel), Err: err}
	}
	return nil
}

// RemoveAll removes rel and everything beneath it, never following a
// symlink. A missing rel is not an error.
func (t tree) RemoveAll(rel string) error {
	rel, err := clean(rel)
	if err != nil {
		return err
	}
	if _, err := t.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	// os.RemoveAll unlinks with *at calls and does not follow symlinks
	// beneath its argument; the argument's own components were just
	// checked not to be symlinks.
	return os.RemoveAll(t.abs(rel))
}

// Rename moves old to new within the tree (both parents must exist).
func (t tree) Rename(oldRel, newRel string) error {
	ofd, obase, _, err := t.parent(oldRel, false)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	nfd, nbase, _, err := t.parent(newRel, true)
	if err != nil {
		return err
	}
	defer unix.Close(nfd)
	if err := unix.Renameat(ofd, obase, nfd, nbase); err != nil {
		return &os.LinkError{Op: "rename", Old: t.abs(oldRel), New: t.abs(newRel), Err: err}
	}
	return nil
}

// Chmod sets rel's permission bits (rel is not followed if a symlink).
func (t tree) Chmod(rel string, mode os.FileMode) error {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchmodat(fd, base, uint32(mode.Perm()), 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: t.abs(rel), Err: err}
	}
	return nil
}

// Chown sets rel's owner without following it.
func (t tree) Chown(rel string, uid, gid int) error {
	fd, base, _, err := t.parent(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchownat(fd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chown", Path: t.abs(rel), Err: err}
	}
	return nil
}

// abs is rel as a host path, for messages and symlink targets.
func (t tree) abs(rel string) string { return filepath.Join(t.dir, filepath.FromSlash(rel)) }

func tempName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ".upkeep-" + hex.EncodeToString(b[:]) + "-" + truncate(base, 100)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// isType reports whether st is of the S_IFMT type t.
func isType(st unix.Stat_t, t uint32) bool { return st.Mode&unix.S_IFMT == t }

// syncDirPath fsyncs the directory dir (a host path upkeep made itself).
func syncDirPath(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// syncFS writes out the file system holding dir: syncfs(2).
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// teeReader is io.TeeReader for a hash (whose Write never fails).
type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w interface{ Write([]byte) (int, error) }
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.Write(p[:n])
	}
	return n, err
}

func copyAll(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }
