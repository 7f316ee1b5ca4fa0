package dashboard

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// BenchmarkHostPage renders the host page of a real daemon with 100
// services (50 with an HTTP check every 100 ms, so their histories fill),
// as a browser's first load and every stream tick do. bytes/op is the
// garbage one render leaves; heap-MB the live heap after it.
func BenchmarkHostPage(b *testing.B) {
	ok := okServerB(b)
	svcs := map[string]string{}
	for i := 0; i < 100; i++ {
		body := `command = ["/bin/sleep", "1000"]` + "\n"
		if i%2 == 0 {
			body += fmt.Sprintf("[[check]]\ntype = \"http\"\nurl = \"%s/ok\"\ninterval = \"20ms\"\n", ok)
		}
		svcs[fmt.Sprintf("service-%03d", i)] = body
	}
	h := newHostTB(b, svcs)
	deadline := time.Now().Add(30 * time.Second)
	for {
		hist, _ := h.d.History("service-000")
		if len(hist.Checks) >= 1024 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := New(h.d, Options{Addr: "127.0.0.1:0", Root: h.root})
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ServeHTTP(discard{}, req)
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (discard) WriteHeader(int)             {}
