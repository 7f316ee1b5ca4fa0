package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAccountsCheck(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("nodejs:x:990:990::/var/db/api-app:/usr/sbin/nologin\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("nodejs:x:990:\nweb:x:991:nodejs\n"), 0o644)
	a, err := LoadAccounts(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body string
		want       string // "" for no problem
	}{
		{"the root's user and groups", "user = \"nodejs\"\ngroup = \"web\"\ngroups = [\"nodejs\", \"991\"]", ""},
		{"the host's root user", "user = \"root\"", ""}, // the daemon resolves on the host
		{"by number", "user = \"990\"", ""},
		{"a user provision creates", "user = \"nosuchuser\"", "2:1: warning: user: user nosuchuser does not exist; `upkeep provision` will create it"},
		{"a group provision creates", "user = \"nodejs\"\ngroup = \"nosuchgroup\"", "3:1: warning: group: group nosuchgroup does not exist; `upkeep provision` will create it"},
		{"a supplementary group", "groups = [\"web\", \"nosuchgroup\"]", "2:1: groups: group nosuchgroup does not exist (not in " + root + "/etc nor on this host)"},
		{"a name useradd refuses", "user = \"No.Such\"", "2:1: user: user No.Such does not exist (not in " + root + "/etc nor on this host)"},
		{"an unknown uid", "user = \"4242424\"", "2:1: user: user 4242424 does not exist (not in " + root + "/etc nor on this host)"},
	} {
		dir := filepath.Join(root, WWW, "api-app")
		os.MkdirAll(dir, 0o755)
		body := "command = [\"/bin/true\"]\n" + tc.body + "\n"
		os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644)
		s, ps := Load(root, dir)
		if s == nil {
			t.Fatalf("%s: %v", tc.name, ps)
		}
		got := a.Check(s)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: %v", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.HasSuffix(got[0].String(), "service.toml:"+tc.want)):
			t.Errorf("%s:\n got %v\nwant …service.toml:%s", tc.name, got, tc.want)
		}
	}
}
