package sandbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Change is one entry of the overlay's upper layer that the service made:
// created, changed, or deleted (a whiteout).
type Change struct {
	Path string `json:"path"` // beneath /, slash-separated
	What string `json:"what"` // created | changed | deleted
}

type entry struct {
	mode  fs.FileMode
	size  int64
	mtime int64
	white bool
}

// snapshot walks an upper layer. Errors inside the walk are skipped: the
// service may be removing files while we look.
func snapshot(upper string) map[string]entry {
	m := map[string]entry{}
	_ = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, upper+"/"))
		e := entry{mode: info.Mode(), size: info.Size(), mtime: info.ModTime().UnixNano()}
		// overlayfs marks a deleted lower file with a 0/0 character device.
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			e.white = true
		}
		m[rel] = e
		return nil
	})
	return m
}

// diff lists what after has that before had not (or had otherwise),
// leaving out the service's own places. Directories count only when new:
// a file written into /tmp changes /tmp's mtime too.
func diff(before, after map[string]entry, name string) []Change {
	var cs []Change
	for p, a := range after {
		if own(p, name) {
			continue
		}
		b, had := before[p]
		switch {
		case a.white && !(had && b.white):
			cs = append(cs, Change{p, "deleted"})
		case a.white:
		case !had && a.mode.IsDir() && holdsOwn(p, name):
			// var/, var/log/: only on the way to the service's own places
		case !had:
			cs = append(cs, Change{p, "created"})
		case a.mode.IsDir():
		case a.mode != b.mode || a.size != b.size || a.mtime != b.mtime:
			cs = append(cs, Change{p, "changed"})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Path < cs[j].Path })
	return cs
}

// own reports whether p is one of the places a service is expected to write.
func own(p, name string) bool {
	for _, pre := range []string{"var/www/" + name, "var/db/" + name, "run/upkeep"} {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return strings.HasPrefix(p, "var/log/"+name) || p == "var/log/upkeep.log" || strings.HasPrefix(p, "var/log/upkeep.log.")
}

// holdsOwn reports whether directory p is on the way to one of the
// service's own places.
func holdsOwn(p, name string) bool {
	for _, o := range []string{"var/www/" + name, "var/db/" + name, "var/log/" + name, "run/upkeep"} {
		if strings.HasPrefix(o, p+"/") {
			return true
		}
	}
	return false
}

func readTail(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines[max(0, len(lines)-n):]
}
