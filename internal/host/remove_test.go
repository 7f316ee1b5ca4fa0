package host

import (
	"context"
	"os"
	"testing"
)

// Two services put a file each in etc/nginx/sites-enabled, which neither
// found there. Whichever is removed first leaves the directory to the
// other; removing the second takes the directories the overlay made, and
// never one that was there before (etc, here).
func TestRemoveSharedOverlayDirs(t *testing.T) {
	for _, first := range []string{"www-a", "www-b"} {
		t.Run(first+" first", func(t *testing.T) {
			h := testHost(t)
			ctx := context.Background()
			writeFiles(t, h.Root, map[string]string{"etc/hostname": "box"})
			for _, name := range []string{"www-a", "www-b"} {
				addImage(t, h, name, map[string]string{
					"service.toml": "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
					"config/etc/nginx/sites-enabled/" + name + ".conf": "server {}",
					"config/etc/" + name + "/own.conf":                 name,
				})
				if _, err := h.Deploy(ctx, nil, name, "", DeployOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			second := map[string]string{"www-a": "www-b", "www-b": "www-a"}[first]
			if err := h.Remove(ctx, nil, first, RemoveOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, gone := range []string{"etc/" + first, "etc/nginx/sites-enabled/" + first + ".conf"} {
				if _, err := os.Lstat(h.Path(gone)); err == nil {
					t.Errorf("%s is left after remove %s", gone, first)
				}
			}
			if _, err := os.Stat(h.Path("etc/nginx/sites-enabled/" + second + ".conf")); err != nil {
				t.Errorf("remove %s broke %s: %v", first, second, err)
			}
			if err := h.Remove(ctx, nil, second, RemoveOptions{}); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(h.Path("etc"))
			if err != nil || len(entries) != 1 || entries[0].Name() != "hostname" {
				t.Errorf("etc after removing both: %v %v", names(entries), err)
			}
		})
	}
}

// A directory that was there before the overlay stays, even empty.
func TestRemoveKeepsDirsThatWereThere(t *testing.T) {
	h := testHost(t)
	ctx := context.Background()
	if err := os.MkdirAll(h.Path("etc/nginx/sites-enabled"), 0o755); err != nil {
		t.Fatal(err)
	}
	addImage(t, h, "www-a", map[string]string{
		"service.toml": "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
		"config/etc/nginx/sites-enabled/www-a.conf": "server {}",
		"config/etc/nginx/conf.d/www-a.conf":        "x",
	})
	if _, err := h.Deploy(ctx, nil, "www-a", "", DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctx, nil, "www-a", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.Path("etc/nginx/sites-enabled")); err != nil {
		t.Error("removed a directory that was there before:", err)
	}
	if _, err := os.Lstat(h.Path("etc/nginx/conf.d")); err == nil {
		t.Error("etc/nginx/conf.d, made by the overlay, is left")
	}
}
