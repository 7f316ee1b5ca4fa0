package logsink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// The test binary doubles as the child processes of the tests and the
// benchmark (LOGSINK_HELPER): a writer of numbered lines, and a capturing
// "daemon" (bench_test.go).
func TestMain(m *testing.M) {
	switch os.Getenv("LOGSINK_HELPER") {
	case "writer":
		n, _ := strconv.ParseInt(os.Getenv("LINES"), 10, 64)
		size, _ := strconv.Atoi(os.Getenv("BUF"))
		var w io.Writer = os.Stdout
		if rate, _ := strconv.ParseInt(os.Getenv("RATE_MB"), 10, 64); rate > 0 {
			w = &paced{w: w, rate: float64(rate) * 1e6, start: time.Now()}
		}
		if err := writeLines(w, 0, n, max(size, 4096)); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "capture":
		os.Exit(captureMain())
	case "filewriter":
		os.Exit(fileWriter())
	case "history":
		os.Exit(historyMain())
	}
	os.Exit(m.Run())
}

// lineLen is the length of a numbered line, newline included: ten digits,
// a space, 48 x and a '|' that tells a whole line from a torn one.
const lineLen = 61

var lineRE = regexp.MustCompile(`^(\d{10}) x{48}\|$`)

// lastInOrder checks that lines are whole numbered lines in rising order
// (gaps allowed) and returns the last number, -1 for none.
func lastInOrder(t *testing.T, lines []string) int {
	t.Helper()
	last := -1
	for _, l := range lines {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("torn line %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= last {
			t.Fatalf("line %d after %d", n, last)
		}
		last = n
	}
	return last
}

func appendLine(b []byte, i int64) []byte {
	var d [10]byte
	for k := 9; k >= 0; k-- {
		d[k] = byte('0' + i%10)
		i /= 10
	}
	b = append(b, d[:]...)
	return append(b, " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx|\n"...)
}

// paced holds a writer to rate bytes a second.
type paced struct {
	w       io.Writer
	rate    float64
	start   time.Time
	written float64
}

func (p *paced) Write(b []byte) (int, error) {
	p.written += float64(len(b))
	if ahead := time.Duration(p.written/p.rate*float64(time.Second)) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return p.w.Write(b)
}

// writeLines writes lines from..to-1 as fast as it can, in writes of size
// bytes (a program's stdout buffer).
func writeLines(w io.Writer, from, to int64, size int) error {
	bw := bufio.NewWriterSize(w, size)
	buf := make([]byte, 0, lineLen)
	for i := from; i < to; i++ {
		buf = appendLine(buf[:0], i)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// readLog returns the lines of every file of the log in dir whose name
// starts with base, plain or gzip, by file name.
func readLog(t testing.TB, dir, base string) map[string][]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
		}
		s := string(b)
		if s != "" && !strings.HasSuffix(s, "\n") {
			t.Errorf("%s does not end with a newline", e.Name())
		}
		var lines []string
		if s != "" {
			lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		}
		out[e.Name()] = lines
	}
	return out
}

// names lists the files in dir, sorted.
func names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != ".upkeep" { // the time indexes (index.go)
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// openTest opens a sink whose clock, timer and retry delays a test may
// change before it starts.
func openTest(t testing.TB, path string, cfg spec.Log, tweak func(*Sink)) *Sink {
	t.Helper()
	s := newSink(path, cfg, true)
	if tweak != nil {
		tweak(s)
	}
	s.start()
	t.Cleanup(func() { s.Close(); s.Wait() })
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
