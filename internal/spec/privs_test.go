package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestParsePrivileges(t *testing.T) {
	s, ps := parse(`command = ["/bin/true"]
capabilities = ["net_bind_service", "CAP_chown", "Cap_Sys_Nice"]
no_new_privileges = false
umask = "027"
groups = ["adm", "www-data"]

[limits]
nofile = "1024:4096"
nproc = 512
core = "infinity"
`)
	if len(ps) > 0 || s == nil {
		t.Fatalf("Parse: %v", ps)
	}
	f := false
	want := Privileges{
		Capabilities:    []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SYS_NICE"},
		NoNewPrivileges: &f,
		Umask:           "027",
		Groups:          []string{"adm", "www-data"},
		Limits:          Limits{Nofile: &Limit{1024, 4096, nil}, Nproc: &Limit{512, 512, nil}, Core: &Limit{Infinity, Infinity, nil}},
	}
	if !reflect.DeepEqual(s.Privileges, want) {
		t.Errorf("got %+v\nwant %+v", s.Privileges, want)
	}
	if got := s.CapabilityNumbers(); !reflect.DeepEqual(got, []uintptr{10, 0, 23}) {
		t.Errorf("capability numbers %v", got)
	}
	if s.UmaskValue() != 0o027 {
		t.Errorf("umask %o", s.UmaskValue())
	}
}

// Unset and set-to-none are different for a root service: unset keeps
// root's full set, [] empties the bounding set.
func TestCapabilitiesUnsetIsNotEmpty(t *testing.T) {
	s, _ := parse(`command = ["/bin/true"]`)
	if s.Capabilities != nil || s.CapabilityNumbers() != nil || s.NoNewPrivileges != nil || s.UmaskValue() != 0o022 {
		t.Errorf("defaults: %+v", s.Privileges)
	}
	s, _ = parse("command = [\"/bin/true\"]\ncapabilities = []\n")
	if s.Capabilities == nil || s.CapabilityNumbers() == nil || len(s.CapabilityNumbers()) != 0 {
		t.Errorf("capabilities = []: %#v", s.Capabilities)
	}
}

func TestBadPrivilegesArePlaced(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"capabilities = [\"CAP_NET_BIND_SERVICE\", \"cap_fly\"]", `2:1: capabilities: unknown capability "cap_fly"`},
		{"capabilities = [\"\"]", `2:1: capabilities: unknown capability ""`},
		{"capabilities = \"CAP_CHOWN\"", `2:16: capabilities: must be a list of strings, e.g. ["CAP_CHOWN"]`},
		{"  umask = \"0888\"", `2:3: umask: "0888" is not an octal umask such as "0027"`},
		{"umask = \"1777\"", `2:1: umask: "1777" is above 0777`},
		{"umask = \"\"", ``},
		{"umask = \"02777\"", `2:1: umask: "02777" is not an octal umask such as "0027"`},
		{"umask = 18", `2:9: umask: must be a string, not the number 18`},
		{"no_new_privileges = \"yes\"", `2:21: no_new_privileges: must be true or false, not the string "yes"`},
		{"groups = [\"adm\", \"a:b\"]", `2:1: groups: "a:b" is not a user or group name`},
		{"groups = [\"\"]", `2:1: groups: an empty group name`},
		{"[limits]\nnofile = \"4096:1024\"", `3:1: limits.nofile: "4096:1024": the soft limit is above the hard one`},
		{"[limits]\nnofile = -1", `3:1: limits.nofile: -1 is negative`},
		{"[limits]\n nproc = \"many\"", `3:2: limits.nproc: "many": want an integer, "infinity" or "soft:hard"`},
		{"[limits]\ncore = 1.5", `3:1: limits.core: 1.5 is not an integer, "infinity" or "soft:hard"`},
		{"[limits]\ncore = \"1:2:3\"", `3:1: limits.core: "1:2:3": want an integer, "infinity" or "soft:hard"`},
		{"[limits]\nnofile = \"18446744073709551615\"", `3:1: limits.nofile: "18446744073709551615": want an integer, "infinity" or "soft:hard"`},
		{"[limits]\nstack = 10", `3:1: limits.stack: unknown key`},
		{"limits = { nofile = true }", `2:1: limits.nofile: true is not an integer, "infinity" or "soft:hard"`},
	} {
		_, ps := parse("command = [\"/bin/true\"]\n" + c.body + "\n")
		got := strings.Join(positions(t, testFile, ps), "\n")
		if c.want == "" {
			if got != "" {
				t.Errorf("%q: %s", c.body, got)
			}
			continue
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%q:\n got %s\nwant %s", c.body, got, c.want)
		}
	}
}

// What --print writes reads back the same.
func TestPrivilegesRoundTrip(t *testing.T) {
	s, ps := parse(`command = ["/bin/true"]
capabilities = []
no_new_privileges = true
umask = "0077"
groups = ["adm"]
[limits]
nofile = "1024:infinity"
core = 0
`)
	if s == nil {
		t.Fatal(ps)
	}
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(s); err != nil {
		t.Fatal(err)
	}
	again, ps := parse(b.String())
	if again == nil {
		t.Fatalf("%v\n%s", ps, b.String())
	}
	if !reflect.DeepEqual(again.Privileges, s.Privileges) {
		t.Errorf("read back %+v, want %+v\n%s", again.Privileges, s.Privileges, b.String())
	}
}

func TestCapabilityNames(t *testing.T) {
	for name, want := range map[string]uintptr{"CAP_CHOWN": 0, "chown": 0, "net_bind_service": 10, "CAP_SYS_ADMIN": 21, "checkpoint_restore": 40} {
		if n, ok := Capability(name); !ok || n != want {
			t.Errorf("Capability(%q) = %d, %v", name, n, ok)
		}
	}
	for _, bad := range []string{"", "CAP_", "CAP_ALL", "41"} {
		if _, ok := Capability(bad); ok {
			t.Errorf("Capability(%q) accepted", bad)
		}
	}
}
