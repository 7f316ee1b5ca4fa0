package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func TestCheckPath(t *testing.T) {
	p := Default()
	p.Overlay.Deny = []string{"etc/nginx/sites-available/default"}
	const name = "www-blog"
	for _, tc := range []struct {
		rel  string
		dir  bool
		rule string // "" allowed; "-" refused by no allow rule; "!" refused for another reason
	}{
		{"etc/www-blog/app.conf", false, ""},
		{"etc/www-blog", true, ""},
		{"etc/www-blog/", true, ""},
		{"/etc/www-blog/sub/x", false, ""},
		{"etc", true, ""},
		{"etc/nginx", true, ""},
		{"etc/nginx/sites-available", true, ""},
		{"etc/nginx/sites-available/www-blog.conf", false, ""},
		{"etc/nginx/sites-enabled/www-blog", false, ""},
		{"etc/nginx/sites-enabled/www-other", false, "-"},
		{"etc/nginx/sites-available/default", false, "etc/nginx/sites-available/default"},
		{"etc/logrotate.d/www-blog", false, ""},
		{"etc/logrotate.d/www-blogx", false, "-"},
		{"etc/logrotate.d", true, ""},
		{"etc/www-other/x", false, "-"},
		{"etc/hosts", false, "-"},
		{"srv", true, "-"},
		// The hostile image's paths, and the tricks.
		{"etc/sudoers.d/evil", false, "etc/sudoers*"},
		{"etc/sudoers.d", true, "etc/sudoers*"},
		{"etc/sudoers", false, "etc/sudoers*"},
		{"etc/./sudoers", false, "etc/sudoers*"},
		{"etc/nginx/../sudoers", false, "etc/sudoers*"},
		{"etc/www-blog/../../etc/shadow", false, "etc/shadow"},
		{"etc//passwd", false, "etc/passwd"},
		{"etc/passwd/", false, "etc/passwd"},
		{"ETC/SUDOERS.D/evil", false, "etc/sudoers*"},
		{"etc/Shadow", false, "etc/shadow"},
		{"etc/\u017fhadow", false, "etc/shadow"},           // a long s: an s to a casefolding file system
		{"\u212a/x", false, "-"},                           // a Kelvin sign folds to k, which no rule names
		{"etc/www-blog/\u017fub", false, ""},               // allow rules match exactly, and this is inside
		{"etc/\u017fudoers.d/evil", false, "etc/sudoers*"}, // and the glob
		{"Root/.ssh/authorized_keys", false, "root/"},
		{"root/.ssh/authorized_keys", false, "root/"},
		{"root", true, "root/"},
		{"home/alice/.ssh/authorized_keys", false, "home/*/.ssh/"},
		{"home/alice/.SSH", true, "home/*/.ssh/"},
		{"home/alice/notes", false, "-"},
		{"etc/ssh/sshd_config.d/x.conf", false, "etc/ssh/"},
		{"etc/pam.d/sudo", false, "etc/pam.d/"},
		{"etc/ld.so.preload", false, "etc/ld.so.*"},
		{"etc/ld.so.conf.d/evil.conf", false, "etc/ld.so.*"},
		{"etc/cron.d/www-blog", false, "etc/cron*"},
		{"etc/crontab", false, "etc/cron*"},
		{"etc/systemd/system/x.service", false, "etc/systemd/"},
		{"etc/init.d/x", false, "etc/init.d/"},
		{"etc/profile.d/x.sh", false, "etc/profile*"},
		{"usr/local/bin/x", false, "usr/"},
		{"lib64/ld-linux-x86-64.so.2", false, "lib*/"},
		{"lib/x", false, "lib*/"},
		{"libexec", true, "lib*/"},
		{"bin/sh", false, "bin/"},
		{"sbin/init", false, "sbin/"},
		{"boot/vmlinuz", false, "boot/"},
		{"dev/sda", false, "dev/"},
		{"proc/sys/kernel/core_pattern", false, "proc/"},
		{"sys/kernel/x", false, "sys/"},
		{"run/upkeep/upkeep.sock", false, "run/upkeep/"},
		{"../etc/x", false, "!"},
		{"..", true, "!"},
		{"", true, ""},
	} {
		r := p.CheckPath(name, tc.rel, tc.dir)
		switch {
		case tc.rule == "" && r != nil:
			t.Errorf("%q (dir %v): refused: %v", tc.rel, tc.dir, r)
		case tc.rule == "":
		case r == nil:
			t.Errorf("%q (dir %v): allowed, want refused (%s)", tc.rel, tc.dir, tc.rule)
		case tc.rule == "-" && (r.Rule != "" || r.Why != ""):
			t.Errorf("%q: %v, want refused for no allow rule", tc.rel, r)
		case tc.rule == "!" && r.Why == "":
			t.Errorf("%q: %v, want refused with a reason", tc.rel, r)
		case tc.rule != "-" && tc.rule != "!" && r.Rule != tc.rule:
			t.Errorf("%q: %v, want rule %q", tc.rel, r, tc.rule)
		}
	}
	// The message names the path and the rule.
	r := p.CheckPath(name, "etc/sudoers.d/evil", false)
	if got, want := r.Error(), `etc/sudoers.d/evil: refused by deny rule "etc/sudoers*" (etc/upkeep/policy.toml)`; got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
}

func TestCheckLink(t *testing.T) {
	p := Default()
	for _, tc := range []struct {
		rel, target string
		ok          bool
	}{
		{"etc/www-a/x.conf", "y.conf", true},
		{"etc/www-a/x.conf", "../../../data/x", true}, // config/../data: the release's own
		{"etc/www-a/x.conf", "../../../../x", false},  // the release's parent
		{"etc/www-a/x.conf", "/etc/shadow", false},
		{"x", "..", true}, // config/.. is the release
		{"x", "../..", false},
		{"etc/x", "", false},
		{"etc/x", "a/../../../../../etc/shadow", false},
	} {
		r := p.CheckLink(tc.rel, tc.target)
		if (r == nil) != tc.ok {
			t.Errorf("%s -> %s: %v, want ok %v", tc.rel, tc.target, r, tc.ok)
		}
	}
}

func TestDefaultFileIsTheDefaults(t *testing.T) {
	p, err := Parse(File, []byte(DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	p.keys = nil
	p.Overlay.Deny, p.Images.Keys, p.Images.AllowRootServices = nil, nil, nil // [] in the file
	if d := Default(); !reflect.DeepEqual(p, d) {
		t.Errorf("DefaultFile parses to\n%+v\nDefault is\n%+v", p, d)
	}
	for _, d := range Denied {
		if !strings.Contains(DefaultFile, d+" ") && !strings.Contains(DefaultFile, d+"\n") {
			t.Errorf("DefaultFile does not list the deny rule %s", d)
		}
	}
}

func TestLoadMissingIsDefault(t *testing.T) {
	p, err := Load(t.TempDir())
	if err != nil || !reflect.DeepEqual(p, Default()) {
		t.Fatalf("Load of a root without a policy: %+v, %v", p, err)
	}
	if p.Images.AllowRoot || p.Images.RequireSignature || p.Control.Group != "upkeep" || p.Control.ReadGroup != "" {
		t.Errorf("defaults: %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	_, pub := newKey(t)
	for _, tc := range []struct{ text, want string }{
		{"[overlay]\nallow = [\"etc/x/\"\n", "p.toml:2:18: "},
		{"[overlay]\nallwo = []\n", "p.toml:2:1: overlay.allwo: unknown key"},
		{"[images]\n  frobnicate = true\n", "p.toml:2:3: images.frobnicate: unknown key"},
		{"[overlay]\nallow = [\"etc/ssh/sshd_config.d/\"]\n", `p.toml:2:1: overlay.allow: "etc/ssh/sshd_config.d/" is always refused (deny rule "etc/ssh/")`},
		{"[overlay]\nallow = [\"Etc/Sudoers.d\"]\n", `is always refused (deny rule "etc/sudoers*")`},
		{"[overlay]\nallow = [\"/\"]\n", "an empty rule"},
		{"[overlay]\ndeny = [\"etc/../x\"]\n", "p.toml:2:1: overlay.deny: \"etc/../x\": has an empty, . or .. component"},
		{"[overlay]\ndeny = [\"etc/[x\"]\n", "not a valid pattern"},
		{"[images]\nrequire_signature = true\n", "p.toml:2:1: images.require_signature: true, but images.keys lists no key"},
		{"[images]\nkeys = [\"RWnotakey\"]\n", "p.toml:2:1: images.keys: \"RWnotakey\" is not a minisign public key"},
		{"[images]\nallow_root = \"yes\"\n", "p.toml: "},
		{"[control]\ngroup = \"a b\"\n", "p.toml:2:1: control.group: \"a b\" is not a group name"},
		{"[http]\nuser = \"ops\"\n", "p.toml:1:1: http: user and password_bcrypt go together"},
		{"[http]\nuser = \"ops\"\npassword_bcrypt = \"plain\"\n", "p.toml:3:1: http.password_bcrypt: not a bcrypt hash"},
		{"[http]\nuser = \"o:ps\"\npassword_bcrypt = \"$2a$04$N9nuO6CcyI5fPHbgKnBTf.RV9RphW3QGqzWmHCu/MKKFu5gD5ZtiK\"\n", "p.toml:2:1: http.user"},
		{"[http]\nuser = \"ops\"\npassword_bcrypt = \"$2a$04$N9nuO6CcyI5fPHbgKnBTf.RV9RphW3QGqzWmHCu/MKKFu5gD5ZtiK\"\n", ""},
		{"[images]\nkeys = [\"" + pub.String() + "\"]\nrequire_signature = true\n", ""},
	} {
		_, err := Parse("p.toml", []byte(tc.text))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.text, err)
		case tc.want == "":
		case err == nil:
			t.Errorf("%q: no error, want %q", tc.text, tc.want)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q:\n got %v\nwant %q", tc.text, err, tc.want)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("%q: not one line: %q", tc.text, err)
		}
	}
}

func TestParseKeepsOperatorRules(t *testing.T) {
	p, err := Parse("p.toml", []byte("[overlay]\nallow = [\"srv/NAME/\"]\ndeny = [\"etc/NAME/secret\"]\n[images]\nallow_root_services = [\"service-db\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.CheckPath("www-a", "srv/www-a/index.html", false); r != nil {
		t.Error(r)
	}
	if r := p.CheckPath("www-a", "etc/www-a/x", false); r == nil {
		t.Error("allow replaced the defaults, yet etc/www-a/x is allowed")
	}
	if r := p.CheckPath("www-a", "etc/www-a/secret", false); r == nil || r.Rule != "etc/NAME/secret" {
		t.Errorf("operator's deny rule: %v", r)
	}
	if !p.RootAllowed("service-db") || p.RootAllowed("www-a") {
		t.Error("allow_root_services")
	}
}

func TestRunsAsRoot(t *testing.T) {
	for user, want := range map[string]bool{"": true, "root": true, "0": true, "00": true, " root ": true, "nodejs": false, "1000": false, "10": false} {
		if got := RunsAsRoot(user); got != want {
			t.Errorf("RunsAsRoot(%q) = %v", user, got)
		}
	}
}

func newKey(t testing.TB) (minisign.PrivateKey, minisign.PublicKey) {
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func withKeys(t *testing.T, pubs ...minisign.PublicKey) *Policy {
	text := "[images]\nrequire_signature = true\nkeys = ["
	for _, k := range pubs {
		text += "\"" + k.String() + "\", "
	}
	p, err := Parse("p.toml", []byte(text+"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	priv, pub := newKey(t)
	other, otherPub := newKey(t)
	msg := bytes.Repeat([]byte("an image\n"), 10000)
	hashed := func(k minisign.PrivateKey, m []byte) []byte {
		r := minisign.NewReader(bytes.NewReader(m))
		if _, err := r.Read(make([]byte, 0)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
		return r.Sign(k)
	}
	tampered := bytes.Clone(msg)
	tampered[100] ^= 1
	p := withKeys(t, otherPub, pub)
	for _, tc := range []struct {
		what string
		p    *Policy
		msg  []byte
		sig  []byte
		want string // "" ok
	}{
		{"prehashed, good key", p, msg, hashed(priv, msg), ""},
		{"legacy, good key", p, msg, minisign.Sign(priv, msg), ""},
		{"second key", p, msg, hashed(other, msg), ""},
		{"wrong key", withKeys(t, otherPub), msg, hashed(priv, msg), "which is not one of images.keys"},
		{"tampered image", p, tampered, hashed(priv, msg), "does not match"},
		{"tampered image, legacy", p, tampered, minisign.Sign(priv, msg), "does not match"},
		{"not a signature", p, msg, []byte("hello"), "not a minisign signature"},
		{"no keys", Default(), msg, hashed(priv, msg), "lists no keys"},
	} {
		id, err := tc.p.Verify(bytes.NewReader(tc.msg), tc.sig)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.what, err)
		case tc.want == "" && !tc.p.HasKey(id):
			t.Errorf("%s: key %s not reported as the policy's", tc.what, id)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
	}
	if id, _ := p.Verify(bytes.NewReader(msg), hashed(priv, msg)); id != KeyID(pub.ID()) {
		t.Errorf("key id %s, want %s", id, KeyID(pub.ID()))
	}
}

func TestLoadBadFileNamesIt(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, File)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("# ok\n[overlay]\nallow = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(root); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Load of a bad file: %v", err)
	}
}

// BenchmarkCheckPath: one judgement of a path under the default policy
// (every built-in deny rule, then the allow rules).
func BenchmarkCheckPath(b *testing.B) {
	p := Default()
	for b.Loop() {
		if p.CheckPath("www-blog", "etc/nginx/sites-available/www-blog.conf", false) != nil {
			b.Fatal("refused")
		}
	}
}
