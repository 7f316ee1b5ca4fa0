package spec

import (
	"strings"
	"testing"
)

// sections are [log] sections that service.toml must read back as
// written.
var sections = []Log{
	DefaultLog(),
	{When: Hourly, Size: 64 << 20, MinSize: 1, Rotate: 24, Compress: true, DateExt: true},
	{When: Weekly, Rotate: 0, NotIfEmpty: true, MaxAge: 30},
	{When: Monthly, Rotate: -1, MissingOK: true, DateExt: true, DateFormat: "-%Y%m%d-%s", DateYesterday: true},
	{When: Yearly, Rotate: 3, Compress: true, DelayCompress: true},
	{When: Untimed, Size: 100 << 20, Rotate: 5, Compress: true},
	{When: Untimed, Size: 12345, Rotate: 1, DateFormat: "-%s"},
}

func TestSectionRoundTrip(t *testing.T) {
	for _, l := range sections {
		got, ps := Parse("/srv/root", testDir, []byte("command = [\"/bin/true\"]\n"+l.Section()))
		if len(ps) > 0 || got.Log != l {
			t.Errorf("%s read back as %+v %v", l.Section(), got, ps)
		}
		// The section validates as it is.
		var p Problems
		l2 := l
		l2.check(func(key, format string, args ...any) { p = append(p, Problem{Key: key}) })
		if len(p) > 0 || l2 != l {
			t.Errorf("%+v: %v", l, p)
		}
	}
}

func TestLogSectionProblems(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[log]\nwhen = \"fortnightly\"", `:3:1: log.when: "fortnightly" is not one of hourly, daily, weekly, monthly, yearly, never`},
		{"[log]\nsize = \"12Q\"", `:3:8: log.size: want a size like "200M", got "12Q"`},
		{"[log]\nsize = -1", `:3:8: log.size: want a size like "200M", got "-1"`},
		{"[log]\nsize = \"1M\"\nmaxsize = \"2M\"", ":4:1: log.maxsize: is the same setting as size; set only one"},
		{"[log]\nrotate = -2", ":3:1: log.rotate: must be -1 (keep all), 0 (keep none) or a count"},
		{"[log]\nmaxage = -1", ":3:1: log.maxage: must be a number of days, 0 for no limit"},
		{"[log]\ndateformat = \"-%F\"", `:3:1: log.dateformat: dateformat "-%F": only %Y %m %d %H %M %S %V %s are allowed`},
		{"[log]\nfrequency = \"daily\"", ":3:1: log.frequency: unknown key"},
	} {
		_, ps := Parse("/srv/root", testDir, []byte("command = [\"/bin/true\"]\n"+c.body))
		if len(ps) == 0 || !strings.HasSuffix(ps[0].String(), c.want) {
			t.Errorf("%q: got %v, want …%s", c.body, ps, c.want)
		}
	}
	s, ps := Parse("/srv/root", testDir, []byte("command = [\"/bin/true\"]\n[log]\nmaxsize = \"2M\"\nminsize = 1024\nwhen = \"never\""))
	if len(ps) > 0 || s.Log.Size != 2<<20 || s.Log.MaxSize != 0 || s.Log.MinSize != 1024 || s.Log.When != Untimed {
		t.Errorf("maxsize: %+v %v", s.Log, ps)
	}
}

func TestSizeText(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "512": "512", "64K": "64k", "64k": "64k", "100M": "100M", "1G": "1G", "1.5k": "1536", "2048M": "2G"} {
		var s Size
		if err := s.UnmarshalText([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if s.String() != want {
			t.Errorf("%s → %s, want %s", in, s, want)
		}
	}
}
