package accounts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, body := range files {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.Contains(rel, "shadow") {
			mode = 0o640
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A passwd without a final newline and with odd lines: all kept byte for byte.
const passwd = "root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n+@nis::::::\n\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"

func TestAddUserKeepsExistingLines(t *testing.T) {
	root := writeRoot(t, map[string]string{
		Passwd:  passwd,
		Group:   "root:x:0:\nsystemd-network:x:998:\nnogroup:x:65534:\n",
		Shadow:  "root:*:19000:0:99999:7:::\n",
		GShadow: "root:*::\n",
		// login.defs: a narrower range than the default.
		LoginDefs: "# comment\nSYS_UID_MIN  200\nSYS_UID_MAX 998\nSYS_GID_MIN 200\nSYS_GID_MAX 998\n",
	})
	before := map[string]string{}
	for _, f := range []string{Passwd, Group, Shadow, GShadow} {
		b, _ := os.ReadFile(filepath.Join(root, f))
		before[f] = string(b)
	}
	lines, err := Add(root, Account{Kind: "user", Name: "nodejs", Home: "/var/db/www-app", Shell: "/usr/sbin/nologin"})
	if err != nil {
		t.Fatal(err)
	}
	// 998 is taken (as uid and gid): the next free from the top.
	want := map[string]string{
		Passwd:  "nodejs:x:997:997::/var/db/www-app:/usr/sbin/nologin",
		Group:   "nodejs:x:997:",
		GShadow: "nodejs:!::",
	}
	for f, l := range want {
		if lines[f] != l {
			t.Errorf("%s: added %q, want %q", f, lines[f], l)
		}
	}
	if !strings.HasPrefix(lines[Shadow], "nodejs:!:") {
		t.Errorf("shadow: added %q", lines[Shadow])
	}
	for f, old := range before {
		b, _ := os.ReadFile(filepath.Join(root, f))
		sep := ""
		if !strings.HasSuffix(old, "\n") {
			sep = "\n"
		}
		if string(b) != old+sep+lines[f]+"\n" {
			t.Errorf("%s is not its old bytes plus one line:\n%q", f, b)
		}
		fi, _ := os.Stat(filepath.Join(root, f))
		if wantMode := map[bool]os.FileMode{true: 0o640, false: 0o644}[strings.Contains(f, "shadow")]; fi.Mode().Perm() != wantMode {
			t.Errorf("%s mode %v, want %v", f, fi.Mode().Perm(), wantMode)
		}
	}
	// Again: nothing changes.
	if lines, err := Add(root, Account{Kind: "user", Name: "nodejs"}); err != nil || len(lines) != 0 {
		t.Errorf("second Add: %v %v", lines, err)
	}
	// No temp file left.
	if m, _ := filepath.Glob(filepath.Join(root, "etc", ".*upkeep*")); len(m) > 0 {
		t.Errorf("left %v", m)
	}
	// Debian's own tools read the result (pwck -r: read-only check).
	if _, err := exec.LookPath("pwck"); err == nil {
		out, err := exec.Command("pwck", "-r", "-q", filepath.Join(root, Passwd), filepath.Join(root, Shadow)).CombinedOutput()
		if strings.Contains(string(out), "nodejs") {
			t.Errorf("pwck on the new line: %v\n%s", err, out)
		}
	}
}

func TestAddUserToNamedGroupAndGroupOnly(t *testing.T) {
	root := writeRoot(t, map[string]string{Passwd: "root:x:0:0::/root:/bin/sh\n", Group: "root:x:0:\n"})
	if _, err := Add(root, Account{Kind: "group", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(root, Account{Kind: "user", Name: "www", Group: "web", Home: "/var/db/www-x", Shell: "/bin/false"}); err != nil {
		t.Fatal(err)
	}
	db, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := db.GroupByName("web")
	u, ok := db.User("www")
	if !ok || g.ID != 999 || u.GID != 999 || u.ID != 999 {
		t.Errorf("web %+v, www %+v", g, u)
	}
	// No shadow files here: none are made.
	if _, err := os.Stat(filepath.Join(root, Shadow)); err == nil {
		t.Error("made etc/shadow")
	}
	if _, err := Add(root, Account{Kind: "user", Name: "x", Group: "nosuch"}); err == nil {
		t.Error("a user of a missing group was added")
	}
}

func TestAddWaitsForLckpwdf(t *testing.T) {
	root := writeRoot(t, map[string]string{Passwd: "root:x:0:0::/root:/bin/sh\n", Group: "root:x:0:\n"})
	// Another process holds lckpwdf's lock (a POSIX lock: it must be
	// another process, since a process never conflicts with itself).
	lock := filepath.Join(root, LockFile)
	os.WriteFile(lock, nil, 0o600)
	// python3's lockf takes an fcntl lock, as lckpwdf does (flock(1)
	// takes flock(2), which would not conflict).
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 to hold an fcntl lock")
	}
	holder := exec.Command("python3", "-c", "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()", lock)
	stdin, _ := holder.StdinPipe()
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); holder.Wait() })
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "locked\n" {
		t.Fatalf("lock holder: %q %v", l, err)
	}
	old := LockWait
	LockWait = 200 * time.Millisecond
	t.Cleanup(func() { LockWait = old })
	if _, err := Add(root, Account{Kind: "group", Name: "g"}); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("Add while locked: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, Group)); string(b) != "root:x:0:\n" {
		t.Errorf("wrote while locked: %q", b)
	}
	stdin.Close()
	holder.Wait()
	if _, err := Add(root, Account{Kind: "group", Name: "g"}); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrorsSayWhere(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"root:x:0:0::/root\n", "etc/passwd:1:1: 6 fields"},
		{"root:x:0:0::/root:/bin/sh\nbad:x:zero:0::/:/bin/sh\n", "etc/passwd:2:7: id \"zero\""},
		{"a:x:1:g::/:/bin/sh\n", "etc/passwd:1:7: group id \"g\""},
		{":x:1:1::/:/bin/sh\n", "etc/passwd:1:1: empty name"},
	} {
		_, err := Parse(Passwd, tc.data, 7)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %s…", tc.data, err, tc.want)
		}
	}
	root := writeRoot(t, map[string]string{Passwd: "broken\n", Group: "root:x:0:\n"})
	if _, err := Add(root, Account{Kind: "group", Name: "g"}); err == nil {
		t.Error("Add on a broken passwd")
	}
	if b, _ := os.ReadFile(filepath.Join(root, Group)); string(b) != "root:x:0:\n" {
		t.Error("wrote beside a broken passwd")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(passwd, 7)
	f.Add("root:x:0:\nadm:x:4:syslog,me\n", 4)
	f.Add("a:b:c", 7)
	f.Add("+\n-x\n\n", 4)
	f.Fuzz(func(t *testing.T, data string, fields int) {
		if fields != 4 {
			fields = 7
		}
		es, err := Parse("f", data, fields)
		if err != nil {
			return
		}
		// Every line is kept as it was.
		var lines []string
		for _, e := range es {
			lines = append(lines, e.Line)
		}
		if got := strings.Join(lines, "\n"); got != strings.TrimSuffix(data, "\n") {
			t.Errorf("lines not kept: %q from %q", got, data)
		}
	})
}

func FuzzParseLoginDefs(f *testing.F) {
	f.Add("SYS_UID_MIN 100\nSYS_UID_MAX 999\n")
	f.Add("SYS_UID_MIN 5000\nSYS_UID_MAX 10\n")
	f.Fuzz(func(t *testing.T, data string) {
		u, g := ParseLoginDefs(data)
		if u.Min > u.Max || g.Min > g.Max {
			t.Errorf("a range upside down: %v %v", u, g)
		}
	})
}
