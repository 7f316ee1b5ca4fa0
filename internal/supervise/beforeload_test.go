package supervise

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The hook of SetBeforeLoad runs before the definitions are read, at Load
// and at each Reload: what it writes (here a definition; in the daemon, a
// half-done deploy undone) is what the daemon sees.
func TestBeforeLoadRunsFirst(t *testing.T) {
	h := newHost(t)
	d, err := New(h.root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	d.SetBeforeLoad(func() {
		calls++
		h.write("service-b"+strconv.Itoa(calls), "command = [\"/bin/sleep\", \"1000\"]\nautostart = false\n")
	})
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not shut down")
		}
	})
	if st, err := d.Status([]string{"service-b1"}); err != nil || len(st) != 1 {
		t.Fatalf("after Load: %v, %v; want service-b1, written by the hook", st, err)
	}
	res, err := d.Reload(ctx)
	if err != nil || !slices.Contains(res.Added, "service-b2") || calls != 2 {
		t.Fatalf("Reload: %+v, %v, %d calls; want service-b2 added", res, err, calls)
	}
}
