package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// addImage stores an image made of files (path -> content) with image add.
func addImage(t *testing.T, h *Host, name string, files map[string]string) *Image {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	writeFiles(t, dir, files)
	img, err := h.AddImage(dir, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// snapshot describes every entry beneath dirs: what a dry run must leave
// exactly as it was.
func snapshot(t *testing.T, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				lines = append(lines, p+": "+err.Error())
				return nil
			}
			fi, _ := e.Info()
			target, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%s %v %d %d %s", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), target))
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func blogTOML(version, extra string) string {
	return "version = \"" + version + "\"\ncommand = [\"/bin/sleep\", \"1000\"]\ncopy = [\"etc/jobs.d\"]\n" + extra
}

// What `upkeep deploy NAME --dry-run` prints for a service with two
// releases deployed, and for a new one whose overlay conflicts; neither
// writes anything.
func TestDeployDryRunGolden(t *testing.T) {
	h := testHost(t)
	if _, err := h.Provision(false); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		addImage(t, h, "www-blog", map[string]string{
			"service.toml": blogTOML(v, ""),
			"config/etc/nginx/sites-enabled/www-blog.conf": "server {}",
			"config/etc/blog/old.conf":                     "only before 1.2.0",
			"config/etc/jobs.d/www-blog":                   "* * * * * " + v,
		})
		if _, err := h.Deploy(ctx, nil, "www-blog", v, DeployOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	img := addImage(t, h, "www-blog", map[string]string{
		"service.toml": blogTOML("1.2.0", "keep_releases = 2\n[[check]]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"),
		"config/etc/nginx/sites-enabled/www-blog.conf": "server {}",
		"config/etc/blog/new.conf":                     "new in 1.2.0",
		"config/etc/jobs.d/www-blog":                   "* * * * * 1.2.0",
		"config/etc/logrotate.d/www-blog":              "/var/log/www-blog.log {}",
		"bin/run":                                      "#!/bin/sh",
	})
	os.Remove(h.Path(errLogRel("www-blog")))
	shop := addImage(t, h, "www-shop", map[string]string{
		"service.toml":     "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
		"config/etc/hosts": "127.0.0.1 shop",
		"config/etc/nginx/sites-enabled/www-shop.conf": "server {}",
	})
	writeFiles(t, h.Root, map[string]string{"etc/hosts": "127.0.0.1 localhost"})

	before := snapshot(t, h.Root, h.Home)
	clean := func(s string) []byte {
		s = strings.ReplaceAll(s, h.Root, "$ROOT")
		s = strings.ReplaceAll(s, h.Home, "$HOME")
		s = strings.ReplaceAll(s, img.SHA256[:12], "$SHA256")
		return []byte(strings.ReplaceAll(s, shop.SHA256[:12], "$SHA256"))
	}
	var buf bytes.Buffer
	if err := h.DeployDryRun(&buf, "www-blog", "", DeployOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	golden(t, "deploy-dry-run.golden", clean(buf.String()))

	buf.Reset()
	err := h.DeployDryRun(&buf, "www-shop", "", DeployOptions{})
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Ops) != 1 || ce.Ops[0].Path != "etc/hosts" {
		t.Errorf("dry run of www-shop: %v", err)
	}
	golden(t, "deploy-dry-run-conflict.golden", clean(buf.String()))

	if after := snapshot(t, h.Root, h.Home); after != before {
		t.Errorf("a dry run changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// What it announced is what deploy does.
	if _, err := h.Deploy(ctx, nil, "www-blog", "", DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(h.Path(serviceRel("www-blog"))); got != ".releases/www-blog/1.2.0" {
		t.Errorf("var/www/www-blog -> %s", got)
	}
	if _, err := os.Lstat(h.Path("etc/blog/old.conf")); err == nil {
		t.Error("etc/blog/old.conf is still there")
	}
	if _, err := os.Stat(h.Path(errLogRel("www-blog"))); err != nil {
		t.Error(err)
	}
}

// A dry run stops where deploy would: a release of the same version made
// from another image, an image changed since image add.
func TestDeployDryRunRefuses(t *testing.T) {
	h := testHost(t)
	img := addImage(t, h, "www-x", map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/true\"]\n"})
	f := h.HomePath(filepath.Join(homeImage, img.File))
	b, _ := os.ReadFile(f)
	os.WriteFile(f, append(b, 0), 0o644)
	var buf bytes.Buffer
	if err := h.DeployDryRun(&buf, "www-x", "", DeployOptions{}); err == nil || !strings.Contains(err.Error(), "does not match its recorded sha256") {
		t.Errorf("changed image: %v", err)
	}
	if err := h.DeployDryRun(&buf, "www-y", "", DeployOptions{}); err == nil || !strings.Contains(err.Error(), "no image of www-y") {
		t.Errorf("no image: %v", err)
	}
}
