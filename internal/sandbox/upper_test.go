package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiffUpperLayer(t *testing.T) {
	up := t.TempDir()
	mk := func(rel, body string) {
		p := filepath.Join(up, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc/provisioned.conf", "a")
	mk("etc/changed.conf", "a")
	mk("tmp/.keep", "")
	before := snapshot(up)
	mk("etc/changed.conf", "ab")
	mk("tmp/x", "written")
	mk("var/log/www-a.log", "own")
	mk("var/log/www-a.error.log.1", "own")
	mk("var/db/www-a/data", "own")
	mk("var/www/www-a/cache", "own")
	mk("run/upkeep/www-a.pid", "1")
	mk("var/db/www-b/data", "not its own")
	if os.Geteuid() == 0 { // a whiteout is a 0/0 character device
		if err := unix.Mknod(filepath.Join(up, "etc/gone.conf"), unix.S_IFCHR|0o000, 0); err != nil {
			t.Fatal(err)
		}
	}
	got := diff(before, snapshot(up), "www-a")
	want := []Change{{"etc/changed.conf", "changed"}}
	if os.Geteuid() == 0 {
		want = append(want, Change{"etc/gone.conf", "deleted"})
	}
	want = append(want, Change{"tmp/x", "created"}, Change{"var/db/www-b", "created"}, Change{"var/db/www-b/data", "created"})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestReadTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if got := readTail(p, 2); got != nil {
		t.Errorf("missing file: %q", got)
	}
	if err := os.WriteFile(p, []byte("1\n2\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readTail(p, 2); !reflect.DeepEqual(got, []string{"2", "3"}) {
		t.Errorf("got %q", got)
	}
}
