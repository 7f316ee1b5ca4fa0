package spec

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTestSection(t *testing.T) {
	const base = "command = [\"/bin/true\"]\n"
	tests := []struct {
		name string
		body string
		want Test
	}{
		{"none", "", Test{Timeout: DefaultTestTimeout}},
		{"command", "[test]\ncommand = [\"curl\", \"-fsS\", \"http://127.0.0.1:8080/ok\"]",
			Test{Command: []string{"curl", "-fsS", "http://127.0.0.1:8080/ok"}, Timeout: DefaultTestTimeout}},
		{"script and timeout", "[test]\nscript = \"curl -fsS http://127.0.0.1/ok\"\ntimeout = \"5s\"",
			Test{Script: "curl -fsS http://127.0.0.1/ok", Timeout: Duration(5 * time.Second)}},
		{"inline", "test = { command = [\"true\"], timeout = \"1s\" }",
			Test{Command: []string{"true"}, Timeout: Duration(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := Parse(testRoot, testDir, []byte(base+tt.body))
			if s == nil {
				t.Fatalf("problems: %v", ps)
			}
			if !reflect.DeepEqual(s.Test, tt.want) {
				t.Errorf("got %+v, want %+v", s.Test, tt.want)
			}
		})
	}
}

func TestParseTestProblems(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"both", "[test]\ncommand = [\"true\"]\nscript = \"true\"", "3:1: test.command: set only one of test.command and test.script"},
		{"empty program", "[test]\ncommand = [\"\"]", "3:1: test.command: the program (first element) is empty"},
		{"zero timeout", "[test]\ncommand = [\"true\"]\ntimeout = \"0s\"", "4:1: test.timeout: must be longer than 0"},
		{"not a duration", "[test]\ntimeout = \"soon\"", "3:"},
		{"unknown key", "[test]\ncmd = [\"true\"]", "3:1: test.cmd: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ps := Parse(testRoot, testDir, []byte("command = [\"/bin/true\"]\n"+tt.body))
			if s != nil {
				t.Fatalf("accepted: %+v", s.Test)
			}
			got := ps.Error()
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestTestArgv(t *testing.T) {
	if got := (Test{Script: "true"}).Argv("www-a"); !reflect.DeepEqual(got, []string{"/bin/sh", "-e", "-c", "true", "www-a-test"}) {
		t.Errorf("script argv %q", got)
	}
	if got := (Test{Command: []string{"x", "y"}}).Argv("www-a"); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("command argv %q", got)
	}
}
