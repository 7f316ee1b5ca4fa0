package compat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"upkeep/internal/spec"
)

// ErrExists is returned by WriteService for a service.toml that is
// already there, when it may not be replaced.
var ErrExists = errors.New("exists")

// WriteService writes data as dir/<name>/service.toml. It never writes
// outside dir (a service directory that is a symlink must stay inside it,
// and service.toml itself must not be a symlink) and never replaces an
// existing file unless force. The file appears whole or not at all.
func WriteService(dir, name string, data []byte, force bool) (string, error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	svcDir := filepath.Join(abs, name)
	file := filepath.Join(svcDir, spec.FileName)
	switch fi, err := os.Lstat(svcDir); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(svcDir, 0o755); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir():
		target, err := filepath.EvalSymlinks(svcDir)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(real, target)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%s points outside %s; not written", svcDir, abs)
		}
		if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory", svcDir)
		}
	}
	switch fi, err := os.Lstat(file); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a symlink; not written", file)
	case !force:
		return file, fmt.Errorf("%s %w (--force replaces it)", file, ErrExists)
	}
	tmp, err := os.CreateTemp(svcDir, ".service.toml.*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if force {
		return file, os.Rename(tmp.Name(), file)
	}
	// A hard link fails if the name exists: no window in which another
	// writer's file could be replaced.
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return file, fmt.Errorf("%s %w (--force replaces it)", file, ErrExists)
		}
		return "", err
	}
	return file, nil
}
