package logsink

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// TestIdlePipesHoldNoBuffer: a drain waits for its pipe's first byte
// before it takes a buffer, so a thousand quiet services cost no 8 MB of
// buffers; output that comes later is still written whole.
func TestIdlePipesHoldNoBuffer(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	sinks := make([]*Sink, n)
	writers := make([]*os.File, n)
	readers := make([]*os.File, n)
	done := make(chan struct{}, n)
	for i := range n {
		sinks[i] = openTest(t, filepath.Join(dir, "s"+string(rune('a'+i%26))+string(rune('a'+i/26))+".log"), spec.Log{When: spec.Untimed}, nil)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		readers[i], writers[i] = r, w
		t.Cleanup(func() { w.Close() })
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, r := range readers {
		go func() { defer r.Close(); sinks[i].Drain(r); done <- struct{}{} }()
	}
	// every drain parked on its pipe (goroutine state "IO wait")
	buf := make([]byte, 1<<22)
	eventually(t, 10*time.Second, "drains parked on their pipes", func() bool {
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "[IO wait") >= n
	})
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > n*minBuf/4 {
		t.Errorf("%d idle drains grew the heap by %d bytes (a buffer each would be %d)", n, grew, n*minBuf)
	}
	for _, w := range writers {
		if _, err := w.WriteString("hello\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	for range n {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a drain did not end after its pipe closed")
		}
	}
	for _, s := range sinks {
		b, err := os.ReadFile(s.Path())
		if err != nil || !bytes.Equal(b, []byte("hello\n")) {
			t.Fatalf("%s: %q, %v; want the line written", s.Path(), b, err)
		}
	}
}
