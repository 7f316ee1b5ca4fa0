package paths

import "testing"

// TestTable holds the paths to shared/DESIGN.md's table: a change here is a
// change of the contract with users' scripts, and must be made there too.
func TestTable(t *testing.T) {
	const root = "/r"
	for _, c := range []struct{ got, want string }{
		{Service(root, "www-a"), "/r/var/www/www-a"},
		{ReleaseRel("www-a", "1.2"), "var/www/.releases/www-a/1.2"},
		{ReleasesRel("www-a"), "var/www/.releases/www-a"},
		{ReleaseLink("www-a", "1.2"), ".releases/www-a/1.2"},
		{Log(root, "www-a"), "/r/var/log/www-a.log"},
		{ErrorLog(root, "www-a"), "/r/var/log/www-a.error.log"},
		{DaemonLog(root), "/r/var/log/upkeep.log"},
		{DBRel("www-a"), "var/db/www-a"},
		{Socket(root), "/r/run/upkeep/upkeep.sock"},
		{PidFile(root, "www-a"), "/r/run/upkeep/www-a.pid"},
		{StateRecord(root, "www-a"), "/r/run/upkeep/www-a.state"},
		{StateDir, "var/lib/upkeep"},
		{PolicyFile, "etc/upkeep/policy.toml"},
		{ConfigFile, "etc/upkeep/upkeep.toml"},
		{Socket("/"), "/run/upkeep/upkeep.sock"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}
