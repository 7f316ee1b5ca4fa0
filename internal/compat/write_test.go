package compat

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteService(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "www")
	outside := t.TempDir()
	data := []byte("command = [\"/bin/true\"]\n")

	file, err := WriteService(dir, "api-a", data, false)
	if err != nil || file != filepath.Join(dir, "api-a", "service.toml") {
		t.Fatalf("first write: %q, %v", file, err)
	}
	if _, err := WriteService(dir, "api-a", []byte("x"), false); !errors.Is(err, ErrExists) {
		t.Errorf("second write without force: %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(file); string(got) != string(data) {
		t.Errorf("file replaced without force: %q", got)
	}
	if _, err := WriteService(dir, "api-a", []byte("y"), true); err != nil {
		t.Errorf("write with force: %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "y" {
		t.Errorf("force did not replace: %q", got)
	}
	for _, bad := range []string{"../x", "a/b", "..", "", "/etc", "UPPER"} {
		if _, err := WriteService(dir, bad, data, true); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	// A service directory that is a symlink out of dir is refused.
	if err := os.Symlink(outside, filepath.Join(dir, "api-out")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteService(dir, "api-out", data, true); err == nil {
		t.Error("wrote through a symlink out of dir")
	}
	if _, err := os.Stat(filepath.Join(outside, "service.toml")); err == nil {
		t.Error("service.toml appeared outside dir")
	}
	// A service.toml that is a symlink is refused, even with force.
	os.MkdirAll(filepath.Join(dir, "api-link"), 0o755)
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "api-link", "service.toml"))
	if _, err := WriteService(dir, "api-link", data, true); err == nil {
		t.Error("wrote through a service.toml symlink")
	}
	// A symlink inside dir (a release) is followed.
	rel := filepath.Join(dir, ".releases", "api-rel", "1")
	os.MkdirAll(rel, 0o755)
	os.Symlink(rel, filepath.Join(dir, "api-rel"))
	if _, err := WriteService(dir, "api-rel", data, false); err != nil {
		t.Errorf("release symlink: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rel, "service.toml")); err != nil {
		t.Errorf("release symlink: %v", err)
	}
}
