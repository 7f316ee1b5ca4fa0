package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
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
)

// The host policy through the command line: issue 11's hostile image is
// refused by image add, deploy --dry-run, deploy and overlay, one line a
// path, exit 1, and the root and home are left as they were.

// policyTarGz builds a .tar.gz of files (path -> content), in order.
func policyTarGz(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// policyListing lists every entry beneath dirs with its mode, size, and content
// hash or link target: equal listings are the same trees, byte for byte.
func policyListing(t *testing.T, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := d.Info()
			line := fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size())
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				line += " -> " + target
			} else if fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				sum := sha256.Sum256(b)
				line += " " + hex.EncodeToString(sum[:]) + " " + fi.ModTime().String()
			}
			lines = append(lines, line)
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestPolicyRefusesTheHostileImage(t *testing.T) {
	h := newHostHome(t)
	os.Remove(filepath.Join(h.root, "etc/upkeep/policy.toml")) // the defaults
	h.must("provision")
	if b := h.read("etc/upkeep/policy.toml"); !strings.Contains(b, "\n[overlay]\n") || !strings.Contains(b, "# Where a service's config/ may create") {
		t.Fatalf("provision wrote no commented policy:\n%s", b)
	}

	src := filepath.Join(t.TempDir(), "www-evil-1.0.tar.gz")
	data := policyTarGz(t,
		[2]string{"service.toml", "version = \"1.0\"\ncommand = [\"/bin/sleep\", \"1000\"]\nuser = \"root\"\n"},
		[2]string{"config/etc/sudoers.d/evil", "ALL ALL=(ALL) NOPASSWD: ALL\n"},
		[2]string{"config/root/.ssh/authorized_keys", "ssh-ed25519 AAAA attacker\n"})
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"upkeep: image www-evil 1.0 refused by the host policy (etc/upkeep/policy.toml): 3 problems; nothing was written",
		`service.toml: user = "root": a service from an image may not run as root (set user, or allow it with [images] allow_root or allow_root_services in etc/upkeep/policy.toml)`,
		`etc/sudoers.d/evil: refused by deny rule "etc/sudoers*" (etc/upkeep/policy.toml)`,
		`root/.ssh/authorized_keys: refused by deny rule "root/" (etc/upkeep/policy.toml)`,
	}, "\n") + "\n"
	refused := func(stderrWant string, args ...string) {
		t.Helper()
		before := policyListing(t, h.root, h.home)
		out, stderr, code := h.up(args...)
		if code != 1 || stderr != stderrWant {
			t.Errorf("upkeep %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", strings.Join(args, " "), code, out, stderr, stderrWant)
		}
		if after := policyListing(t, h.root, h.home); after != before {
			t.Errorf("upkeep %s changed the tree:\nbefore:\n%s\nafter:\n%s", strings.Join(args, " "), before, after)
		}
	}
	refused(want, "image", "add", src)

	// An image stored before the policy, by hand: deploy reads it again.
	sum := sha256.Sum256(data)
	writeTree(t, h.home, map[string]string{
		"image/www-evil-1.0.tar.gz": string(data),
		"image/www-evil-1.0.json":   fmt.Sprintf(`{"name":"www-evil","version":"1.0","file":"www-evil-1.0.tar.gz","sha256":%q,"size":%d}`, hex.EncodeToString(sum[:]), len(data)),
	})
	refused(want, "deploy", "www-evil", "--dry-run")
	refused(want, "deploy", "www-evil@1.0", "--force")

	// Written by hand under var/www: overlay refuses the paths.
	writeTree(t, filepath.Join(h.root, "var/www/www-hand"), map[string]string{
		"service.toml":                     "command = [\"/bin/sleep\", \"1000\"]\nuser = \"root\"\n",
		"config/etc/sudoers.d/evil":        "x",
		"config/root/.ssh/authorized_keys": "x",
	})
	hand := strings.Join([]string{
		"upkeep: overlay of www-hand refused by the host policy (etc/upkeep/policy.toml): 2 problems; nothing was written",
		`etc/sudoers.d/evil: refused by deny rule "etc/sudoers*" (etc/upkeep/policy.toml)`,
		`root/.ssh/authorized_keys: refused by deny rule "root/" (etc/upkeep/policy.toml)`,
	}, "\n") + "\n"
	refused(hand, "overlay", "www-hand")
	refused(hand, "overlay", "www-hand", "--dry-run", "--force")

	// Doctor: the paths are problems (exit 1); the root user of a
	// hand-written service and unsigned images are warnings.
	out, _, code := h.up("doctor")
	for _, w := range []string{`etc/sudoers.d/evil: refused by deny rule "etc/sudoers*"`, "warning: www-hand runs as root", "warning: images are not required to be signed"} {
		if code != 1 || !strings.Contains(out, w) {
			t.Errorf("doctor: exit %d, no %q:\n%s", code, w, out)
		}
	}
}

func TestPolicyFileErrors(t *testing.T) {
	h := newHostHome(t)
	writeTree(t, h.root, map[string]string{"etc/upkeep/policy.toml": "[images]\nallow_root = true\n  allow_rot = true\n"})
	dir := filepath.Join(t.TempDir(), "www-ok")
	writeTree(t, dir, map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/true\"]\n"})
	want := "upkeep: " + filepath.Join(h.root, "etc/upkeep/policy.toml") + ":3:3: images.allow_rot: unknown key\n"
	for _, args := range [][]string{{"image", "add", dir}, {"doctor"}} {
		if _, stderr, code := h.up(args...); code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%v under a bad policy: exit %d %q, want %q", args, code, stderr, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(h.home, "image")); len(entries) != 0 {
		t.Errorf("stored under a bad policy: %v", entries)
	}
}

func TestPolicySignaturesCLI(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := minisign.GenerateKey(nil)
	h := newHostHome(t)
	writeTree(t, h.root, map[string]string{"etc/upkeep/policy.toml": fmt.Sprintf("[images]\nrequire_signature = true\nkeys = [%q]\n", pub.String())})
	dir := t.TempDir()
	img := func(name string, key *minisign.PrivateKey) string {
		p := filepath.Join(dir, name+"-1.tar.gz")
		data := policyTarGz(t, [2]string{"service.toml", "# " + name + "\nversion = \"1\"\ncommand = [\"/bin/true\"]\nuser = \"nobody\"\n"})
		os.WriteFile(p, data, 0o644)
		if key != nil {
			os.WriteFile(p+".minisig", minisign.Sign(*key, data), 0o644)
		}
		return p
	}
	good := img("www-good", &priv)
	out := h.must("image", "add", good)
	if !strings.Contains(out, "signed by key "+fmt.Sprintf("%016X", pub.ID())) {
		t.Errorf("image add of a signed image:\n%s", out)
	}
	if rec := h.policyReadHome("image/www-good-1.json"); !strings.Contains(rec, `"verified": true`) {
		t.Errorf("record: %s", rec)
	}
	if out := h.must("image", "list"); !strings.Contains(out, "SIGNED") || !strings.Contains(out, fmt.Sprintf("%016X", pub.ID())) {
		t.Errorf("image list does not show the key:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "add", img("www-unsigned", nil)}, "no signature (www-unsigned-1.tar.gz.minisig, or --sig FILE), and images.require_signature = true"},
		{[]string{"image", "add", img("www-other", &other)}, "which is not one of images.keys"},
		{[]string{"image", "add", img("www-swapped", nil), "--sig", good + ".minisig"}, "does not match"},
		{[]string{"image", "add", good, "--sha256", strings.Repeat("ab", 32), "--force"}, "not " + strings.Repeat("ab", 32) + " as --sha256 says"},
	} {
		if _, stderr, code := h.up(tc.args...); code != 1 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(h.home, "image", "*.json")); len(entries) != 1 {
		t.Errorf("stored: %v", entries)
	}
}

func (h *hostHome) policyReadHome(rel string) string {
	b, _ := os.ReadFile(filepath.Join(h.home, rel))
	return string(b)
}
