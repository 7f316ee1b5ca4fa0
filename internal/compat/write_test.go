package compat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// WriteServices writes many files in one go: each one whole or not at
// all, an error keeping back its own service only, no temporary file or
// empty directory left behind.
func TestWriteServices(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "www")
	outside := t.TempDir()
	old := []byte("command = [\"/bin/old\"]\n")
	if _, err := WriteService(dir, "api-old", old, false); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "api-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var files []ServiceFile
	for i := range 300 {
		files = append(files, ServiceFile{Name: fmt.Sprintf("api-%03d", i), Data: []byte(fmt.Sprintf("command = [\"/bin/%d\"]\n", i))})
	}
	files = append(files,
		ServiceFile{Name: "api-old", Data: []byte("new")},   // exists
		ServiceFile{Name: "api-out", Data: []byte("x")},     // a symlink out of dir
		ServiceFile{Name: "Bad Name", Data: []byte("x")},    // not a name
		ServiceFile{Name: "api-001", Data: []byte("twice")}, // given twice
		ServiceFile{Name: "api-file", Data: []byte("x")},    // a file where its directory goes
	)
	ws := WriteServices(dir, files, false)
	if len(ws) != len(files) {
		t.Fatalf("%d results for %d files", len(ws), len(files))
	}
	for i, w := range ws[:300] {
		got, err := os.ReadFile(filepath.Join(dir, files[i].Name, "service.toml"))
		if w.Err != nil || err != nil || string(got) != string(files[i].Data) || w.File != filepath.Join(dir, files[i].Name, "service.toml") {
			t.Errorf("%s: %+v, %q, %v", files[i].Name, w, got, err)
		}
	}
	if !errors.Is(ws[300].Err, ErrExists) || ws[300].File == "" {
		t.Errorf("existing file: %+v", ws[300])
	}
	for _, w := range ws[301:] {
		if w.Err == nil {
			t.Errorf("%s: written", w.Name)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "api-old", "service.toml")); string(got) != string(old) {
		t.Errorf("replaced without force: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "api-001", "service.toml")); string(got) != "command = [\"/bin/1\"]\n" {
		t.Errorf("the second of a name was written: %q", got)
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("written outside dir: %v", entries)
	}
	// Nothing temporary is left, and no directory was made for nothing.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".service.toml") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "Bad Name")); err == nil {
		t.Error("a directory for a bad name")
	}
	// With force, every file is replaced.
	for i := range files[:300] {
		files[i].Data = []byte("replaced")
	}
	for _, w := range WriteServices(dir, files[:300], true) {
		if got, _ := os.ReadFile(w.File); w.Err != nil || string(got) != "replaced" {
			t.Errorf("force: %+v %q", w, got)
		}
	}
}

// linkNew is commit's way on file systems without RENAME_NOREPLACE
// (tmpfs and ext4 have it, so WriteServices never gets there in tests).
func TestLinkNew(t *testing.T) {
	dir := t.TempDir()
	tmp, file := filepath.Join(dir, ".service.toml.1"), filepath.Join(dir, "service.toml")
	if err := os.WriteFile(tmp, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := linkNew(tmp, file); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(file); string(got) != "new" {
		t.Fatalf("service.toml holds %q", got)
	}
	other := filepath.Join(dir, ".service.toml.2")
	if err := os.WriteFile(other, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := linkNew(other, file); !errors.Is(err, ErrExists) {
		t.Fatalf("over an existing file: %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "new" {
		t.Fatalf("service.toml replaced: %q", got)
	}
}
