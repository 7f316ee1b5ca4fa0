package supervise

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upkeep/internal/api"
)

// start --wait tells a start that failed from one that is only slow.
func TestStartWaitReportsHowItFailed(t *testing.T) {
	h := newHost(t)
	h.write("service-exits", `script = "exit 3"
autostart = false
ready_after = "10s"
[restart]
policy = "never"
`)
	h.write("service-crashes", `script = "exit 1"
autostart = false
ready_after = "10s"
[restart]
backoff = "5ms"
limit = 2
`)
	h.write("service-slow", `command = ["/bin/sleep", "1000"]
autostart = false
ready_after = "1h"
`)
	h.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.d.Start(ctx, []string{"service-exits"}, true)
	if err == nil || err.Error() != "service-exits: exited (exit 3)" {
		t.Errorf("start of a service that exits: %v, want service-exits: exited (exit 3)", err)
	}
	err = h.d.Start(ctx, []string{"service-crashes"}, true)
	if err == nil || !strings.HasPrefix(err.Error(), "service-crashes: fatal (exit 1): started 2 times within") {
		t.Errorf("start of a crash loop: %v, want service-crashes: fatal (exit 1): started 2 times within …", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	err = h.d.Start(short, []string{"service-slow"}, true)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "service-slow: still starting after waiting") {
		t.Errorf("start that outlives its wait: %v, want still starting and the deadline", err)
	}
	if st := h.status("service-slow"); st.State != api.Starting || st.Pid == 0 {
		t.Errorf("service-slow after its caller gave up: %s pid %d, want it still starting", st.State, st.Pid)
	}
}

// A reload that cannot read the definitions at all changes nothing.
func TestReloadThatCannotReadLeavesAllRunning(t *testing.T) {
	h := newHost(t)
	h.write("service-a", `command = ["/bin/sleep", "1000"]`+fast)
	h.start()
	before := h.waitState("service-a", api.Running)
	www := filepath.Join(h.root, "var/www")
	moved := filepath.Join(h.root, "www.moved")
	if err := os.Rename(www, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(www, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := h.d.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "read services:") {
		t.Errorf("reload of an unreadable var/www: %+v, %v; want the read error", res, err)
	}
	if st := h.status("service-a"); st.State != api.Running || st.Pid != before.Pid {
		t.Errorf("service-a after the failed reload: %s pid %d, want running pid %d", st.State, st.Pid, before.Pid)
	}
	// Put back, the same definitions are a reload that touches nothing.
	os.Remove(www)
	if err := os.Rename(moved, www); err != nil {
		t.Fatal(err)
	}
	res, err = h.d.Reload(context.Background())
	if err != nil || strings.Join(res.Unchanged, ",") != "service-a" || len(res.Removed)+len(res.Changed)+len(res.Added) != 0 {
		t.Errorf("reload after the fix: %+v, %v; want service-a unchanged", res, err)
	}
}

// A reload whose caller stops waiting while a removed service is still
// stopping returns the error, adds nothing, and leaves the host as it is;
// the next reload finishes the job.
func TestReloadWhoseStopTimesOut(t *testing.T) {
	h := newHost(t)
	trapped := filepath.Join(h.root, "trapped")
	h.write("service-stubborn", `script = """
trap '' TERM
: > `+trapped+`
while true; do sleep 0.05; done
"""
ready_after = "0s"
[stop]
timeout = "2s"
`)
	h.start()
	stubborn := h.waitState("service-stubborn", api.Running)
	h.eventually(10*time.Second, "the TERM trap", func() bool { _, err := os.Stat(trapped); return err == nil })
	os.RemoveAll(filepath.Join(h.root, "var/www/service-stubborn"))
	h.write("service-new", `command = ["/bin/sleep", "1000"]`+fast)

	// It ignores TERM, so its stop takes the whole 2 s timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := h.d.Reload(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reload cut short: %v, want the deadline", err)
	}
	if st := h.status("service-stubborn"); st.State != api.Stopping {
		t.Errorf("service-stubborn is %s, want still stopping", st.State)
	}
	if _, err := h.d.Status([]string{"service-new"}); !errors.Is(err, api.ErrUnknown) {
		t.Errorf("service-new after the cut-short reload: %v, want not added yet", err)
	}

	res, err := h.d.Reload(context.Background())
	if err != nil || strings.Join(res.Removed, ",") != "service-stubborn" || strings.Join(res.Added, ",") != "service-new" {
		t.Fatalf("second reload: %+v, %v", res, err)
	}
	if alive(stubborn.Pid) {
		t.Error("service-stubborn still runs after its removal")
	}
	if _, err := h.d.Status([]string{"service-stubborn"}); !errors.Is(err, api.ErrUnknown) {
		t.Errorf("service-stubborn after removal: %v, want unknown", err)
	}
	h.waitState("service-new", api.Running)
}

// probeCounter is an HTTP server on 127.0.0.1 that counts the probes of
// each path.
type probeCounter struct {
	url  string
	gone atomic.Int64 // probes of /gone
	kept atomic.Int64 // probes of /kept
}

func newProbeCounter(t *testing.T) *probeCounter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := &probeCounter{url: "http://" + l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			pc.gone.Add(1)
		case "/kept":
			pc.kept.Add(1)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return pc
}

// Removing a service with checks frees its history and stops its monitor.
func TestRemovedServiceWithChecksIsForgotten(t *testing.T) {
	h := newHost(t)
	pc := newProbeCounter(t)
	checked := func(path string) string {
		return `command = ["/bin/sleep", "1000"]` + fast + `
[[check]]
type = "http"
url = "` + pc.url + path + `"
interval = "20ms"
timeout = "1s"
`
	}
	h.write("service-gone", checked("/gone"))
	h.write("service-kept", checked("/kept"))
	h.start()
	h.waitState("service-gone", api.Running)
	h.eventually(10*time.Second, "probes of service-gone in its history", func() bool {
		hist, err := h.d.History("service-gone")
		return err == nil && len(hist.Checks) >= 3
	})
	os.RemoveAll(filepath.Join(h.root, "var/www/service-gone"))
	res, err := h.d.Reload(context.Background())
	if err != nil || strings.Join(res.Removed, ",") != "service-gone" {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if _, err := h.d.History("service-gone"); !errors.Is(err, api.ErrUnknown) {
		t.Errorf("history of the removed service: %v, want unknown", err)
	}
	j := h.d.journal
	j.mu.Lock()
	_, events := j.events["service-gone"]
	_, checks := j.checks["service-gone"]
	_, names := j.names["service-gone"]
	_, samples := j.samples["service-gone"]
	j.mu.Unlock()
	if events || checks || names || samples {
		t.Errorf("journal still holds service-gone: events %v checks %v names %v samples %v", events, checks, names, samples)
	}
	// The kept service's probes are the clock: ten more of them, at the
	// same interval, and not one of the removed service's.
	gone, kept := pc.gone.Load(), pc.kept.Load()
	h.eventually(10*time.Second, "ten more probes of service-kept", func() bool { return pc.kept.Load() >= kept+10 })
	if n := pc.gone.Load(); n != gone {
		t.Errorf("%d probes of service-gone after its removal", n-gone)
	}
}
