package control

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseLogQuery(t *testing.T) {
	for q, want := range map[string]string{
		"":                             "",
		"names=www-a,www-b&n=5":        "",
		"n=-1&stream=err&follow=1":     "",
		"names=../etc":                 "service name",
		"n=abc":                        "n: want a number",
		"n=-2":                         "n: want a number",
		"n=100001":                     "at most 100000",
		"stream=both":                  "stream: want out or err",
		"since=10m":                    "since: want an RFC 3339 time",
		"until=2026-12-03T18:00:00Z":   "",
		"since=2026-12-03T18:00:00.5Z": "",
	} {
		v, _ := url.ParseQuery(q)
		_, err := parseLogQuery(v)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", q, err, want)
		}
	}
}

// FuzzParseLogQuery: any query is a query or one error, never a panic, and
// a query's names are service names (no path can come of them).
func FuzzParseLogQuery(f *testing.F) {
	for _, s := range []string{"names=www-a&n=5", "n=-1&follow=1", "names=../x", "since=2026-12-03T18:00:00Z", "n=99999999999999999999", "stream=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := parseLogQuery(v)
		if err != nil {
			return
		}
		for _, n := range q.Names {
			if strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
				t.Fatalf("%q: name %q taken", s, n)
			}
		}
		if q.N < -1 || q.N > MaxLogLines {
			t.Fatalf("%q: n %d taken", s, q.N)
		}
	})
}
