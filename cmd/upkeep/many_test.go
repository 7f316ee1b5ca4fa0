package main

import (
	"slices"
	"strings"
	"testing"

	"upkeep/internal/api"
)

func TestExpand(t *testing.T) {
	known := []string{"api-c", "www-a", "www-b"}
	for _, tc := range []struct {
		args []string
		want []string
		err  string
	}{
		{[]string{"www-*"}, []string{"www-a", "www-b"}, ""},
		{[]string{"www-b", "www-*"}, []string{"www-b", "www-a"}, ""},
		{[]string{"*", "api-c"}, []string{"api-c", "www-a", "www-b"}, ""},
		{[]string{"www-?", "zz*"}, nil, `no service matches "zz*"`},
		{[]string{"ghost"}, []string{"ghost"}, ""}, // the daemon says it is unknown
	} {
		got, err := expand(tc.args, known)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("expand(%q): %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	if err := checkSelectors([]string{"www-["}); err == nil {
		t.Error("a malformed pattern passed")
	}
}

func TestKeepCommand(t *testing.T) {
	for exe, want := range map[string]string{
		"/tmp/go-build1234/b001/exe/upkeep": "go run ./cmd/upkeep",
		"/opt/upkeep/bin/upkeep":            "/opt/upkeep/bin/upkeep",
	} {
		if got := keepCommand(exe); got != want {
			t.Errorf("keepCommand(%q) = %q, want %q", exe, got, want)
		}
	}
}

func TestColourTable(t *testing.T) {
	table := "NAME   STATE    PID\nwww-a  running  12\nwww-b  fatal    -\nwww-c  stopped  -\n"
	st := []api.Status{{Name: "www-a", State: api.Running}, {Name: "www-b", State: api.Fatal}, {Name: "www-c", State: api.Stopped}}
	got := string(colourTable([]byte(table), st))
	want := "NAME   STATE    PID\nwww-a  " + green + "running" + reset + "  12\nwww-b  " + red + "fatal" + reset + "    -\nwww-c  stopped  -\n"
	if got != want {
		t.Errorf("colourTable:\n%q\nwant\n%q", got, want)
	}
	if strings.Contains(string(colourTable([]byte("no header\n"), st)), "\033") {
		t.Error("coloured a table without a STATE column")
	}
}

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		s            api.Status
		want, failed bool
	}{
		{api.Status{State: api.Running}, true, false},
		{api.Status{State: api.Stopped}, true, false},
		{api.Status{State: api.Stopped, Error: "bad"}, false, true},
		{api.Status{State: api.Stopped, Detail: "waiting for www-db"}, false, false},
		{api.Status{State: api.Starting}, false, false},
		{api.Status{State: api.Backoff}, false, true},
		{api.Status{State: api.Fatal}, false, true},
		{api.Status{State: api.Exited, LastExit: "exit 0"}, false, false},
		{api.Status{State: api.Exited, LastExit: "exit 1"}, false, true},
	} {
		if wanted(tc.s) != tc.want || failed(tc.s) != tc.failed {
			t.Errorf("%+v: wanted %v failed %v, want %v %v", tc.s, wanted(tc.s), failed(tc.s), tc.want, tc.failed)
		}
	}
}
