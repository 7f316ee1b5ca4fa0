package supervise

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A service's exec check and its exec action run as the service's user, in
// its directory, not as the daemon: service.toml cannot get root through a
// check. Each reports its uid from inside.
func TestChecksAndHooksRunAsTheServicesUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody (the tests run as root on Debian, which has it): %v", err)
	}
	h := newHost(t)
	out := filepath.Join(h.root, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(out, 0o777) // past the umask
	h.write("service-who", `user = "nobody"
command = ["/bin/sleep", "1000"]
[[check]]
name = "who"
type = "exec"
command = ["/bin/sh", "-c", "id -u > `+out+`/check.uid; pwd > `+out+`/check.pwd; exit 1"]
interval = "50ms"
grace = "0s"
cycles = 1
then = "exec"
exec = ["/bin/sh", "-c", "id -u > `+out+`/hook.uid.tmp && mv `+out+`/hook.uid.tmp `+out+`/hook.uid"]
`)
	h.start()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return strings.TrimSpace(string(b))
	}
	h.eventually(10*time.Second, "the hook's uid", func() bool { return read("hook.uid") != "" })
	for _, f := range []string{"check.uid", "hook.uid"} {
		if got := read(f); got != nobody.Uid {
			t.Errorf("%s = %q, want nobody's uid %s", f, got, nobody.Uid)
		}
	}
	if got, want := read("check.pwd"), filepath.Join(h.root, "var/www/service-who"); got != want {
		t.Errorf("the check ran in %q, want the service's directory %s", got, want)
	}
}
