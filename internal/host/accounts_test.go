package host

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"upkeep/internal/spec"
)

const basePasswd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
const baseGroup = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"

// An image root with account files of its own: provision adds the
// services' accounts there, and never changes a line that was there.
func TestProvisionCreatesAccountsUnderRoot(t *testing.T) {
	h := testHost(t)
	h.IsRoot = os.Geteuid() == 0
	writeFiles(t, h.Root, map[string]string{
		"etc/passwd": basePasswd, "etc/group": baseGroup, "etc/shadow": "root:*:19000:0:99999:7:::\n",
		"usr/sbin/nologin":                "",
		"var/www/www-app/service.toml":    "command = [\"/bin/true\"]\nuser = \"nodejs\"\ngroups = [\"web\"]\n",
		"var/www/www-admin/service.toml":  "command = [\"/bin/true\"]\nuser = \"admin\"\ngroup = \"staff\"\n",
		"var/www/www-nobody/service.toml": "command = [\"/bin/true\"]\nuser = \"nobody\"\n",
	})
	want, err := AccountsToCreate(h.Root, loadAll(t, h.Root))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, []string{"group staff (of www-admin)", "group web (of www-app)", "user admin (of www-admin)", "user nodejs (of www-app)"}) {
		t.Errorf("AccountsToCreate: %q", want)
	}

	res, err := h.Provision(true)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, f := range res.Done {
		plan = append(plan, f.Fix)
	}
	all := strings.Join(plan, "\n")
	if !strings.Contains(all, "echo 'nodejs:x:") || !strings.Contains(all, ">> "+h.Path("etc/passwd")) {
		t.Errorf("dry run plan:\n%s", all)
	}
	if b, _ := os.ReadFile(h.Path("etc/passwd")); string(b) != basePasswd {
		t.Fatal("the dry run changed etc/passwd")
	}

	if res, err = h.Provision(false); err != nil {
		t.Fatal(err)
	}
	if len(res.Left)+len(res.Skipped) > 0 {
		t.Errorf("left %v, skipped %v", res.Left, res.Skipped)
	}
	b, _ := os.ReadFile(h.Path("etc/passwd"))
	if !strings.HasPrefix(string(b), basePasswd) {
		t.Fatalf("existing lines changed:\n%s", b)
	}
	added := strings.Split(strings.TrimSuffix(strings.TrimPrefix(string(b), basePasswd), "\n"), "\n")
	slices.Sort(added)
	if len(added) != 2 || !strings.HasPrefix(added[0], "admin:x:") || !strings.HasPrefix(added[1], "nodejs:x:") ||
		!strings.HasSuffix(added[1], ":/var/db/www-app:/usr/sbin/nologin") {
		t.Errorf("added to etc/passwd: %q", added)
	}
	g, _ := os.ReadFile(h.Path("etc/group"))
	if !strings.HasPrefix(string(g), baseGroup) || !strings.Contains(string(g), "\nweb:x:") || !strings.Contains(string(g), "\nstaff:x:") || !strings.Contains(string(g), "\nnodejs:x:") {
		t.Errorf("etc/group:\n%s", g)
	}
	if s, _ := os.ReadFile(h.Path("etc/shadow")); !strings.Contains(string(s), "\nnodejs:!:") {
		t.Errorf("etc/shadow:\n%s", s)
	}
	// admin's primary group is staff.
	db, _ := h.accountDB()
	admin, _ := db.User("admin")
	staff, _ := db.GroupByName("staff")
	if admin.GID != staff.ID {
		t.Errorf("admin's gid %d, staff is %d", admin.GID, staff.ID)
	}
	if h.IsRoot {
		nodejs, _ := db.User("nodejs")
		for _, p := range []string{"var/db/www-app", "var/log/www-app.log", "var/log/www-app.error.log"} {
			fi, err := os.Stat(h.Path(p))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != nodejs.ID || int(st.Gid) != nodejs.GID {
				t.Errorf("%s owned by %d:%d, want nodejs %d:%d", p, st.Uid, st.Gid, nodejs.ID, nodejs.GID)
			}
		}
	}
	// Again: nothing to do, and the files are byte-identical.
	res, err = h.Provision(false)
	if err != nil || len(res.Done) > 0 {
		t.Errorf("second provision: %v %v", res.Done, err)
	}
	if b2, _ := os.ReadFile(h.Path("etc/passwd")); string(b2) != string(b) {
		t.Error("second provision changed etc/passwd")
	}
	if want, _ := AccountsToCreate(h.Root, loadAll(t, h.Root)); len(want) > 0 {
		t.Errorf("AccountsToCreate after provision: %q", want)
	}
}

func TestBrokenPasswdIsReportedNotRewritten(t *testing.T) {
	h := testHost(t)
	writeFiles(t, h.Root, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root\n", "etc/group": baseGroup,
		"var/www/www-app/service.toml": "command = [\"/bin/true\"]\nuser = \"nodejs\"\n",
	})
	res, err := h.Provision(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Left) != 1 || !strings.Contains(res.Left[0].What, "etc/passwd:1:1:") {
		t.Errorf("left: %v", res.Left)
	}
	if b, _ := os.ReadFile(h.Path("etc/passwd")); string(b) != "root:x:0:0:root:/root\n" {
		t.Error("a broken etc/passwd was rewritten")
	}
}

func loadAll(t *testing.T, root string) []*spec.Service {
	t.Helper()
	hs, err := spec.LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []*spec.Service
	for _, n := range hs.Names() {
		out = append(out, hs.Services[n])
	}
	return out
}
