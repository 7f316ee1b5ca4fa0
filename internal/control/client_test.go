package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
)

// sentinels are the errors a caller branches on, each of which exactly one
// status code answers.
var sentinels = map[string]error{"ErrUnknown": ErrUnknown, "ErrBadRequest": ErrBadRequest, "ErrConflict": ErrConflict, "ErrDenied": ErrDenied, "ErrNoDaemon": ErrNoDaemon}

// isOnly fails unless err is the daemon's answer with code, matches want
// and none of the other sentinels, and still says what the daemon said.
func isOnly(t *testing.T, what string, err error, code int, want string, msg string) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Errorf("%s: %T %v, want a *control.Error", what, err, err)
		return
	}
	if e.Code != code || e.Error() != msg {
		t.Errorf("%s: %d %q, want %d %q", what, e.Code, e.Error(), code, msg)
	}
	for name, s := range sentinels {
		if errors.Is(err, s) != (name == want) {
			t.Errorf("%s: errors.Is(%v, %s) = %v", what, err, name, !(name == want))
		}
	}
}

// TestClientErrorsFromDaemon: the 404, 400 and 409 of a real daemon
// behind a real socket, as the client returns them.
func TestClientErrorsFromDaemon(t *testing.T) {
	h := newHost(t)
	h.service("www-fails", "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\n[restart]\npolicy = \"never\"\n")
	h.service("www-a", "command = [\"/bin/sleep\", \"1000\"]\n[stop]\ntimeout = \"1s\"\n")
	h.start(Options{})
	c := NewClient(h.sock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	unknown := `unknown service "www-nope"`
	_, err := c.Status(ctx, []string{"www-nope"})
	isOnly(t, "status", err, http.StatusNotFound, "ErrUnknown", unknown)
	_, err = c.StatusJSON(ctx, []string{"www-nope"})
	isOnly(t, "status --json", err, http.StatusNotFound, "ErrUnknown", unknown)
	_, err = c.History(ctx, "www-nope")
	isOnly(t, "history", err, http.StatusNotFound, "ErrUnknown", unknown)
	err = c.Events(ctx, "www-nope", false, func(api.Event) {})
	isOnly(t, "events", err, http.StatusNotFound, "ErrUnknown", unknown)
	for name, act := range map[string]func(context.Context, []string, ActOptions) error{"start": c.Start, "stop": c.Stop, "restart": c.Restart} {
		isOnly(t, name, act(ctx, []string{"www-nope"}, ActOptions{Wait: true, Timeout: 5 * time.Second}), http.StatusNotFound, "ErrUnknown", unknown)
	}
	isOnly(t, "signal", c.Signal(ctx, "www-nope", syscall.SIGHUP, false), http.StatusNotFound, "ErrUnknown", unknown)
	_, err = c.Rotate(ctx, []string{"www-nope"}, false)
	isOnly(t, "rotate", err, http.StatusNotFound, "ErrUnknown", unknown)

	isOnly(t, "a bad name", c.Start(ctx, []string{"../etc"}, ActOptions{}), http.StatusBadRequest, "ErrBadRequest", `service name "../etc" must be a-z 0-9 - _ . starting with a letter or digit`)
	isOnly(t, "a signal with no name", c.Signal(ctx, "www-a", syscall.Signal(99), false), http.StatusBadRequest, "ErrBadRequest", `unknown signal "99"`)
	_, err = c.Rotate(ctx, nil, false)
	isOnly(t, "rotate without names", err, http.StatusBadRequest, "ErrBadRequest", "rotate: name services, or all")

	// A service that exits at once, with no restart: start, waiting, is
	// refused by the daemon with why.
	err = c.Start(ctx, []string{"www-fails"}, ActOptions{Wait: true, Timeout: 10 * time.Second})
	if e, ok := errors.AsType[*Error](err); !ok || e.Code != http.StatusConflict {
		t.Fatalf("start www-fails: %v", err)
	}
	isOnly(t, "start www-fails", err, http.StatusConflict, "ErrConflict", err.Error())

	// And what works, works: the typed methods reach the daemon.
	if err := c.Start(ctx, []string{"www-a"}, ActOptions{Wait: true, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if st := h.status("www-a"); st.State != api.Running {
		t.Fatalf("www-a after start: %+v", st)
	}
	if err := c.Stop(ctx, []string{"www-a"}, ActOptions{Wait: true, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if st := h.status("www-a"); st.State != api.Stopped {
		t.Fatalf("www-a after stop: %+v", st)
	}

	_, err = NewClient(filepath.Join(t.TempDir(), "none.sock")).Status(ctx, nil)
	if !errors.Is(err, ErrNoDaemon) || errors.Is(err, ErrUnknown) {
		t.Errorf("no socket: %v", err)
	}
}

// backend is a Backend that records what it is asked and answers with the
// error set for the call.
type backend struct {
	Backend // the rest: not called
	mu      sync.Mutex
	calls   []string
	err     error
}

func (b *backend) record(ctx context.Context, what string, names []string, wait bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, deadline := ctx.Deadline()
	b.calls = append(b.calls, fmt.Sprintf("%s %v wait=%v deadline=%v", what, names, wait, deadline))
	return b.err
}

func (b *backend) Start(ctx context.Context, names []string, wait bool) error {
	return b.record(ctx, "start", names, wait)
}
func (b *backend) Stop(ctx context.Context, names []string, wait bool) error {
	return b.record(ctx, "stop", names, wait)
}
func (b *backend) Restart(ctx context.Context, names []string, wait bool) error {
	return b.record(ctx, "restart", names, wait)
}
func (b *backend) Signal(name string, sig syscall.Signal, all bool) error {
	return b.record(context.Background(), fmt.Sprintf("signal %d all=%v", sig, all), []string{name}, false)
}
func (b *backend) Reload(ctx context.Context) (api.ReloadResult, error) {
	return api.ReloadResult{}, b.record(ctx, "reload", nil, false)
}
func (b *backend) Owner(int) (string, error) { return "", nil }

// TestClientMethods: each typed method sends the request its route always
// took (scripts use the same routes), and a Backend's errors come back as
// 409, or 404 when they wrap api.ErrUnknown.
func TestClientMethods(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "upkeep.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, b, Options{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	c := NewClient(sock)
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
	defer tcancel()
	for _, err := range []error{
		c.Start(tctx, []string{"www-a", "www-b"}, ActOptions{Wait: true, Timeout: time.Minute}),
		c.Stop(tctx, []string{"www-a"}, ActOptions{}),
		c.Restart(tctx, []string{"www-b"}, ActOptions{Wait: true}),
		c.Signal(tctx, "www-a", syscall.SIGHUP, true),
		c.Signal(tctx, "www-a", syscall.Signal(40), false), // a real-time signal: no name, sent as its number
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"start [www-a www-b] wait=true deadline=true",
		"stop [www-a] wait=false deadline=false",
		"restart [www-b] wait=true deadline=false",
		"signal 1 all=true [www-a] wait=false deadline=false",
		"signal 40 all=false [www-a] wait=false deadline=false",
	}
	if !slices.Equal(b.calls, want) {
		t.Errorf("the backend was asked\n%q\nwant\n%q", b.calls, want)
	}

	b.err = errors.New("www-a: stop timed out after 1s")
	isOnly(t, "a backend's error", c.Stop(tctx, []string{"www-a"}, ActOptions{}), http.StatusConflict, "ErrConflict", "www-a: stop timed out after 1s")
	_, err = c.Reload(tctx)
	isOnly(t, "a failed reload", err, http.StatusConflict, "ErrConflict", "www-a: stop timed out after 1s")
	b.err = fmt.Errorf("start www-c: %w %q", api.ErrUnknown, "www-d")
	isOnly(t, "a wrapped ErrUnknown", c.Start(tctx, []string{"www-c"}, ActOptions{}), http.StatusNotFound, "ErrUnknown", `start www-c: unknown service "www-d"`)
}
