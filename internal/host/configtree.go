package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// configTree is a release's config/ as the overlay plan reads it: a
// directory on disk, or, for deploy --dry-run, the entries of an image that
// is read but not unpacked.
type configTree interface {
	// walk calls fn for each entry beneath config/, a directory before what
	// it holds, with its path relative to config/. fn may return
	// fs.SkipDir for a directory.
	walk(fn func(rel string, d fs.DirEntry) error) error
	// sum is the sha256 of the regular file rel.
	sum(rel string) (string, error)
	// path is rel as a host path, which a copy is made from ("" for an
	// image that is not unpacked).
	path(rel string) string
}

// diskConfig is config/ of a release or a service directory (a host path).
// A config/ that is itself a symlink is not followed, nor is any symlink
// inside it.
type diskConfig string

func (c diskConfig) walk(fn func(string, fs.DirEntry) error) error {
	root := string(c)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if p == root {
			return nil
		}
		return fn(filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator))), d)
	})
}

func (c diskConfig) sum(rel string) (string, error) { return fileSum(c.path(rel)) }

func (c diskConfig) path(rel string) string { return filepath.Join(string(c), filepath.FromSlash(rel)) }

// imageConfig is config/ as listed from an image: each entry's type, and
// each regular file's sha256, with no content kept.
type imageConfig map[string]memEntry

type memEntry struct {
	name   string
	mode   fs.FileMode // type bits only
	sum    string
	target string // a symlink's, for the host policy
}

func (e memEntry) Name() string               { return e.name }
func (e memEntry) IsDir() bool                { return e.mode.IsDir() }
func (e memEntry) Type() fs.FileMode          { return e.mode.Type() }
func (e memEntry) Info() (fs.FileInfo, error) { return memInfo{e}, nil }

type memInfo struct{ e memEntry }

func (i memInfo) Name() string       { return i.e.name }
func (i memInfo) Size() int64        { return 0 }
func (i memInfo) Mode() fs.FileMode  { return i.e.mode }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.e.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

func (c imageConfig) walk(fn func(string, fs.DirEntry) error) error {
	rels := make([]string, 0, len(c))
	for rel := range c {
		rels = append(rels, rel)
	}
	// Sorting by components puts a directory right before what it holds,
	// as filepath.WalkDir does.
	sort.Slice(rels, func(i, j int) bool {
		return strings.ReplaceAll(rels[i], "/", "\x00") < strings.ReplaceAll(rels[j], "/", "\x00")
	})
	skip := ""
	for _, rel := range rels {
		if skip != "" && strings.HasPrefix(rel, skip) {
			continue
		}
		skip = ""
		e := c[rel]
		switch err := fn(rel, e); {
		case err == fs.SkipDir && e.IsDir():
			skip = rel + "/"
		case err == fs.SkipDir || err == fs.SkipAll:
			return nil
		case err != nil:
			return err
		}
	}
	return nil
}

func (c imageConfig) sum(rel string) (string, error) {
	e, ok := c[rel]
	if !ok || !e.mode.IsRegular() {
		return "", fmt.Errorf("config/%s is not a regular file of the image", rel)
	}
	return e.sum, nil
}

func (c imageConfig) path(string) string { return "" }

// listSink is the sink of deploy --dry-run: it writes nothing, and lists
// the entries that may belong to the service's config/ (config/... or
// <top>/config/...; the top is known only at the end).
type listSink struct {
	entries map[string]memEntry // by archive path
}

func newListSink() *listSink { return &listSink{entries: map[string]memEntry{}} }

// inConfig reports whether rel may lie beneath the service's config/.
func inConfig(rel string) bool {
	first, rest, _ := strings.Cut(rel, "/")
	return first == "config" || strings.HasPrefix(rest, "config/") || rest == "config"
}

func (s *listSink) add(rel string, mode fs.FileMode, sum string) {
	if !inConfig(rel) {
		return
	}
	s.entries[rel] = memEntry{name: path.Base(rel), mode: mode, sum: sum}
	// Parents the archive leaves out are directories.
	for d := path.Dir(rel); d != "." && inConfig(d); d = path.Dir(d) {
		if _, ok := s.entries[d]; ok {
			break
		}
		s.entries[d] = memEntry{name: path.Base(d), mode: fs.ModeDir}
	}
}

func (s *listSink) dir(rel string, _ fs.FileMode) error {
	s.add(rel, fs.ModeDir, "")
	return nil
}

func (s *listSink) file(rel string, _ fs.FileMode, r io.Reader, _ time.Time) (int64, error) {
	if !inConfig(rel) {
		return io.Copy(io.Discard, r)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	s.add(rel, 0, hex.EncodeToString(h.Sum(nil)))
	return n, err
}

func (s *listSink) symlink(rel, target string) error {
	s.add(rel, fs.ModeSymlink, "")
	if e, ok := s.entries[rel]; ok {
		e.target = target
		s.entries[rel] = e
	}
	return nil
}

// link records a hard link with its target's sha256; a target outside
// config/ was not hashed, so such a link, listed in copy, plans as an
// update even when unchanged (the dry run only).
func (s *listSink) link(rel, target string) error {
	s.add(rel, 0, s.entries[target].sum)
	return nil
}

func (s *listSink) finish() error { return nil }

// config returns the config/ beneath the service's root top ("" or the
// archive's single top directory).
func (s *listSink) config(top string) imageConfig {
	prefix := path.Join(top, "config") + "/"
	c := imageConfig{}
	for rel, e := range s.entries {
		if r, ok := strings.CutPrefix(rel, prefix); ok {
			c[r] = e
		}
	}
	return c
}
