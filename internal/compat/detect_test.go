package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// matchLines must find what the regexps find in the whole text.
func TestMatchLines(t *testing.T) {
	var texts []string
	files, _ := filepath.Glob("testdata/import/*/*")
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			texts = append(texts, string(data))
		}
	}
	texts = append(texts, "", "\n", "[program:x]", "  [include]\n", "x\n\t[group:a]", "CHECK PROCESS a ", "\tset  daemon 5\n",
		"ſet daemon 5\n", "checK host x\n", "/var/log/*.log {", "\"/a b\" {\n", "'/x' {  \r\n", "~/x {", "/x { a",
		"exec x", "execute", "start on runlevel", "  kill timeout 5", "description\n", "emits-x", "respawn\r\n", "a\nb")
	for _, re := range []*regexp.Regexp{supervisordRE, monitRE, logrotateRE, upstartRE} {
		first := map[*regexp.Regexp]string{supervisordRE: "[", monitRE: "cCsS\xc5", logrotateRE: `"'/*~`, upstartRE: "abcdeikmnprst"}[re]
		for _, s := range texts {
			if want, got := re.MatchString(s), matchLines(re, []byte(s), first); want != got {
				t.Errorf("%s on %q: %v, the regexp says %v", re, shortenTest(s), got, want)
			}
		}
	}
}

func shortenTest(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return strings.ReplaceAll(s, "\n", "⏎")
}
