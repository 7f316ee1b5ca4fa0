package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// TestImage is an image `upkeep test` runs: checked on the host the way
// image add (a file) or deploy (a stored image) checks it, nothing written,
// then unpacked inside the sandbox by UnpackImage.
type TestImage struct {
	Name, Version string
	File          string // the archive
	TOML          []byte // its service.toml
}

// IsImageRef says whether a test target names an image rather than a
// service: NAME@VERSION (the image store's entry, as deploy resolves it)
// or a .tar.gz/.tgz/.tar file.
func IsImageRef(target string) bool {
	if strings.Contains(target, "@") {
		return true
	}
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(target, ext) {
			return true
		}
	}
	return false
}

// CheckTestImage resolves and checks an image for a sandbox test. A file
// gets image add's checks (every entry, its name and version, the policy);
// NAME@VERSION (or NAME@ for the newest) gets deploy's (the record, the
// policy, its recorded sha256).
func (h *Host) CheckTestImage(target string) (*TestImage, error) {
	if name, version, ok := strings.Cut(target, "@"); ok {
		img, err := h.FindImage(name, version)
		if err != nil {
			return nil, err
		}
		if err := h.checkImagePolicy(img, DeployOptions{}); err != nil {
			return nil, err
		}
		c, _, err := h.listImage(img, DeployOptions{})
		if err != nil {
			return nil, err
		}
		return &TestImage{Name: img.Name, Version: img.Version, File: h.home.abs(filepath.Join(homeImage, img.File)), TOML: c.TOML}, nil
	}
	lim, err := h.limits(0, false)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(target)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list := newListSink()
	c, err := readImage(f, lim, list)
	if err != nil {
		return nil, err
	}
	name, version, err := h.identify(target, false, c, AddOptions{})
	if err != nil {
		return nil, err
	}
	if err := h.checkAddPolicy(name, version, c, list); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	return &TestImage{Name: name, Version: version, File: abs, TOML: c.TOML}, nil
}

// UnpackImage unpacks an image into its release and points var/www/<name>
// at it, as deploy does, with no history: for a root that is a sandbox's
// overlay, where the service's current directory (if any) is replaced.
func (h *Host) UnpackImage(r io.Reader, name, version string) error {
	lim, err := h.limits(0, false)
	if err != nil {
		return err
	}
	parent := releasesRel(name)
	if _, err := h.root.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	u, err := h.unpack(r, lim, h.Path(parent))
	if err != nil {
		return err
	}
	defer removeAll(u.Staging)
	if err := os.Chmod(u.Dir, 0o755); err != nil {
		return err
	}
	if err := h.removeRelease(name, version); err != nil {
		return err
	}
	from, _ := filepath.Rel(h.Root, u.Dir)
	if err := h.root.Rename(filepath.ToSlash(from), releaseRel(name, version)); err != nil {
		return err
	}
	// A manual directory or a link to another release: gone, in this root.
	if err := h.root.RemoveAll(serviceRel(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", h.Path(serviceRel(name)), err)
	}
	return h.switchTo(name, version, false, &History{Service: name})
}
