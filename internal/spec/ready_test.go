package spec

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadyKeys(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Readiness
		errs []string // "line:col: key: message" prefixes
	}{
		{body: `command = ["x"]`, want: Readiness{Kind: ReadyAfter}},
		{body: "command = [\"x\"]\n[[check]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n", want: Readiness{Kind: ReadyChecks}},
		{body: "command = [\"x\"]\nready = \"notify\"\nwatchdog = \"30s\"\n", want: Readiness{Kind: ReadyNotify}},
		{body: "command = [\"x\"]\nready = \"fd:3\"\n", want: Readiness{Kind: ReadyFD, FD: 3}},
		{body: "command = [\"x\"]\nready = 'log:^listening on :\\d+$'\n", want: Readiness{Kind: ReadyLog, Pattern: `^listening on :\d+$`}},
		{body: "command = [\"x\"]\nready = \"after\"\nready_after = \"0s\"\n", want: Readiness{Kind: ReadyAfter}},
		{body: "command = [\"x\"]\nready = \"fd:2\"\n", errs: []string{"2:1: ready: \"fd:2\": N must be a number from 3"}},
		{body: "command = [\"x\"]\nready = \"fd:x\"\n", errs: []string{"2:1: ready: \"fd:x\": N must be"}},
		{body: "command = [\"x\"]\nready_after = \"1s\"\n  ready = \"log:(\"\n", errs: []string{"3:3: ready: \"log:(\": error parsing regexp"}},
		{body: "command = [\"x\"]\nready = \"log:\"\n", errs: []string{"2:1: ready: \"log:\": the pattern is empty"}},
		{body: "command = [\"x\"]\nready = \"checks\"\n", errs: []string{"2:1: ready: \"checks\" needs at least one [[check]]"}},
		{body: "command = [\"x\"]\nready = \"sd_notify\"\n", errs: []string{"2:1: ready: \"sd_notify\" is not one of"}},
		{body: "command = [\"x\"]\nready = \"fd:4\"\nwatchdog = \"5s\"\n", errs: []string{"3:1: watchdog: needs ready = \"notify\""}},
		{body: "command = [\"x\"]\nready = \"notify\"\nready_timeout = \"0s\"\n", errs: []string{"3:1: ready_timeout: must be longer than 0"}},
		{body: "command = [\"x\"]\nready = 3\n", errs: []string{"2:"}},
	} {
		s, ps := parse(tc.body)
		if len(tc.errs) == 0 {
			if s == nil {
				t.Errorf("%q: %v", tc.body, ps)
				continue
			}
			if got := s.Readiness(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q: readiness %+v, want %+v", tc.body, got, tc.want)
			}
			continue
		}
		if s != nil {
			t.Errorf("%q: accepted", tc.body)
			continue
		}
		got := positions(t, testFile, ps)
		if len(got) != len(tc.errs) {
			t.Errorf("%q: problems %q, want %q", tc.body, got, tc.errs)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.errs[i]) {
				t.Errorf("%q: problem %q, want prefix %q", tc.body, got[i], tc.errs[i])
			}
		}
	}
}

func TestReadyDefaults(t *testing.T) {
	s, ps := parse("command = [\"x\"]\nready = \"notify\"\nwatchdog = \"2s\"\n")
	if s == nil {
		t.Fatal(ps)
	}
	if s.ReadyTimeout.D() != 60*time.Second || s.Watchdog.D() != 2*time.Second {
		t.Errorf("ready_timeout %v watchdog %v", s.ReadyTimeout.D(), s.Watchdog.D())
	}
	if !s.Readiness().Announced() {
		t.Error("notify is not announced")
	}
}
