package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upkeep/internal/spec"
)

func TestRunHook(t *testing.T) {
	dir := t.TempDir()
	c := &spec.Check{Name: "web", Type: "http", Then: "exec"}
	started := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	ev := Event{Kind: Failed, Check: c, Streak: 3, Result: Result{Check: "web", Message: "HTTP 500, want 200-399", Latency: 1500 * time.Microsecond, Started: started}}
	argv := []string{"/bin/sh", "-c", `env > "$1/env"; cat > "$1/stdin"`, "hook", dir}
	if err := RunHook(context.Background(), testExec, argv, "www-test", ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"UPKEEP_SERVICE=www-test", "UPKEEP_CHECK=web", "UPKEEP_EVENT=failed", "UPKEEP_MESSAGE=HTTP 500, want 200-399"} {
		if !strings.Contains("\n"+string(env), "\n"+want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	stdin, err := os.ReadFile(filepath.Join(dir, "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(stdin, &got); err != nil {
		t.Fatalf("stdin %q: %v", stdin, err)
	}
	want := map[string]any{"service": "www-test", "check": "web", "event": "failed", "ok": false,
		"message": "HTTP 500, want 200-399", "latency_ns": 1.5e6, "time": "2025-03-04T05:06:07Z"}
	if len(got) != len(want) {
		t.Errorf("stdin has %d keys, want %d: %s", len(got), len(want), stdin)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stdin %s = %v, want %v", k, got[k], v)
		}
	}
}

func TestRunHookFailures(t *testing.T) {
	ev := Event{Kind: Recovered, Check: &spec.Check{Name: "web"}, Result: Result{OK: true, Message: "HTTP 200"}}
	if err := RunHook(context.Background(), testExec, []string{"sh", "-c", "exit 4"}, "www-test", ev, time.Second); err == nil || err.Error() != "hook sh: exit 4" {
		t.Errorf("exit 4: %v", err)
	}
	// A hook that neither reads stdin nor ends is killed at the timeout.
	begin := time.Now()
	err := RunHook(context.Background(), testExec, []string{"sleep", "100"}, "www-test", ev, 100*time.Millisecond)
	if err == nil || err.Error() != "hook sleep: timeout after 100ms" || time.Since(begin) > 2*time.Second {
		t.Errorf("timeout: %v after %s", err, time.Since(begin))
	}
	if err := RunHook(context.Background(), testExec, nil, "www-test", ev, time.Second); err == nil {
		t.Error("empty argv accepted")
	}
}

func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }))
	defer srv.Close()
	c := &spec.Check{Name: "web", Type: "http", URL: srv.URL + "/ok", Method: "GET", Body: "ok", StatusMin: 200, StatusMax: 399, Timeout: spec.Duration(5 * time.Second)}
	var s ProbeState
	defer s.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := Probe(ctx, c, nil, &s); !r.OK {
			b.Fatal(r.Message)
		}
	}
}
