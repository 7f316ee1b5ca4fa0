package host

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteLogrotate(t *testing.T) {
	h := testHost(t)
	for _, text := range []string{"first\n", "second\n"} {
		p, err := h.WriteLogrotate("www-a", text)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(h.Root, "etc/logrotate.d/www-a"); p != want {
			t.Errorf("wrote %s, want %s", p, want)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != text {
			t.Errorf("%s holds %q (%v), want %q", p, b, err, text)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	if _, err := h.WriteLogrotate("../x", "x"); err == nil {
		t.Error("a bad name was written")
	}

	// A symlink beneath the root is refused, and nothing lands outside.
	h2 := testHost(t)
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(h2.Root, "etc"), 0o755)
	if err := os.Symlink(outside, filepath.Join(h2.Root, "etc/logrotate.d")); err != nil {
		t.Fatal(err)
	}
	var se *SymlinkError
	if _, err := h2.WriteLogrotate("www-a", "x"); !errors.As(err, &se) {
		t.Errorf("through a symlink: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("written outside the root: %v", entries)
	}
}
