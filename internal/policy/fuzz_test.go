package policy

import (
	"strings"
	"testing"
)

// FuzzPolicy: any input either parses to a policy whose judgements hold
// (the built-in deny rules always refuse, whatever the file says) or is
// one error line that names the file; never a panic.
func FuzzPolicy(f *testing.F) {
	f.Add(DefaultFile)
	f.Add("[overlay]\nallow = [\"etc/NAME/\", \"srv/*/x\"]\ndeny = [\"etc/NAME/secret\"]\n")
	f.Add("[images]\nallow_root = true\nallow_root_services = [\"service-db\"]\n")
	f.Add("[control]\ngroup = \"wheel\"\nread_group = \"adm\"\n")
	f.Add("[overlay]\nallow = [\"[\"]\n")
	f.Add("[images]\nkeys = [\"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\"]\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse("p.toml", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p.toml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not one line naming the file: %q", err)
			}
			return
		}
		for _, rel := range []string{"etc/sudoers.d/evil", "root/.ssh/authorized_keys", "ETC/shadow", "etc/./passwd", "usr/bin/x"} {
			if p.CheckPath("www-a", rel, false) == nil {
				t.Fatalf("%s allowed by\n%s", rel, text)
			}
		}
		for _, r := range p.Overlay.Allow {
			_ = p.CheckPath("www-a", strings.ReplaceAll(r, "*", "x"), false)
		}
	})
}
