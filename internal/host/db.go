package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"upkeep/internal/spec"

	"golang.org/x/sys/unix"
)

// LinkDB makes var/db/NAME a symlink to target, the guide's "can be
// symlinked to separate mount" (provision --db NAME=PATH).
//
// target is a host path, absolute, and may lie outside the root: a data
// volume is mounted wherever the operator mounts it, and the link is
// written exactly as given, so it resolves the same for the daemon and for
// the operator. The target must exist (mount it first); provision makes
// nothing outside the root. var/db/NAME is replaced only when it is
// missing or an empty directory: data is never moved or hidden, and a link
// to somewhere else is the operator's to remove.
func (h *Host) LinkDB(name, target string, dryRun bool) error {
	if err := spec.CheckName(name); err != nil {
		return fmt.Errorf("--db %s: %w", name, err)
	}
	if !filepath.IsAbs(target) {
		return fmt.Errorf("--db %s=%s: the target must be an absolute path (where the volume is mounted)", name, target)
	}
	target = filepath.Clean(target)
	rel := dbRel(name)
	p := h.Path(rel)
	if fi, err := os.Stat(target); err != nil {
		return fmt.Errorf("--db %s=%s: %w; mount the volume and make the directory first", name, target, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("--db %s=%s: not a directory", name, target)
	}
	st, err := h.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("--db %s: %w", name, err)
	case isType(st, unix.S_IFLNK):
		got, _ := h.root.Readlink(rel)
		if got == target {
			return nil
		}
		return fmt.Errorf("--db %s: %s already links to %s; remove that link first (rm %s)", name, p, got, quote(p))
	case !isType(st, unix.S_IFDIR):
		return fmt.Errorf("--db %s: %s exists and is not a directory", name, p)
	default:
		entries, err := os.ReadDir(p)
		if err != nil {
			return fmt.Errorf("--db %s: %w", name, err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("--db %s: %s holds data (%d entries); move it onto the volume first: mv %s/* %s/ && rmdir %s", name, p, len(entries), quote(p), quote(target), quote(p))
		}
	}
	if dryRun {
		fmt.Fprintf(h.Out, "would run: ln -sfn %s %s\n", quote(target), quote(p))
		return nil
	}
	if err == nil {
		if err := h.root.Remove(rel); err != nil { // the empty directory
			return fmt.Errorf("--db %s: %w", name, err)
		}
	}
	if _, err := h.root.MkdirAll(DBDir, 0o755); err != nil {
		return fmt.Errorf("--db %s: %w", name, err)
	}
	if err := h.root.Symlink(target, rel); err != nil {
		return fmt.Errorf("--db %s: %w", name, err)
	}
	h.say("ln -sfn %s %s", quote(target), quote(p))
	return nil
}
