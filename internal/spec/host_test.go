package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeService writes root/var/www/<name>/service.toml and returns its path.
func writeService(t *testing.T, root, name, body string) string {
	t.Helper()
	dir := filepath.Join(root, WWW, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// problemStrings renders a host's problems, service by service.
func problemStrings(h *Host) map[string][]string {
	out := map[string][]string{}
	for name, ps := range h.Problems {
		for _, p := range ps {
			out[name] = append(out[name], p.String())
		}
	}
	return out
}

func TestLoadHost(t *testing.T) {
	root := t.TempDir()
	const run = "command = [\"/bin/true\"]\n"
	writeService(t, root, "service-db", run)
	writeService(t, root, "api-app", "# the API\n"+run+"depends_on = [\"service-db\"]\n")
	broken := writeService(t, root, "api-broken", run+"[restart]\npolicy = \"sometimes\"\n")
	// Depends on the broken one, and in turn has a dependent: both go.
	needsBroken := writeService(t, root, "www-front", run+"\n\ndepends_on = [\"service-db\", \"api-broken\"]\n")
	needsFront := writeService(t, root, "www-admin", "depends_on = [\"www-front\"]\n"+run)
	unknown := writeService(t, root, "api-lonely", run+"  depends_on = [\"service-nope\"]\n")
	cycleA := writeService(t, root, "api-a", run+"depends_on = [\"api-b\"]\n")
	cycleB := writeService(t, root, "api-b", "\n"+run+"depends_on = [\"api-a\"]\n")
	needsCycle := writeService(t, root, "api-c", "depends_on = [\"api-a\"]\n"+run)
	badDir := writeService(t, root, "Bad Name", run)
	syntax := writeService(t, root, "api-syntax", "command = [\n")

	// Ignored: bookkeeping directories, directories without a definition,
	// and plain files.
	writeService(t, root, ".releases", "this is not TOML")
	writeService(t, root, ".staging", run)
	if err := os.MkdirAll(filepath.Join(root, WWW, "api-empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, WWW, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A service directory may be a symlink to a release.
	release := filepath.Join(root, WWW, ".releases", "www-site", "1.0.0")
	if err := os.MkdirAll(release, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(release, FileName), []byte(run), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(release, filepath.Join(root, WWW, "www-site")); err != nil {
		t.Fatal(err)
	}

	h, err := LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Names(), []string{"api-app", "service-db", "www-site"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if s := h.Services["www-site"]; s == nil || s.Dir != filepath.Join(root, WWW, "www-site") || s.Directory != s.Dir {
		t.Errorf("symlinked service: %+v", s)
	}
	nameErr := `directory name: service name "Bad Name" must be a-z 0-9 - _ . starting with a letter or digit`
	want := map[string][]string{
		"api-broken": {broken + `:3:1: restart.policy: "sometimes" is not one of always, on-failure, never`},
		"www-front":  {needsBroken + `:4:29: depends_on: service "api-broken" did not load (see its own problems)`},
		"www-admin":  {needsFront + `:1:15: depends_on: service "www-front" did not load (see its own problems)`},
		"api-lonely": {unknown + `:2:17: depends_on: unknown service "service-nope" (no var/www/service-nope/service.toml)`},
		"api-a":      {cycleA + `:2:1: depends_on: dependency cycle: api-a -> api-b -> api-a`},
		"api-b":      {cycleB + `:3:1: depends_on: dependency cycle: api-a -> api-b -> api-a`},
		"api-c":      {needsCycle + `:1:15: depends_on: service "api-a" did not load (see its own problems)`},
		"Bad Name":   {badDir + ": " + nameErr},
		"api-syntax": {syntax + `:1:12: command: unexpected EOF; expected value`},
	}
	if got := problemStrings(h); !reflect.DeepEqual(got, want) {
		for name := range mergeKeys(got, want) {
			if !reflect.DeepEqual(got[name], want[name]) {
				t.Errorf("%s:\n got  %q\n want %q", name, got[name], want[name])
			}
		}
	}
}

func mergeKeys(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// A longer cycle, and a service on a path into it: the cycle's members are
// named in one message each; the service leading into it is dropped as a
// dependent, not reported as part of the cycle.
func TestLoadHostLongCycle(t *testing.T) {
	root := t.TempDir()
	const run = "command = [\"x\"]\n"
	writeService(t, root, "a", run+`depends_on = ["b"]`)
	writeService(t, root, "b", run+`depends_on = ["c"]`)
	writeService(t, root, "c", run+`depends_on = ["d"]`)
	writeService(t, root, "d", run+`depends_on = ["b"]`)
	writeService(t, root, "e", run)
	h, err := LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Names(); !reflect.DeepEqual(got, []string{"e"}) {
		t.Errorf("Names() = %q", got)
	}
	for name, want := range map[string]string{
		// A dependent at the entry it cannot have, a cycle at the key.
		"a": `:2:15: depends_on: service "b" did not load (see its own problems)`,
		"b": ":2:1: depends_on: dependency cycle: b -> c -> d -> b",
		"c": ":2:1: depends_on: dependency cycle: b -> c -> d -> b",
		"d": ":2:1: depends_on: dependency cycle: b -> c -> d -> b",
	} {
		ps := h.Problems[name]
		if len(ps) != 1 || !strings.HasSuffix(ps[0].String(), want) {
			t.Errorf("%s: got %v, want ...%s", name, ps, want)
		}
	}
}

// Two services that each are fine but depend on each other in both
// directions and on a third: the cycle does not take the third down.
func TestLoadHostCycleSparesDependencies(t *testing.T) {
	root := t.TempDir()
	const run = "command = [\"x\"]\n"
	writeService(t, root, "service-db", run)
	writeService(t, root, "api-x", run+`depends_on = ["service-db", "api-y"]`)
	writeService(t, root, "api-y", run+`depends_on = ["api-x", "service-db"]`)
	h, err := LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Names(); !reflect.DeepEqual(got, []string{"service-db"}) {
		t.Errorf("Names() = %q", got)
	}
	if len(h.Problems["service-db"]) != 0 || len(h.Problems["api-x"]) != 1 || len(h.Problems["api-y"]) != 1 {
		t.Errorf("problems: %v", h.Problems)
	}
}

func TestLoadHostEmpty(t *testing.T) {
	root := t.TempDir()
	h, err := LoadHost(root) // no var/www at all
	if err != nil || len(h.Services) != 0 || len(h.Problems) != 0 || len(h.Names()) != 0 {
		t.Errorf("LoadHost of an empty root = %+v, %v", h, err)
	}
}

func TestLoadHostUnreadable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	// var/www is a file, not a directory.
	if err := os.WriteFile(filepath.Join(root, WWW), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := LoadHost(root); err == nil || !strings.HasPrefix(err.Error(), "read services: ") {
		t.Errorf("LoadHost = %+v, %v; want a read error", h, err)
	}
}

// Paths in definitions resolve against the real root LoadHost was given.
func TestLoadHostPaths(t *testing.T) {
	root := t.TempDir()
	writeService(t, root, "api-app", "command = [\"x\"]\ndirectory = \"/srv/app\"\nenv_file = \"../shared/.env\"\npidfile = \"/run/app.pid\"\n")
	escape := writeService(t, root, "api-escape", "command = [\"x\"]\n\nenv_file = \"../../../../etc/shadow\"\n")
	h, err := LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	s := h.Services["api-app"]
	if s == nil {
		t.Fatalf("api-app not loaded: %v", h.Problems)
	}
	if s.Directory != filepath.Join(root, "srv/app") || s.EnvFile != filepath.Join(root, WWW, "shared/.env") || s.PIDFile != filepath.Join(root, "run/app.pid") {
		t.Errorf("directory %q env_file %q pidfile %q", s.Directory, s.EnvFile, s.PIDFile)
	}
	want := escape + `:3:1: env_file: path "../../../../etc/shadow" leaves the root`
	if ps := h.Problems["api-escape"]; len(ps) != 1 || ps[0].String() != want {
		t.Errorf("got %v\nwant %s", ps, want)
	}
}

// An unknown dependency on a host with no cycle at all (the tests above
// always had one, which hid that the check ran only after a cycle): one
// problem at the entry, with a suggestion, and the chain behind it goes too.
func TestLoadHostUnknownDependencyWithoutCycle(t *testing.T) {
	root := t.TempDir()
	const run = "command = [\"/bin/true\"]\n"
	writeService(t, root, "service-db", run)
	ghost := writeService(t, root, "www-app", run+"depends_on = [\"service-db\", \"ghost\"]\n")
	typo := writeService(t, root, "www-typo", run+"depends_on = [\n  \"service-bd\",\n]\n")
	writeService(t, root, "www-behind", run+"depends_on = [\"www-app\"]\n")
	h, err := LoadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Names(); !reflect.DeepEqual(got, []string{"service-db"}) {
		t.Errorf("Names() = %q, want only service-db", got)
	}
	got := problemStrings(h)
	for name, want := range map[string]string{
		"www-app":    ghost + `:2:29: depends_on: unknown service "ghost" (no var/www/ghost/service.toml)`,
		"www-typo":   typo + `:3:3: depends_on: unknown service "service-bd" (no var/www/service-bd/service.toml); did you mean "service-db"?`,
		"www-behind": `depends_on: service "www-app" did not load (see its own problems)`,
	} {
		if len(got[name]) != 1 || !strings.HasSuffix(got[name][0], want) {
			t.Errorf("%s: got %q, want one problem ending %q", name, got[name], want)
		}
	}
}
