package spec

import (
	"reflect"
	"strings"
	"testing"
)

// Every problem of a file at once, sorted, each at its value and in the
// operator's words: one value of the wrong type no longer hides the rest
// (issue 15), and what can still be validated is.
func TestAllProblemsAtOnce(t *testing.T) {
	body := `# the service
version = "1"
command = "/bin/sleep 100"
ready_after = 5
user = 1000
autostart = "yes"
[restart]
polcy = "always"
limit = "5"
window = "0s"
[[check]]
type = "tcp"
address = "127.0.0.1:1"
[[check]]
type = "http"
url = "http://127.0.0.1/ok"
interval = 10
then = "explode"
`
	s, ps := parse(body)
	if s != nil {
		t.Fatalf("a service despite errors: %+v", s)
	}
	want := []string{
		`3:11: command: must be a list of strings, e.g. ["/bin/sleep", "100"]`,
		`4:15: ready_after: must be a duration string such as "5s", not the number 5`,
		`5:8: user: must be a string, not the number 1000`,
		`6:13: autostart: must be true or false, not the string "yes"`,
		`8:1: restart.polcy: unknown key; did you mean "policy"?`,
		`9:9: restart.limit: must be a whole number, not the string "5"`,
		`10:1: restart.window: must be longer than 0`, // validated although the file had type problems
		`17:12: check[1].interval: must be a duration string such as "5s", not the number 10`,
		`18:1: check[1].then: "explode" is not one of restart, stop, alert, exec`,
	}
	if got := positions(t, testFile, ps); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// A file that is not TOML at all is still one problem: nothing past a
// syntax error can be read.
func TestSyntaxErrorIsOneProblem(t *testing.T) {
	_, ps := parse("command = [\"x\"]\nready_after = 5\nuser = \n")
	if len(ps) != 1 || ps[0].Line != 3 {
		t.Errorf("want the one syntax problem on line 3, got %v", ps)
	}
}

func TestKnownKeys(t *testing.T) {
	for _, tc := range []struct {
		path []string
		has  string
	}{
		{nil, "command"}, {nil, "capabilities"}, {nil, "groups"}, // Privileges is inline
		{[]string{"restart"}, "policy"}, {[]string{"check"}, "interval"}, {[]string{"log"}, "file"},
		{[]string{"limits"}, "nofile"},
	} {
		keys := knownKeys(tc.path)
		found := false
		for _, k := range keys {
			found = found || k == tc.has
		}
		if !found {
			t.Errorf("knownKeys(%q) = %q, want %q among them", tc.path, keys, tc.has)
		}
	}
	if keys := knownKeys([]string{"nosuch"}); keys != nil {
		t.Errorf("knownKeys of an unknown table = %q", keys)
	}
}
