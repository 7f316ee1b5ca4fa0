package host

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestLinkDB(t *testing.T) {
	h := testHost(t)
	var out bytes.Buffer
	h.Out = &out
	vol := t.TempDir() // the separate mount, outside the root
	writeFiles(t, h.Root, map[string]string{"var/www/service-db/service.toml": "command = [\"/bin/true\"]\n"})
	if err := h.LinkDB("service-db", vol+"/missing", false); err == nil || !strings.Contains(err.Error(), "mount the volume") {
		t.Errorf("a missing target: %v", err)
	}
	if err := h.LinkDB("service-db", "rel/path", false); err == nil {
		t.Error("a relative target was accepted")
	}
	if err := h.LinkDB("../x", vol, false); err == nil {
		t.Error("a bad name was accepted")
	}
	// An empty data directory (what provision makes) is replaced.
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkDB("service-db", vol, true); err != nil || !strings.Contains(out.String(), "would run: ln -sfn "+vol) {
		t.Errorf("dry run: %v %q", err, out.String())
	}
	if fi, err := os.Lstat(h.Path("var/db/service-db")); err != nil || !fi.IsDir() {
		t.Fatal("the dry run changed var/db/service-db")
	}
	if err := h.LinkDB("service-db", vol, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(h.Path("var/db/service-db")); got != vol {
		t.Fatalf("var/db/service-db -> %q, want %s", got, vol)
	}
	// Idempotent, and provision (and doctor) accept the link.
	if err := h.LinkDB("service-db", vol, false); err != nil {
		t.Error(err)
	}
	if fs, err := h.Check(); err != nil || len(fs) > 0 {
		t.Errorf("doctor after --db: %v %v", fs, err)
	}
	// A link elsewhere, or a directory with data, is refused.
	if err := h.LinkDB("service-db", t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "already links to") {
		t.Errorf("relinking: %v", err)
	}
	writeFiles(t, h.Root, map[string]string{"var/db/www-full/data.bin": "x"})
	if err := h.LinkDB("www-full", vol, false); err == nil || !strings.Contains(err.Error(), "holds data") {
		t.Errorf("over data: %v", err)
	}
	if b, err := os.ReadFile(h.Path("var/db/www-full/data.bin")); err != nil || string(b) != "x" {
		t.Error("the data was touched")
	}
	// A dangling link (the volume not mounted) is reported.
	os.Remove(vol)
	fs, _ := h.Check()
	if len(fs) != 1 || !strings.Contains(fs[0].What, "dangling symlink") {
		t.Errorf("doctor with the volume gone: %v", fs)
	}
}
