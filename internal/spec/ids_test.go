package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseIDs(t *testing.T) {
	in := `# comment
root:x:0:
upkeep:x:2000:alice,bob

+nis
-other
bad:x:notanumber:
big:x:4294967296:
short:x
:x:5:
upkeep:x:3000:later duplicate loses
nobody:x:65534:65534::/:/usr/sbin/nologin
`
	got, err := ParseIDs(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"root": 0, "upkeep": 2000, "nobody": 65534}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseIDs = %v, want %v", got, want)
	}
}

func FuzzParseIDs(f *testing.F) {
	f.Add("root:x:0:\nupkeep:x:2000:alice\n")
	f.Add("nobody:x:65534:65534::/:/usr/sbin/nologin\n#c\n+\n")
	f.Add("a:b:99999999999999999999:\n::::\n")
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseIDs(strings.NewReader(s))
		if err != nil {
			return
		}
		for name := range ids {
			if name == "" || strings.Contains(name, ":") || strings.Contains(name, "\n") {
				t.Errorf("name %q from %q", name, s)
			}
		}
	})
}
