package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

// mountFindings are doctor's findings about mounts.
func mountFindings(t *testing.T, h *Host) []string {
	t.Helper()
	h.cfg = nil
	fs, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if strings.Contains(f.What, "mount") {
			out = append(out, f.String()+" | "+f.Fix)
		}
	}
	return out
}

// A service with db_mount = true: doctor reports a var/db/<name> on the
// same mount as var, with the command that fixes it, and deploy refuses;
// with a file system mounted on var/db (root only), both are content.
func TestDBMount(t *testing.T) {
	h := testHost(t)
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, h.Root, map[string]string{
		"var/www/www-db/service.toml":    "command = [\"/bin/sleep\", \"1000\"]\ndb_mount = true\n",
		"var/www/www-plain/service.toml": "command = [\"/bin/sleep\", \"1000\"]\n",
		ConfigFile:                       "db_mount = true\n",
	})
	got := strings.Join(mountFindings(t, h), "\n")
	for _, want := range []string{
		h.Path("var/db/www-db") + ": not on a mount of its own (db_mount = true in the service.toml of www-db): on the mount at ",
		"| mount DEVICE " + h.Path("var/db/www-db") + "  # or one volume on " + h.Path("var/db") + "; then add it to /etc/fstab",
		h.Path("var/db") + ": not a mount point (db_mount = true in etc/upkeep/upkeep.toml): on the mount at ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("doctor does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "www-plain") {
		t.Errorf("www-plain did not ask for a mount:\n%s", got)
	}
	addImage(t, h, "www-data", map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\ndb_mount = true\n"})
	ctx := context.Background()
	_, err := h.Deploy(ctx, nil, "www-data", "", DeployOptions{})
	var me *MountError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "www-data asks for its data on a mount of its own") {
		t.Fatalf("deploy without the mount: %v", err)
	}
	if _, err := os.Lstat(h.Path(serviceRel("www-data"))); err == nil {
		t.Error("deploy switched anyway")
	}
	if entries, _ := os.ReadDir(h.Path(releasesRel("www-data"))); len(entries) != 0 {
		t.Errorf("deploy left a release: %v", names(entries))
	}
	// The daemon's guard refuses the same service a start, and lets the
	// others start.
	guard := DataMountGuard(h.Root)
	if err := guard(&spec.Service{Name: "www-db", DBMount: true}); !errors.As(err, &me) {
		t.Errorf("start guard without the mount: %v", err)
	}
	if err := guard(&spec.Service{Name: "www-plain"}); err != nil {
		t.Errorf("start guard of a service without db_mount: %v", err)
	}

	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs on var/db needs root; the rest of this test is for CI, which runs as root")
	}
	db := h.Path(DBDir)
	if err := unix.Mount("tmpfs", db, "tmpfs", 0, "size=1m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s as root: %v", db, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(db, unix.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", db, err)
		}
	})
	if got := mountFindings(t, h); len(got) != 0 {
		t.Errorf("with a tmpfs on var/db, doctor still says:\n%s", strings.Join(got, "\n"))
	}
	if err := guard(&spec.Service{Name: "www-db", DBMount: true}); err != nil {
		t.Errorf("start guard with a tmpfs on var/db: %v", err)
	}
	if _, err := h.Deploy(ctx, nil, "www-data", "", DeployOptions{}); err != nil {
		t.Fatalf("deploy with the mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(db, "www-data")); err != nil {
		t.Error("the data directory is not on the mount:", err)
	}
}

// mountinfo lines with escaped paths; a path is placed by the deepest
// mount point above it when the kernel does not name the mount.
func TestReadMounts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "my data")
	if err := os.MkdirAll(filepath.Join(data, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	esc := strings.ReplaceAll(data, " ", `\040`)
	file := filepath.Join(dir, "mountinfo")
	os.WriteFile(file, []byte(
		"900001 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"+
			"900002 900001 0:5 / "+esc+" rw shared:2 master:1 - tmpfs my\\040disk rw,size=1024k\n"+
			"broken line\n"), 0o644)
	old := mountsFile
	mountsFile = file
	t.Cleanup(func() { mountsFile = old })
	ms, err := readMounts()
	if err != nil || len(ms) != 2 {
		t.Fatalf("%v %v", ms, err)
	}
	if ms[1].Dir != data || ms[1].FSType != "tmpfs" || ms[1].Source != "my disk" {
		t.Errorf("second mount: %+v", ms[1])
	}
	for p, want := range map[string]int{filepath.Join(data, "x", "not-yet"): 900002, data: 900002, dir: 900001} {
		m, err := mountOf(ms, p)
		if err != nil || m.ID != want {
			t.Errorf("mountOf(%s) = %v %v, want %d", p, m, err, want)
		}
	}
}
