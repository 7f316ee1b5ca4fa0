package compat

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dumpMonit is everything a monit parse returns, as text: the file's
// notes, then each draft as it would be written.
func dumpMonit(ds []*Draft, notes []Note) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n.String() + "\n")
	}
	for _, d := range ds {
		data := d.render()
		b.WriteString("== " + d.Name + "\n")
		b.Write(data)
	}
	return b.String()
}

// checkParts parses data whole and in parts and wants the same result.
func checkParts(t *testing.T, data []byte, parts int) {
	t.Helper()
	whole := dumpMonit(parseMonit("in.monitrc", data, Options{}, 1))
	cut := dumpMonit(parseMonit("in.monitrc", data, Options{}, parts))
	if whole != cut {
		t.Errorf("%d parts read differently from the whole:\n--- whole\n%s\n--- parts\n%s", parts, whole, cut)
	}
}

// TestMonitParts: a file parsed in parts on several cores reads exactly
// as it does whole, including where a cut would fall inside a string, an
// unclosed { list or a statement that goes on (then the parts are given
// up).
func TestMonitParts(t *testing.T) {
	var all []byte
	files, _ := filepath.Glob("testdata/import/monit/*.monitrc")
	for _, f := range files {
		if strings.Contains(f, "include") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
		all = append(all, '\n')
	}
	stanza := func(i int) string {
		return "check process p" + string(rune('a'+i%26)) + "-" + strings.Repeat("x", i%3) + " with pidfile /run/p.pid\n  start program = \"/bin/p\"\n  if failed port 80 then restart\n"
	}
	cases := map[string]string{
		"testdata":            string(all),
		"generated":           string(monitFile(40)),
		"set daemon late":     string(monitFile(20)) + "set daemon 60\n" + string(monitFile(3)),
		"string across a cut": stanza(1) + "  start program = \"/bin/sh -c 'x\n" + stanza(2) + stanza(3) + "'\"\n" + stanza(4) + stanza(5),
		"open list":           stanza(1) + "  if failed port 81 options { a\n" + stanza(2) + "}\n" + stanza(3) + stanza(4),
		"then before check":   stanza(1) + "  if cpu > 5% then\n" + stanza(2) + stanza(3) + stanza(4),
		"noise before check":  stanza(1) + "  depends on a and\n" + stanza(2) + stanza(3),
		"include":             stanza(1) + "include /nonexistent/*\n" + stanza(2) + stanza(3),
		"upper case":          strings.ToUpper(stanza(1)) + "  CHECK PROCESS z\n" + stanza(2) + "\tcheck\thost h with address 1.2.3.4\n" + stanza(3),
		"continued":           stanza(1) + "  depends on a \\\n" + stanza(2) + stanza(3),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			for _, parts := range []int{2, 3, 5, 8, 64} {
				checkParts(t, []byte(data), parts)
			}
		})
	}
	// A large file is cut, and the cuts hold.
	data := monitFile(2000)
	if len(data) < monitPartMin {
		t.Fatalf("%d bytes: not cut", len(data))
	}
	st := &monitState{opt: Options{}, seen: map[string]bool{}}
	if !st.parseParts("in.monitrc", data, 8) || len(st.drafts) != 2000 {
		t.Errorf("the benchmark file was not parsed in parts (%d drafts)", len(st.drafts))
	}
	checkParts(t, data, 8)
}

// FuzzMonitParts holds parts and whole to the same reading on any input.
// Seeds: the monit testdata and testdata/fuzz/FuzzMonit's corpus.
func FuzzMonitParts(f *testing.F) {
	for _, pattern := range []string{"testdata/import/monit/*.monitrc", "testdata/fuzz/FuzzMonit/*"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			// A corpus entry: "go test fuzz v1" and []byte("…").
			if rest, ok := bytes.CutPrefix(data, []byte("go test fuzz v1\n[]byte(")); ok {
				s, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(rest)), ")")))
				if err != nil {
					continue
				}
				data = []byte(s)
			}
			f.Add(data)
		}
	}
	f.Add(monitFile(5))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParts(t, data, 3)
	})
}
