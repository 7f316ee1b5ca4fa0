package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A symlink planted anywhere on the way is reported, never followed: no
// operation of tree writes outside it.
func TestTreeDoesNotFollowPlantedSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "var"), 0o755)
	os.Symlink(outside, filepath.Join(root, "etc"))
	os.Symlink(outside, filepath.Join(root, "var/lib"))
	os.Symlink("../etc", filepath.Join(root, "relative"))
	tr := tree{root}
	for _, rel := range []string{"etc/passwd", "etc/sub/x", "var/lib/upkeep/x", "relative/x"} {
		check := func(op string, err error) {
			t.Helper()
			var se *SymlinkError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "is a symlink") {
				t.Errorf("%s %s: got %v, want a SymlinkError", op, rel, err)
			}
		}
		_, err := tr.WriteFile(rel, strings.NewReader("pwned"), 0o644)
		check("WriteFile", err)
		check("Symlink", tr.Symlink("/x", rel))
		_, err = tr.MkdirAll(rel, 0o755)
		check("MkdirAll", err)
		_, err = tr.Lstat(rel)
		check("Lstat", err)
		check("Remove", tr.Remove(rel))
		check("RemoveAll", tr.RemoveAll(rel))
		check("Chmod", tr.Chmod(rel, 0o777))
		_, err = tr.Open(rel)
		check("Open", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside: %v", entries)
	}
	// The last component is not followed either: WriteFile and Symlink
	// replace a symlink, they do not write through it.
	os.WriteFile(filepath.Join(outside, "target"), []byte("keep"), 0o644)
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(root, "var/link"))
	if _, err := tr.WriteFile("var/link", strings.NewReader("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "keep" {
		t.Error("WriteFile wrote through a final symlink")
	}
	if fi, _ := os.Lstat(filepath.Join(root, "var/link")); !fi.Mode().IsRegular() {
		t.Error("var/link is not the new file")
	}
	if _, err := tr.MkdirAll("../x", 0o755); err == nil {
		t.Error("a .. path was accepted")
	}
}

func TestTreeSymlinkAndExchange(t *testing.T) {
	root := t.TempDir()
	tr := tree{root}
	made, err := tr.MkdirAll("a/b/c", 0o750)
	if err != nil || strings.Join(made, " ") != "a a/b a/b/c" {
		t.Fatalf("made %v, %v", made, err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "a/b/c")); fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v despite the umask", fi.Mode().Perm())
	}
	if made, _ := tr.MkdirAll("a/b/c", 0o750); len(made) != 0 {
		t.Errorf("made again: %v", made)
	}
	if err := tr.Symlink("one", "a/l"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Symlink("two", "a/l"); err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Readlink("a/l"); got != "two" {
		t.Errorf("a/l -> %s", got)
	}
	// A real directory swapped for a symlink in one step.
	os.WriteFile(filepath.Join(root, "a/b/c/f"), []byte("x"), 0o644)
	old, err := tr.Exchange("target", "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Readlink("a/b"); got != "target" {
		t.Errorf("a/b -> %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, old, "c/f")); string(b) != "x" {
		t.Errorf("the old directory is not at %s", old)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "a"))
	if len(entries) != 3 {
		t.Errorf("a/ holds %v", names(entries))
	}
}
