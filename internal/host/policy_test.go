package host

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"upkeep/internal/policy"
)

// lenientPolicy lets the tests of deploy's and the overlay's mechanics lay
// anything the built-in deny rules leave, and run as root.
func lenientPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("lenient.toml", []byte("[overlay]\nallow = [\"etc/\", \"srv/\", \"var/\"]\n[images]\nallow_root = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// strictHost is a host with no policy file: the defaults.
func strictHost(t *testing.T) *Host {
	t.Helper()
	h, err := New(t.TempDir(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.IsRoot = false
	return h
}

// listing is every entry beneath dir: type, mode, size, content hash or
// link target, mtime. Two equal listings are the same tree, byte for byte.
func listing(t *testing.T, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			line := fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				line += " -> " + target
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				line += " " + hex.EncodeToString(sum[:])
			}
			if !d.IsDir() {
				// A directory's bytes are its entries, listed; its mtime
				// moves with a temporary file made and removed inside.
				line += " " + fi.ModTime().String()
			}
			lines = append(lines, line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func unchanged(t *testing.T, what, before string, dirs ...string) {
	t.Helper()
	if after := listing(t, dirs...); after != before {
		t.Errorf("%s changed the tree:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// hostile is the image of issue 11's first sentence.
var hostile = []tarEntry{
	{name: "service.toml", body: "name = \"www-evil\"\nversion = \"1.0\"\ncommand = [\"/bin/sleep\", \"1000\"]\nuser = \"root\"\n"},
	{name: "config/etc/sudoers.d/evil", body: "ALL ALL=(ALL) NOPASSWD: ALL\n"},
	{name: "config/root/.ssh/authorized_keys", body: "ssh-ed25519 AAAA attacker\n"},
}

// wantLines checks that err is a PolicyError whose lines are want, in
// order, each naming its path and rule.
func wantLines(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: %v, want a refusal by the host policy", what, err)
	}
	if strings.Join(pe.Lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s refused with:\n%s\nwant:\n%s", what, strings.Join(pe.Lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(err.Error(), strings.SplitN(err.Error(), "\n", 2)[0]) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("%s: %v", what, err)
	}
}

var (
	sudoersLine = `etc/sudoers.d/evil: refused by deny rule "etc/sudoers*" (etc/upkeep/policy.toml)`
	sshLine     = `root/.ssh/authorized_keys: refused by deny rule "root/" (etc/upkeep/policy.toml)`
	rootLine    = `service.toml: user = "root": a service from an image may not run as root (set user, or allow it with [images] allow_root or allow_root_services in etc/upkeep/policy.toml)`
)

// storeImage puts an image in ~/image the way an older upkeep (or one
// under a laxer policy) would have: the record, no policy check.
func storeImage(t *testing.T, h *Host, name, version string, data []byte) *Image {
	t.Helper()
	dir, err := h.imageDir()
	if err != nil {
		t.Fatal(err)
	}
	img := &Image{Name: name, Version: version, File: name + "-" + version + ".tar.gz", Size: int64(len(data)), Added: time.Now().UTC()}
	sum := sha256.Sum256(data)
	img.SHA256 = hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(dir, img.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.writeImageRecord(img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestHostileImageIsRefused(t *testing.T) {
	h := strictHost(t)
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "www-evil-1.0.tar.gz")
	data := makeTar(t, hostile...)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	before := listing(t, h.Root, h.Home)
	_, err := h.AddImage(src, AddOptions{})
	wantLines(t, "image add", err, rootLine, sudoersLine, sshLine)
	unchanged(t, "image add", before, h.Root, h.Home)

	// Stored before the policy (as an older upkeep would have): deploy
	// reads the image again and refuses it all the same.
	storeImage(t, h, "www-evil", "1.0", data)
	before = listing(t, h.Root, h.Home)
	var out bytes.Buffer
	err = h.DeployDryRun(&out, "www-evil", "", DeployOptions{})
	wantLines(t, "deploy --dry-run", err, rootLine, sudoersLine, sshLine)
	_, err = h.Deploy(context.Background(), nil, "www-evil", "1.0", DeployOptions{Force: true})
	wantLines(t, "deploy", err, rootLine, sudoersLine, sshLine)
	unchanged(t, "deploy", before, h.Root, h.Home)

	// The same files written by hand under var/www: the overlay refuses
	// the paths (the user is the operator's business: doctor warns).
	writeFiles(t, h.Path("var/www/www-evil"), map[string]string{
		"service.toml":                     "command = [\"/bin/sleep\", \"1000\"]\nuser = \"root\"\n",
		"config/etc/sudoers.d/evil":        "ALL ALL=(ALL) NOPASSWD: ALL\n",
		"config/root/.ssh/authorized_keys": "ssh-ed25519 AAAA attacker\n",
	})
	before = listing(t, h.Root, h.Home)
	for _, dry := range []bool{true, false} {
		_, err = h.Overlay("www-evil", dry, true, io.Discard)
		wantLines(t, fmt.Sprintf("overlay (dry run %v)", dry), err, sudoersLine, sshLine)
	}
	unchanged(t, "overlay", before, h.Root, h.Home)

	// Doctor names each path as a problem, and warns of the root user.
	fs, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.What)
	}
	for _, want := range []string{sudoersLine, sshLine} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("doctor does not report %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	warns, err := h.PolicyWarnings()
	if err != nil || !strings.Contains(strings.Join(warns, "\n"), "www-evil runs as root") || !strings.Contains(strings.Join(warns, "\n"), "require_signature = false") {
		t.Errorf("doctor's warnings: %q %v", warns, err)
	}
	unchanged(t, "doctor", before, h.Root, h.Home)
}

func TestImagePathTricks(t *testing.T) {
	toml := tarEntry{name: "service.toml", body: "name = \"www-x\"\nversion = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"nobody\"\n"}
	for _, tc := range []struct {
		what    string
		want    string
		entries []tarEntry
	}{
		{"dot", `etc/sudoers: refused by deny rule "etc/sudoers*"`, []tarEntry{toml, {name: "config/etc/./sudoers", body: "x"}}},
		{"dot dot", `has a .. component`, []tarEntry{toml, {name: "config/etc/nginx/../sudoers", body: "x"}}},
		{"upper case", `ETC/SUDOERS.D/evil: refused by deny rule "etc/sudoers*"`, []tarEntry{toml, {name: "config/ETC/SUDOERS.D/evil", body: "x"}}},
		{"trailing slash dir", `etc/ssh: refused by deny rule "etc/ssh/"`, []tarEntry{toml, {name: "config/etc/ssh/", typ: tar.TypeDir}}},
		{"top dir", `etc/shadow: refused by deny rule "etc/shadow"`, []tarEntry{{name: "www-x-1/", typ: tar.TypeDir}, {name: "www-x-1/service.toml", body: toml.body}, {name: "www-x-1/config/etc/shadow", body: "x"}}},
		{"absolute symlink", `outside the image`, []tarEntry{toml, {name: "config/etc/www-x/shadow", typ: tar.TypeSymlink, link: "/etc/shadow"}}},
		{"escaping symlink", `leads outside the image`, []tarEntry{toml, {name: "config/etc/www-x/up", typ: tar.TypeSymlink, link: "../../../../.."}}},
		{"not allowed", `etc/hosts: refused: no allow rule covers it`, []tarEntry{toml, {name: "config/etc/hosts", body: "x"}}},
		{"another service's place", `etc/logrotate.d/www-y: refused: no allow rule`, []tarEntry{toml, {name: "config/etc/logrotate.d/www-y", body: "x"}}},
		{"no user", `service.toml: no user (it would run as the daemon, root)`, []tarEntry{{name: "service.toml", body: "name = \"www-x\"\nversion = \"1\"\ncommand = [\"/bin/true\"]\n"}}},
		{"uid 0", `service.toml: user = "0": a service from an image may not run as root`, []tarEntry{{name: "service.toml", body: "name = \"www-x\"\nversion = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"0\"\n"}}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			h := strictHost(t)
			src := filepath.Join(t.TempDir(), "www-x-1.tar.gz")
			if err := os.WriteFile(src, makeTar(t, tc.entries...), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := h.imageDir(); err != nil {
				t.Fatal(err)
			}
			before := listing(t, h.Root, h.Home)
			if img, err := h.AddImage(src, AddOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("stored %+v, %v; want refused with %q", img, err, tc.want)
			}
			unchanged(t, "image add", before, h.Root, h.Home)
		})
	}
	// What the defaults allow goes through.
	h := strictHost(t)
	src := filepath.Join(t.TempDir(), "www-x-1.tar.gz")
	if err := os.WriteFile(src, makeTar(t, toml,
		tarEntry{name: "config/etc/www-x/app.conf", body: "x"},
		tarEntry{name: "config/etc/www-x/link.conf", typ: tar.TypeSymlink, link: "app.conf"},
		tarEntry{name: "config/etc/nginx/sites-available/www-x.conf", body: "server {}"},
		tarEntry{name: "config/etc/logrotate.d/www-x", body: "x"},
	), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddImage(src, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.DeployDryRun(io.Discard, "www-x", "", DeployOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A symlink of a hand-written config/ that leaves the service, directly or
// through another symlink of the service directory.
func TestOverlayRefusesEscapingSymlinks(t *testing.T) {
	h := strictHost(t)
	dir := h.Path("var/www/www-x")
	writeFiles(t, dir, map[string]string{"service.toml": "command = [\"/bin/true\"]\nuser = \"nobody\"\n", "config/etc/www-x/ok.conf": "x"})
	for link, target := range map[string]string{
		"config/etc/www-x/shadow": "/etc/shadow",
		"config/etc/www-x/up":     "../../../../../../etc/passwd",
		"config/etc/www-x/chain":  "../../../hop",
		"hop":                     "/etc/hostname",
		"config/etc/www-x/inside": "ok.conf",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	before := listing(t, h.Root)
	_, err := h.Overlay("www-x", false, false, io.Discard)
	var pe *PolicyError
	if !errors.As(err, &pe) || len(pe.Lines) != 3 {
		t.Fatalf("overlay: %v", err)
	}
	for i, want := range []string{"config/etc/www-x/chain: refused: a symlink to \"../../../hop\", which leads to /etc/hostname", "config/etc/www-x/shadow: refused: a symlink to \"/etc/shadow\"", "config/etc/www-x/up: refused: a symlink to \"../../../../../../etc/passwd\", which leaves the service's release"} {
		if !strings.HasPrefix(pe.Lines[i], want) {
			t.Errorf("line %d: %s\nwant %s...", i, pe.Lines[i], want)
		}
	}
	unchanged(t, "overlay", before, h.Root)
}

func TestRootServices(t *testing.T) {
	toml := "name = \"service-db\"\nversion = \"1\"\ncommand = [\"/bin/true\"]\n"
	for _, tc := range []struct {
		policy string
		ok     bool
	}{
		{"", false},
		{"[images]\nallow_root = true\n", true},
		{"[images]\nallow_root_services = [\"service-db\"]\n", true},
		{"[images]\nallow_root_services = [\"service-other\"]\n", false},
	} {
		h := strictHost(t)
		if tc.policy != "" {
			writeFiles(t, h.Root, map[string]string{policy.File: tc.policy})
		}
		dir := filepath.Join(t.TempDir(), "service-db")
		writeFiles(t, dir, map[string]string{"service.toml": toml})
		_, err := h.AddImage(dir, AddOptions{})
		if (err == nil) != tc.ok {
			t.Errorf("policy %q: %v, want ok %v", tc.policy, err, tc.ok)
		}
	}
	// Root by another name.
	h := strictHost(t)
	writeFiles(t, h.Root, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nsvc:x:1000:1000::/:/bin/false\n"})
	for user, ok := range map[string]bool{"toor": false, "svc": true, "nobody-here": true} {
		dir := filepath.Join(t.TempDir(), "service-"+user)
		writeFiles(t, dir, map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"" + user + "\"\n"})
		_, err := h.AddImage(dir, AddOptions{})
		if (err == nil) != ok || !ok && !strings.Contains(err.Error(), `user = "toor" (uid 0 in `) {
			t.Errorf("user %s: %v, want ok %v", user, err, ok)
		}
	}
}

// signed writes an image and its .minisig (prehashed, as minisign does by
// default) and returns the image's path.
func signed(t *testing.T, key minisign.PrivateKey, entries ...tarEntry) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "www-s-1.tar.gz")
	data := makeTar(t, entries...)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := minisign.NewReader(bytes.NewReader(data))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src+".minisig", r.Sign(key), 0o644); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestImageSignatures(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, other, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = otherPub
	toml := tarEntry{name: "service.toml", body: "name = \"www-s\"\nversion = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"nobody\"\n"}
	requirePolicy := "[images]\nrequire_signature = true\nkeys = [\"" + pub.String() + "\"]\n"
	host := func(pol string) *Host {
		h := strictHost(t)
		if pol != "" {
			writeFiles(t, h.Root, map[string]string{policy.File: pol})
		}
		if _, err := h.imageDir(); err != nil {
			t.Fatal(err)
		}
		return h
	}
	refused := func(what string, h *Host, src string, o AddOptions, want string) {
		t.Helper()
		before := listing(t, h.Root, h.Home)
		img, err := h.AddImage(src, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %+v %v, want %q", what, img, err, want)
		}
		unchanged(t, what, before, h.Root, h.Home)
	}

	// A good signature: recorded with its key.
	h := host(requirePolicy)
	src := signed(t, priv, toml)
	img, err := h.AddImage(src, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !img.Verified || img.KeyID != policy.KeyID(pub.ID()) {
		t.Errorf("record: verified %v by %q, want %s", img.Verified, img.KeyID, policy.KeyID(pub.ID()))
	}
	if stored, err := h.readImage("www-s", "1"); err != nil || !stored.Verified {
		t.Errorf("stored record: %+v %v", stored, err)
	}
	if err := h.DeployDryRun(io.Discard, "www-s", "1", DeployOptions{}); err != nil {
		t.Errorf("deploy of the verified image: %v", err)
	}

	// The wrong key, a tampered image, no signature: refused and nothing stored.
	refused("wrong key", host(requirePolicy), signed(t, other, toml), AddOptions{}, "which is not one of images.keys")
	tampered := signed(t, priv, toml)
	data, _ := os.ReadFile(tampered)
	data[len(data)-1] ^= 0xff // the gzip trailer: a change the signature covers
	if err := os.WriteFile(tampered, data, 0o644); err != nil {
		t.Fatal(err)
	}
	refused("tampered", host(requirePolicy), tampered, AddOptions{}, "does not match")
	refused("tampered, without require_signature", host("[images]\nkeys = [\""+pub.String()+"\"]\n"), tampered, AddOptions{}, "does not match")
	unsigned := filepath.Join(t.TempDir(), "www-s-1.tar.gz")
	if err := os.WriteFile(unsigned, makeTar(t, toml), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("missing signature", host(requirePolicy), unsigned, AddOptions{}, "no signature")
	dir := filepath.Join(t.TempDir(), "www-s")
	writeFiles(t, dir, map[string]string{"service.toml": toml.body})
	refused("a directory", host(requirePolicy), dir, AddOptions{}, "a directory cannot be signed")
	refused("--sig of another file", host(requirePolicy), tampered, AddOptions{Sig: src + ".minisig"}, "does not match")

	// --sig names the signature; --sha256 checks the digest.
	h = host(requirePolicy)
	elsewhere := filepath.Join(t.TempDir(), "sig")
	if err := os.Rename(src+".minisig", elsewhere); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSum(src)
	refused("wrong --sha256", h, src, AddOptions{Sig: elsewhere, SHA256: strings.Repeat("0", 64)}, "sha256 is "+sum)
	if _, err := h.AddImage(src, AddOptions{Sig: elsewhere, SHA256: strings.ToUpper(sum)}); err != nil {
		t.Errorf("--sig and --sha256: %v", err)
	}

	// Added unsigned before the policy required signatures: deploy refuses it.
	h = host("")
	if img, err := h.AddImage(unsigned, AddOptions{}); err != nil || img.Verified {
		t.Fatalf("unsigned image without require_signature: %+v %v", img, err)
	}
	writeFiles(t, h.Root, map[string]string{policy.File: requirePolicy})
	h.pol = nil
	before := listing(t, h.Root, h.Home)
	err = h.DeployDryRun(io.Discard, "www-s", "1", DeployOptions{})
	wantLines(t, "deploy of an unverified image", err, "www-s-1.tar.gz: not verified by a signature when it was added (images.require_signature = true in etc/upkeep/policy.toml); add it again with its .minisig")
	_, err = h.Deploy(context.Background(), nil, "www-s", "1", DeployOptions{})
	wantLines(t, "deploy of an unverified image", err, "www-s-1.tar.gz: not verified by a signature when it was added (images.require_signature = true in etc/upkeep/policy.toml); add it again with its .minisig")
	unchanged(t, "deploy", before, h.Root, h.Home)
}

func TestBadPolicyStopsEverything(t *testing.T) {
	h := strictHost(t)
	writeFiles(t, h.Root, map[string]string{policy.File: "[overlay]\nallow = [\"etc/NAME/\"]\n[images]\nallow_rot = true\n"})
	dir := filepath.Join(t.TempDir(), "www-a")
	writeFiles(t, dir, map[string]string{"service.toml": "command = [\"/bin/true\"]\nuser = \"nobody\"\n"})
	if _, err := h.imageDir(); err != nil {
		t.Fatal(err)
	}
	before := listing(t, h.Root, h.Home)
	want := h.Path(policy.File) + ":4:1: images.allow_rot: unknown key"
	if _, err := h.AddImage(dir, AddOptions{}); err == nil || err.Error() != want {
		t.Errorf("image add under a bad policy: %v, want %s", err, want)
	}
	writeFiles(t, h.Root, map[string]string{"var/www/www-a/service.toml": "command = [\"/bin/true\"]\n"})
	before = listing(t, h.Root, h.Home)
	if _, err := h.Overlay("www-a", false, false, io.Discard); err == nil || err.Error() != want {
		t.Errorf("overlay under a bad policy: %v, want %s", err, want)
	}
	unchanged(t, "a bad policy", before, h.Root, h.Home)
}

func TestProvisionWritesThePolicy(t *testing.T) {
	h := strictHost(t)
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.Path(policy.File))
	if err != nil || string(b) != policy.DefaultFile {
		t.Fatalf("provision wrote %q, %v", b, err)
	}
	// An operator's edit stays.
	edited := policy.DefaultFile + "# mine\n"
	writeFiles(t, h.Root, map[string]string{policy.File: edited})
	h.pol = nil
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(h.Path(policy.File)); string(b) != edited {
		t.Errorf("provision replaced the operator's policy")
	}
}

// BenchmarkImagePolicy measures what the policy adds to a deploy of
// BenchmarkDeploy's image (1,000 files, 50 MB, 100 in config/): its
// record's judgement judged again, before anything is written. For a
// record from before the policy, the image is read again (BenchmarkUnpack
// without the writes).
func BenchmarkImagePolicy(b *testing.B) {
	h, _ := New(b.TempDir(), b.TempDir(), nil)
	h.pol = lenientPolicy(b)
	p := filepath.Join(b.TempDir(), "www-bench-1.tar.gz")
	writeImage(b, p, "1", 1000, 50<<20/1000, true)
	img, err := h.AddImage(p, AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := h.checkImagePolicy(img, DeployOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// The policy as it is at deploy (and rollback) holds, not as it was at
// image add: the record's judgement is judged again.
func TestPolicyTightenedAfterAdd(t *testing.T) {
	h := strictHost(t)
	h.pol = lenientPolicy(t)
	for _, v := range []string{"1", "2"} {
		dir := filepath.Join(t.TempDir(), "www-a")
		writeFiles(t, dir, map[string]string{
			"service.toml":         "version = \"" + v + "\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
			"config/etc/hosts":     "127.0.0.1 a",
			"config/etc/www-a/ok":  "ok",
			"config/srv/www-a/idx": "x",
		})
		img, err := h.AddImage(dir, AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img.Judged == nil || img.Judged.User != "" || len(img.Judged.Config) != 7 {
			t.Fatalf("recorded judgement: %+v", img.Judged)
		}
		if _, err := h.Deploy(context.Background(), nil, "www-a", v, DeployOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h.pol = nil // the defaults from now on: no file
	want := []string{
		`service.toml: no user (it would run as the daemon, root): a service from an image may not run as root (set user, or allow it with [images] allow_root or allow_root_services in etc/upkeep/policy.toml)`,
		`etc/hosts: refused: no allow rule covers it (etc/upkeep/policy.toml [overlay] allow)`,
		`srv/www-a/idx: refused: no allow rule covers it (etc/upkeep/policy.toml [overlay] allow)`,
	}
	before := listing(t, h.Root, h.Home)
	wantLines(t, "deploy --dry-run", h.DeployDryRun(io.Discard, "www-a", "1", DeployOptions{}), want...)
	_, err := h.Deploy(context.Background(), nil, "www-a", "1", DeployOptions{})
	wantLines(t, "deploy", err, want...)
	_, err = h.Rollback(context.Background(), nil, "www-a", DeployOptions{})
	wantLines(t, "rollback", err, want...)
	unchanged(t, "refused deploy and rollback", before, h.Root, h.Home)
}

// A record whose judgement was edited to hide a path: deploy judges the
// unpacked release as well, refuses, and discards the release.
func TestDeployJudgesTheUnpackedRelease(t *testing.T) {
	h := strictHost(t)
	h.pol = lenientPolicy(t)
	dir := filepath.Join(t.TempDir(), "www-a")
	writeFiles(t, dir, map[string]string{
		"service.toml":     "version = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"nobody\"\n",
		"config/etc/hosts": "127.0.0.1 a",
	})
	img, err := h.AddImage(dir, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img.Judged.Config = []JudgedEntry{}
	if err := h.writeImageRecord(img); err != nil {
		t.Fatal(err)
	}
	h.pol = nil
	_, err = h.Deploy(context.Background(), nil, "www-a", "1", DeployOptions{})
	wantLines(t, "deploy", err, `etc/hosts: refused: no allow rule covers it (etc/upkeep/policy.toml [overlay] allow)`)
	if h.exists(releaseRel("www-a", "1")) || h.exists(serviceRel("www-a")) || h.exists("etc/hosts") {
		t.Error("the refused release is left, or switched to, or laid")
	}
}
