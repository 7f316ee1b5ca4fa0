package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"upkeep/internal/paths"

	"golang.org/x/sys/unix"
)

// History is the order a service's releases were deployed in, oldest
// first: var/lib/upkeep/releases/<name>.json. Rollback goes to the release
// before the current one in this order.
type History struct {
	Service  string    `json:"service"`
	Releases []Release `json:"releases"`
}

// Release is one release of a service: var/www/.releases/<name>/<version>.
type Release struct {
	Version  string    `json:"version"`
	SHA256   string    `json:"sha256,omitempty"` // of the image it was unpacked from
	Deployed time.Time `json:"deployed"`
	// Status: ok (came up), failed (did not; rolled back), pending (not
	// yet known), unknown (no daemon was running), manual (a directory that
	// was in var/www before upkeep managed the service).
	Status string `json:"status"`
}

// unpacked is an image unpacked into a staging directory.
type unpacked struct {
	*content
	Staging string // remove once Dir has been moved out
	Dir     string // the service's root: Staging or its single top directory
}

// unpack reads an image into a new staging directory beneath parent. On
// any error the staging directory is removed: nothing is left.
func (h *Host) unpack(r io.Reader, lim Limits, parent string) (*unpacked, error) {
	staging, err := os.MkdirTemp(parent, ".staging-")
	if err != nil {
		return nil, err
	}
	c, err := readImage(r, lim, newDirSink(staging))
	if err != nil {
		removeAll(staging)
		return nil, err
	}
	crashAt("unpack-staged")
	u := &unpacked{content: c, Staging: staging, Dir: staging}
	if c.Top != "" {
		u.Dir = filepath.Join(staging, c.Top)
	}
	return u, nil
}

// removeAll removes a tree upkeep made, making read-only directories
// writable on the way (an image may hold some).
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

func (h *Host) history(name string) (*History, error) {
	hs := &History{Service: name}
	if err := h.readJSON(historyRel(name), hs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return hs, nil
}

func (h *Host) saveHistory(hs *History) error { return h.writeJSON(historyRel(hs.Service), hs) }

func (hs *History) find(version string) int {
	for i, r := range hs.Releases {
		if r.Version == version {
			return i
		}
	}
	return -1
}

// push moves version to the end of the history (it is now the newest).
func (hs *History) push(r Release) {
	if i := hs.find(r.Version); i >= 0 {
		hs.Releases = append(hs.Releases[:i], hs.Releases[i+1:]...)
	}
	hs.Releases = append(hs.Releases, r)
}

func (hs *History) setStatus(version, status string) {
	if i := hs.find(version); i >= 0 {
		hs.Releases[i].Status = status
	}
}

// Current says what var/www/<name> is: the version of the release it links
// to; manual when it is a real directory; none when there is nothing.
type Current struct {
	Version  string // the release's version ("" unless Kind is release)
	Kind     string // none | release | manual | dangling | other
	Target   string // the symlink's target
	Manual   bool
	Problems string
}

func (h *Host) current(name string) Current {
	rel := serviceRel(name)
	st, err := h.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Current{Kind: "none"}
	case err != nil:
		return Current{Kind: "other", Problems: err.Error()}
	case isType(st, unix.S_IFDIR):
		return Current{Kind: "manual"}
	case !isType(st, unix.S_IFLNK):
		return Current{Kind: "other", Problems: h.Path(rel) + " is neither a directory nor a symlink"}
	}
	target, err := h.root.Readlink(rel)
	if err != nil {
		return Current{Kind: "other", Problems: err.Error()}
	}
	prefix := paths.ReleaseLink(name, "")
	v, ok := strings.CutPrefix(target, prefix)
	if !ok || strings.Contains(v, "/") || CheckVersion(v) != nil {
		return Current{Kind: "other", Target: target, Problems: fmt.Sprintf("%s links to %s, not to a release of %s", h.Path(rel), target, name)}
	}
	if _, err := os.Stat(h.Path(releaseRel(name, v))); err != nil {
		return Current{Kind: "dangling", Version: v, Target: target}
	}
	return Current{Kind: "release", Version: v, Target: target}
}

// switchTo points var/www/<name> at the release version: a new symlink
// renamed over the old one, so there is never a moment without a service
// directory. A real directory there (a manual install) is swapped out by
// renameat2(RENAME_EXCHANGE) with force, and kept as the release
// manual-<time>; without force it is refused.
func (h *Host) switchTo(name, version string, force bool, hs *History) error {
	rel := serviceRel(name)
	target := paths.ReleaseLink(name, version)
	cur := h.current(name)
	switch cur.Kind {
	case "none", "release", "dangling":
		return h.root.Symlink(target, rel)
	case "manual":
		if !force {
			return fmt.Errorf("%s is a directory (a manual install?); deploy replaces it with a symlink to a release only with --force, and then keeps it as a release of its own", h.Path(rel))
		}
		keep := "manual-" + time.Now().UTC().Format("20060102T150405Z")
		old, err := h.root.Exchange(target, rel)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// No RENAME_EXCHANGE on this file system: two renames, and a
			// moment without the directory.
			h.say("warning: this file system cannot exchange; %s is missing for a moment", h.Path(rel))
			if err := h.root.Rename(rel, releaseRel(name, keep)); err != nil {
				return err
			}
			if err := h.root.Symlink(target, rel); err != nil {
				return err
			}
			old = ""
		} else if err != nil {
			return err
		}
		if old != "" {
			if err := h.root.Rename(old, releaseRel(name, keep)); err != nil {
				return err
			}
		}
		h.say("kept the directory that was %s as release %s", h.Path(rel), keep)
		hs.Releases = append([]Release{{Version: keep, Deployed: time.Now().UTC().Truncate(time.Second), Status: "manual"}}, hs.Releases...)
		return nil
	default:
		if force && cur.Target != "" {
			return h.root.Symlink(target, rel)
		}
		return fmt.Errorf("%s (--force replaces the symlink)", cur.Problems)
	}
}

// ReleaseInfo is one line of `upkeep releases`.
type ReleaseInfo struct {
	Release
	Current bool   `json:"current"`
	Dir     string `json:"dir"`
	Missing bool   `json:"missing,omitempty"` // in the history, its directory gone
}

// Releases lists the releases of name in the order they were deployed,
// then any directory the history does not know.
func (h *Host) Releases(name string) ([]ReleaseInfo, error) {
	hs, err := h.history(name)
	if err != nil {
		return nil, err
	}
	cur := h.current(name)
	var out []ReleaseInfo
	seen := map[string]bool{}
	for _, r := range hs.Releases {
		dir := h.Path(releaseRel(name, r.Version))
		_, err := os.Stat(dir)
		out = append(out, ReleaseInfo{Release: r, Current: cur.Version == r.Version, Dir: dir, Missing: err != nil})
		seen[r.Version] = true
	}
	entries, _ := os.ReadDir(h.Path(releasesRel(name)))
	var extra []ReleaseInfo
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || seen[e.Name()] || !e.IsDir() {
			continue
		}
		extra = append(extra, ReleaseInfo{Release: Release{Version: e.Name(), Status: "unknown"}, Current: cur.Version == e.Name(), Dir: h.Path(releaseRel(name, e.Name()))})
	}
	sort.Slice(extra, func(i, j int) bool { return CompareVersions(extra[i].Version, extra[j].Version) < 0 })
	return append(out, extra...), nil
}

// prune keeps the newest keep releases of name (by deploy order) and the
// current one, and removes the rest, with stale staging directories.
func (h *Host) prune(name string, keep int, hs *History) {
	cur := h.current(name)
	var kept []Release
	n := len(hs.Releases)
	for i, r := range hs.Releases {
		if i >= n-keep || r.Version == cur.Version {
			kept = append(kept, r)
			continue
		}
		if err := h.removeRelease(name, r.Version); err != nil {
			h.say("warning: prune %s %s: %v", name, r.Version, err)
			kept = append(kept, r)
			continue
		}
		h.say("pruned release %s %s", name, r.Version)
	}
	hs.Releases = kept
	entries, _ := os.ReadDir(h.Path(releasesRel(name)))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".staging-") {
			removeAll(filepath.Join(h.Path(releasesRel(name)), e.Name()))
		}
	}
}

func (h *Host) removeRelease(name, version string) error {
	rel := releaseRel(name, version)
	if _, err := h.root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	removeAll(h.Path(rel))
	if _, err := os.Lstat(h.Path(rel)); err == nil {
		return fmt.Errorf("could not remove %s", h.Path(rel))
	}
	return nil
}
