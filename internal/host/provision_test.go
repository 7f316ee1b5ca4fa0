package host

import (
	"os"
	"strings"
	"testing"
)

// Findings provision cannot make up for itself: doctor names them with a
// fix, provision leaves them and says so.
func TestDoctorFindings(t *testing.T) {
	h := testHost(t)
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, h.Root, map[string]string{ConfigFile: "db_mount = true\n"})
	os.Symlink(".releases/www-gone/1.0", h.Path(serviceRel("www-gone")))
	os.Symlink("/nowhere/at/all", h.HomePath("log/foreign.log"))
	writeFiles(t, h.Root, map[string]string{"var/db/www-open/x": ""})
	os.Chmod(h.Path("var/db/www-open"), 0o777)
	writeFiles(t, h.Root, map[string]string{"var/www/www-open/service.toml": "command = [\"/bin/true\"]\n"})
	h.cfg = nil
	fs, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.String()+" | "+f.Fix)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		h.Path(DBDir) + ": not a mount point (db_mount = true in etc/upkeep/upkeep.toml): on the mount at ",
		"| mount DEVICE " + h.Path(DBDir) + "  # the data volume; then add it to /etc/fstab",
		h.Path("var/www/www-gone") + ": dangling symlink (-> .releases/www-gone/1.0) | upkeep rollback www-gone",
		h.HomePath("log/foreign.log") + ": dangling symlink (-> /nowhere/at/all) | rm " + h.HomePath("log/foreign.log"),
		h.Path("var/db/www-open") + ": world-writable (0777) | chmod o-w " + h.Path("var/db/www-open"),
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing finding %q in:\n%s", want, all)
		}
	}
	res, err := h.Provision(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Left) != 3 {
		t.Errorf("left %d findings, want 3 (mount, dangling service, foreign link): %v", len(res.Left), res.Left)
	}
	if fi, _ := os.Stat(h.Path("var/db/www-open")); fi.Mode().Perm() != 0o775 {
		t.Errorf("var/db/www-open mode %v after provision", fi.Mode().Perm())
	}
}
