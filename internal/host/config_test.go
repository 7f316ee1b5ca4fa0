package host

import (
	"context"
	"os"
	"strings"
	"testing"

	"upkeep/internal/spec"
)

func TestHostConfig(t *testing.T) {
	h := testHost(t)
	c, err := h.Config()
	if err != nil || c.KeepReleases != 5 || c.MaxSize != 4<<30 || c.StrictNames || strings.Join(c.Prefixes, " ") != "www- api- service-" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	if w, err := c.CheckName("blog"); err != nil || !strings.Contains(w, `name "blog" has none of the conventional prefixes www-, api-, service-`) {
		t.Errorf("warning: %q %v", w, err)
	}
	for _, bad := range []string{"../etc", "a/b", "with space", ".hidden", strings.Repeat("a", 65), ""} {
		if _, err := c.CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}

	writeFiles(t, h.Root, map[string]string{ConfigFile: "prefixes = [\"app-\"]\nstrict_names = true\nkeep_releases = 2\nimage_max_size = \"10M\"\n"})
	h.cfg = nil
	c, err = h.Config()
	if err != nil || c.KeepReleases != 2 || c.MaxSize != 10<<20 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := c.CheckName("www-blog"); err == nil || !strings.Contains(err.Error(), "strict_names") {
		t.Errorf("strict: %v", err)
	}
	if w, err := c.CheckName("app-blog"); w != "" || err != nil {
		t.Errorf("app-blog: %q %v", w, err)
	}
	// deploy applies it before anything else.
	if _, err := h.Deploy(context.Background(), nil, "www-blog", "", DeployOptions{}); err == nil || !strings.Contains(err.Error(), "strict_names") {
		t.Errorf("deploy under strict_names: %v", err)
	}

	for body, want := range map[string]string{
		"keep_releases = 0\n":         "keep_releases: must be at least 1",
		"\n\nbogus = 1\n":             "upkeep.toml:3:1: bogus: unknown key",
		"image_max_size = \"lots\"\n": "image_max_size",
		"prefixes = [\"\"]\n":         "an empty prefix",
		"strict_names = \"yes\"\n":    "upkeep.toml",
	} {
		os.WriteFile(h.Path(ConfigFile), []byte(body), 0o644)
		if _, err := LoadConfig(h.Root); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}

func TestNameVersion(t *testing.T) {
	for in, want := range map[string][2]string{
		"www-blog-1.2.0":     {"www-blog", "1.2.0"},
		"www-blog-v2":        {"www-blog", "v2"},
		"api-x-2024.01.02-3": {"api-x-2024.01.02", "3"},
		"www-blog":           {"www-blog", ""},
		"service-a-b":        {"service-a-b", ""},
		"Bad Name":           {"", ""},
	} {
		n, v := splitNameVersion(in)
		if n != want[0] || v != want[1] {
			t.Errorf("%q: got %q %q, want %q", in, n, v, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{{"1.10", "1.9", 1}, {"1.9", "1.10", -1}, {"2", "2", 0}, {"1.0.0", "1.0.0-rc1", -1}, {"a", "b", -1}, {"10", "9a", 1}} {
		if got := CompareVersions(tc.a, tc.b); (got > 0) != (tc.want > 0) || (got < 0) != (tc.want < 0) {
			t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", "..", "1..2", "a/b", "-1", strings.Repeat("1", 65), "1 2"} {
		if CheckVersion(bad) == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

// image add: the name and version come from service.toml, the flags, the
// top directory and the file name, in that order, and must agree.
func TestImageIdentity(t *testing.T) {
	h := testHost(t)
	src := t.TempDir()
	write := func(name string, entries ...tarEntry) string {
		p := src + "/" + name
		os.WriteFile(p, makeTar(t, entries...), 0o644)
		return p
	}
	toml := func(s string) tarEntry {
		return tarEntry{name: "service.toml", body: s + "command = [\"/bin/true\"]\n"}
	}
	for _, tc := range []struct {
		file    string
		entries []tarEntry
		o       AddOptions
		want    string // name version, or an error
	}{
		{"www-a-1.0.tar.gz", []tarEntry{toml("")}, AddOptions{}, "www-a 1.0"},
		{"whatever.tgz", []tarEntry{toml("name = \"www-b\"\nversion = \"2\"\n")}, AddOptions{}, "www-b 2"},
		{"x.tar.gz", []tarEntry{{name: "www-c-3.1/service.toml", body: "command = [\"/bin/true\"]\n"}}, AddOptions{}, "www-c 3.1"},
		{"y.tar.gz", []tarEntry{toml("")}, AddOptions{Name: "www-d", Version: "4"}, "www-d 4"},
		{"www-e-1.tar.gz", []tarEntry{toml("version = \"2\"\n")}, AddOptions{Version: "3"}, `--version "3" differs`},
		{"noversion.tar.gz", []tarEntry{toml("")}, AddOptions{Name: "www-f"}, "has no version"},
		{"www-g-1.tar.gz", []tarEntry{toml("restart = { policy = \"sometimes\" }\n")}, AddOptions{}, "not valid"},
		{"www-h-1.tar.gz", []tarEntry{toml("name = \"../x\"\n")}, AddOptions{}, "service name"},
	} {
		img, err := h.AddImage(write(tc.file, tc.entries...), tc.o)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = img.Name + " " + img.Version
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.file, got, tc.want)
		}
	}
	// The same image again is a no-op; another with the same version is refused.
	p := write("www-a-1.0.tar.gz", toml(""))
	if _, err := h.AddImage(p, AddOptions{}); err != nil {
		t.Errorf("the same image again: %v", err)
	}
	p = write("www-a-1.0.tar.gz", toml("# changed\n"))
	if _, err := h.AddImage(p, AddOptions{}); err == nil || !strings.Contains(err.Error(), "a different image of www-a 1.0 is stored") {
		t.Errorf("another image, same version: %v", err)
	}
	if _, err := h.AddImage(p, AddOptions{Force: true}); err != nil {
		t.Errorf("--force: %v", err)
	}
	imgs, _ := h.Images("")
	if len(imgs) != 4 {
		t.Errorf("stored %d images, want 4", len(imgs))
	}
	entries, _ := os.ReadDir(h.HomePath("image"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left in ~/image: %s", e.Name())
		}
	}
}

// copy in service.toml: both path forms, the same after parsing; no "..".
func TestSpecCopy(t *testing.T) {
	s, ps := spec.Parse("/r", "/r/var/www/www-a", []byte("command = [\"/bin/true\"]\ncopy = [\"/etc/x.conf\", \"etc/cron.d/\"]\nkeep_releases = 3\n"))
	if s == nil || strings.Join(s.Copy, " ") != "etc/x.conf etc/cron.d" || s.KeepReleases != 3 {
		t.Fatalf("%+v %v", s, ps)
	}
	for _, bad := range []string{`copy = ["../etc/x"]`, `copy = [""]`, `copy = ["/"]`, `keep_releases = -1`} {
		if s, _ := spec.Parse("/r", "/r/var/www/www-a", []byte("command = [\"/bin/true\"]\n"+bad+"\n")); s != nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
