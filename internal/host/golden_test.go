package host

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", file, got, want)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The plan `upkeep overlay --dry-run` prints, for a host where every case
// meets: new files and directories, copies, files upkeep placed before
// (unchanged, changed by hand, no longer in the release), another service's
// file, a foreign file, one already in place, a planted symlink, upkeep's
// own trees.
func TestOverlayPlanGolden(t *testing.T) {
	h := testHost(t)
	outside := t.TempDir()
	rel := h.Path(releaseRel("www-blog", "1.2.0"))
	writeFiles(t, rel, map[string]string{
		"service.toml": "version = \"1.2.0\"\ncommand = [\"/bin/true\"]\ncopy = [\"etc/cron.d\"]\n",
		"config/etc/nginx/sites-enabled/www-blog.conf": "server {}",
		"config/etc/cron.d/www-blog":                   "* * * * * true",
		"config/etc/logrotate.d/www-blog":              "new",
		"config/etc/blog/kept.conf":                    "kept",
		"config/etc/blog/edited.conf":                  "upkeep's",
		"config/etc/blog/adopted.conf":                 "x",
		"config/etc/shared.conf":                       "mine",
		"config/etc/hosts":                             "127.0.0.1 blog",
		"config/srv/blog/index.html":                   "<p>",
		"config/var/www/other/service.toml":            "command = [\"/bin/false\"]",
		"config/var/lib/upkeep/overlay/www-x.json":     "{}",
		"config/var/log/www-blog/ok":                   "fine: var/log is not upkeep's own",
	})
	writeFiles(t, h.Root, map[string]string{
		"etc/hosts":            "127.0.0.1 localhost",
		"etc/shared.conf":      "theirs",
		"etc/blog/edited.conf": "edited by hand",
		"etc/blog/gone.conf":   "upkeep's, from the last release",
		"etc/cron.d/www-blog":  "* * * * * old",
	})
	os.Symlink(h.linkTarget("www-blog", "etc/blog/kept.conf"), h.Path("etc/blog/kept.conf"))
	os.Symlink(h.linkTarget("www-blog", "etc/blog/adopted.conf"), h.Path("etc/blog/adopted.conf"))
	os.Symlink(outside, h.Path("srv"))
	oldCron, _ := fileSum(h.Path("etc/cron.d/www-blog"))
	gone, _ := fileSum(h.Path("etc/blog/gone.conf"))
	h.writeJSON(manifestRel("www-blog"), &Manifest{Service: "www-blog", Release: "1.1.0", Entries: []Placed{
		{Path: "etc/blog/kept.conf", Kind: "link", Target: h.linkTarget("www-blog", "etc/blog/kept.conf")},
		{Path: "etc/blog/edited.conf", Kind: "link", Target: h.linkTarget("www-blog", "etc/blog/edited.conf")},
		{Path: "etc/blog/gone.conf", Kind: "copy", SHA256: gone},
		{Path: "etc/cron.d/www-blog", Kind: "copy", SHA256: oldCron},
	}})
	h.writeJSON(manifestRel("www-other"), &Manifest{Service: "www-other", Entries: []Placed{{Path: "etc/shared.conf", Kind: "copy", SHA256: "x"}}})

	plan, err := h.PlanOverlay("www-blog", "1.2.0", rel, []string{"etc/cron.d"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h.Format(&buf, plan)
	golden(t, "overlay-plan.golden", []byte(strings.ReplaceAll(buf.String(), outside, "$OUTSIDE")))

	// Conflicts stop it, naming each; nothing is written.
	err = h.ApplyOverlay(plan, false)
	if err == nil || !strings.Contains(err.Error(), "/etc/hosts exists and was not placed by upkeep") || !strings.Contains(err.Error(), "/srv is a symlink") {
		t.Fatalf("apply: %v", err)
	}
	if _, err := os.Lstat(h.Path("etc/nginx")); err == nil {
		t.Error("a refused overlay wrote something")
	}
	// --force does not write through the planted symlink or into upkeep's own trees.
	if err := h.ApplyOverlay(plan, true); err == nil || strings.Contains(err.Error(), "/etc/hosts") || !strings.Contains(err.Error(), "/srv is a symlink") {
		t.Fatalf("apply --force: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatal("written outside the root")
	}
}

// A plan without conflicts, applied, then applied again: nothing to do.
func TestOverlayApplyIsIdempotent(t *testing.T) {
	h := testHost(t)
	dir := h.Path(serviceRel("www-site"))
	writeFiles(t, dir, map[string]string{
		"service.toml":                "command = [\"/bin/true\"]\ncopy = [\"etc/site/copied.conf\"]\n",
		"config/etc/site/link.conf":   "linked",
		"config/etc/site/copied.conf": "copied",
	})
	var buf bytes.Buffer
	if _, err := h.Overlay("www-site", false, false, &buf); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(h.Path("etc/site/link.conf")); string(b) != "linked" {
		t.Errorf("link.conf reads %q", b)
	}
	buf.Reset()
	if _, err := h.Overlay("www-site", true, false, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "0 change(s), 0 conflict(s)\n") {
		t.Errorf("second plan:\n%s", buf.String())
	}
	if err := h.RemoveOverlay("www-site"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(h.Path("etc")); err == nil {
		t.Error("RemoveOverlay left the directories it made")
	}
}

// What `upkeep provision --dry-run` prints on an empty root, paths as
// $ROOT and $HOME.
func TestProvisionDryRunGolden(t *testing.T) {
	h := testHost(t)
	writeFiles(t, h.Root, map[string]string{"var/www/www-blog/service.toml": "command = [\"/bin/true\"]\n"})
	res, err := h.Provision(true)
	if err != nil {
		t.Fatal(err)
	}
	var out, errw bytes.Buffer
	res.Format(&out, &errw, true)
	got := strings.ReplaceAll(strings.ReplaceAll(out.String()+errw.String(), h.Root, "$ROOT"), h.Home, "$HOME")
	golden(t, "provision-dry-run.golden", []byte(got))
	if entries, _ := os.ReadDir(h.Home); len(entries) != 0 {
		t.Error("a dry run changed the home")
	}
	if entries, _ := os.ReadDir(h.Path("var")); len(entries) != 1 {
		t.Errorf("a dry run changed the root: var/ holds %v", names(entries))
	}
}
