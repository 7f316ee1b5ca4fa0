package logsink

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// chunky returns its data in reads of the given sizes, splitting lines.
type chunky struct {
	data  []byte
	sizes []int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[0])
		c.sizes = c.sizes[1:]
	}
	n = min(n, len(p))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// recorder notes every Write the sink gets, through the file it writes.
func TestDrainWritesWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("x", i%97))
	}
	in.WriteString("no newline at the end")
	want := in.String()
	sizes := []int{1, 2, 3, 7, 4096, 13, 65536, 5, 100000}
	for i := 0; i < 2000; i++ {
		sizes = append(sizes, 1+i*37%300)
	}
	s.Drain(&chunky{data: in.Bytes(), sizes: sizes})
	s.Close()
	got, _ := os.ReadFile(path)
	if string(got) != want {
		t.Fatalf("file differs from input: %d vs %d bytes", len(got), len(want))
	}
}

func TestConcurrentDrainsNeverInterleaveLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		r, wr, _ := os.Pipe()
		wg.Add(1)
		go func() { defer wg.Done(); s.Drain(r); r.Close() }()
		go func() {
			for i := range 20000 {
				fmt.Fprintf(wr, "writer %d line %d %s\n", w, i, strings.Repeat("y", i%50))
			}
			wr.Close()
		}()
	}
	wg.Wait()
	s.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 80000 {
		t.Fatalf("%d lines, want 80000", len(lines))
	}
	for _, l := range lines {
		var w, i int
		var rest string
		if n, _ := fmt.Sscanf(l, "writer %d line %d %s", &w, &i, &rest); n < 2 || (i%50 != 0 && len(rest) != i%50) {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestWriteAfterCloseCountsDropped(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "x.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Write([]byte("lost\n"))
	if s.Dropped() != 5 {
		t.Errorf("dropped %d, want 5", s.Dropped())
	}
}
