package host

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadImage feeds readImage arbitrary archives. Whatever it accepts
// unpacks into its staging directory, and every symlink there resolves
// inside the service's root.
func FuzzReadImage(f *testing.F) {
	f.Add(makeTar(f, okTOML))
	f.Add(makeTar(f, okTOML, tarEntry{name: "a/b", typ: tar.TypeSymlink, link: "../c"}, tarEntry{name: "h", typ: tar.TypeLink, link: "service.toml"}))
	f.Add(makeTar(f, tarEntry{name: "top/service.toml", body: okTOML.body}, tarEntry{name: "top/l", typ: tar.TypeSymlink, link: "x/.."}))
	f.Add(makeTar(f, okTOML, tarEntry{name: "l", typ: tar.TypeSymlink, link: "."}, tarEntry{name: "m", typ: tar.TypeSymlink, link: "l/l/l"}))
	lim := Limits{MaxSize: 1 << 20, MaxFiles: 200}
	parent := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, cerr := readImage(bytes.NewReader(data), lim, checkOnly{})
		h := &Host{}
		u, err := h.unpack(bytes.NewReader(data), lim, parent)
		if (cerr == nil) != (err == nil) {
			t.Fatalf("check says %v, unpack says %v", cerr, err)
		}
		if err != nil {
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Fatalf("a refused image left %v", names(entries))
			}
			return
		}
		defer removeAll(u.Staging)
		root, _ := filepath.EvalSymlinks(u.Dir)
		filepath.WalkDir(u.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling, or a loop the kernel would refuse
			}
			if real != root && !strings.HasPrefix(real, root+"/") {
				t.Fatalf("symlink %s resolves to %s, outside %s", p, real, root)
			}
			return nil
		})
	})
}
