package supervise

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"upkeep/internal/logsink"
)

// BenchmarkCaptureLogReady is capture throughput through a pipe into a
// log file, as a service's stdout: "drain" is logsink's Drain (every
// service, and a log:REGEX one once it is ready); "watch" is watchLog
// before readiness, matching every line against a pattern that never
// matches.
func BenchmarkCaptureLogReady(b *testing.B) {
	line := bytes.Repeat([]byte("x"), 99)
	line = append(line, '\n')
	chunk := bytes.Repeat(line, 640) // 64000 bytes
	for _, mode := range []string{"drain", "watch"} {
		b.Run(mode, func(b *testing.B) {
			sink, err := logsink.Open(filepath.Join(b.TempDir(), "x.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			s := &service{readyC: make(chan readyWord, 1), done: make(chan struct{})}
			defer close(s.done)
			var wg sync.WaitGroup
			wg.Add(1)
			if mode == "drain" {
				go drain(sink, r, &wg)
			} else {
				go s.watchLog(sink, r, &wg, &launch{match: regexp.MustCompile(`^listening on :\d+$`)})
			}
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			wg.Wait()
		})
	}
}
