package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReadStatAgreesWithProcfs: our reader and prometheus/procfs read the
// same numbers from a live process (this one, which is still spinning).
func TestReadStatAgreesWithProcfs(t *testing.T) {
	pid := os.Getpid()
	for i := 0; i < 3; i++ {
		mine, err := readStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newProc(pid)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := p.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if mine.starttime != theirs.Starttime {
			t.Fatalf("starttime %d, procfs %d", mine.starttime, theirs.Starttime)
		}
		// CPU and RSS move between the two reads; only the order of magnitude must agree
		if mine.utime > uint64(theirs.UTime) || mine.stime > uint64(theirs.STime) {
			t.Fatalf("utime/stime %d/%d after procfs read %d/%d", mine.utime, mine.stime, theirs.UTime, theirs.STime)
		}
		if r := float64(mine.rss) / float64(theirs.RSS); r < 0.5 || r > 2 {
			t.Fatalf("rss %d pages, procfs %d", mine.rss, theirs.RSS)
		}
	}
	if _, err := readStat(1 << 30); err == nil {
		t.Fatal("readStat of a pid that cannot exist: no error")
	}
}

var statSeeds = []string{
	"1234 (sleep) S 1 1234 1234 0 -1 4194560 97 0 0 0 3 4 0 0 20 0 1 0 5678 8192000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
	"42 (a b) c)) R 1 42 42 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 99 0 7 0\n",
	"7 (x) S 1 2 3 4 5 6 7 8 9 10 11 12",
	"7 x) S 1 2 3 4 5 6 7 8 9 10 -11 12 13 14 15 16 17 18 19 20 21 22 23",
	"",
	")",
}

// statFields is the obvious reference: split after the last ')'.
func statFields(s string) ([]string, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(s[i+1:]), true
}

func TestParseStat(t *testing.T) {
	st, err := parseStat([]byte(statSeeds[0]))
	if err != nil || st.utime != 3 || st.stime != 4 || st.starttime != 5678 || st.rss != 250 {
		t.Fatalf("parseStat = %+v, %v", st, err)
	}
	st, err = parseStat([]byte(statSeeds[1]))
	if err != nil || st.utime != 10 || st.stime != 20 || st.starttime != 99 || st.rss != 7 {
		t.Fatalf("comm with parentheses: parseStat = %+v, %v", st, err)
	}
	for _, bad := range statSeeds[2:] {
		if st, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, st)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	for _, s := range statSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat([]byte(s))
		fs, ok := statFields(s)
		if !ok || len(fs) < 22 {
			return
		}
		// only lines separated by spaces alone (one final newline at most)
		// have a reference answer
		if strings.ContainsAny(strings.TrimSuffix(s[strings.LastIndexByte(s, ')')+1:], "\n"), "\t\r\v\f\n\u0085\u00a0") {
			return
		}
		want := func(k int) (uint64, bool) {
			v, err := strconv.ParseUint(fs[k-3], 10, 64)
			return v, err == nil
		}
		u, ok1 := want(14)
		s2, ok2 := want(15)
		b, ok3 := want(22)
		r, ok4 := want(24)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return
		}
		if err != nil {
			t.Fatalf("parseStat(%q): %v, want %d %d %d %d", s, err, u, s2, b, r)
		}
		if st.utime != u || st.stime != s2 || st.starttime != b || st.rss != r {
			t.Fatalf("parseStat(%q) = %+v, want %d %d %d %d", s, st, u, s2, b, r)
		}
	})
}

// TestReadPids: numbers across read boundaries (more than one buffer), with
// and without a final newline; anything but digits and newlines is an error.
func TestReadPids(t *testing.T) {
	dir := t.TempDir()
	var want []int
	var b strings.Builder
	for i := 0; i < 3000; i++ {
		want = append(want, 100000+i*7)
		b.WriteString(strconv.Itoa(want[i]) + "\n")
	}
	p := dir + "/procs"
	for _, body := range []string{b.String(), strings.TrimSuffix(b.String(), "\n")} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readPids(p)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("readPids: %d pids, want %d", len(got), len(want))
		}
	}
	for _, bad := range []string{"12 13\n", "-1\n", "99999999999\n"} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := readPids(p); err == nil {
			t.Errorf("readPids(%q) = %v, want an error", bad, got)
		}
	}
	if _, err := readPids(dir + "/missing"); err == nil {
		t.Fatal("readPids of a missing file: no error")
	}
}
