package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"upkeep/internal/spec"
	"upkeep/internal/supervise"
)

// Backend is what the API drives: the supervise.Daemon.
type Backend interface {
	Status(names []string) ([]supervise.Status, error)
	Start(ctx context.Context, names []string, wait bool) error
	Stop(ctx context.Context, names []string, wait bool) error
	Restart(ctx context.Context, names []string, wait bool) error
	Signal(name string, sig syscall.Signal, all bool) error
	Reload(ctx context.Context) (supervise.ReloadResult, error)
	Events(service string) []supervise.Event
	Follow() (<-chan supervise.Event, func())
	History(name string) (supervise.History, error)
}

// Request is the body of an action request.
type Request struct {
	Names   []string `json:"names"`
	Wait    bool     `json:"wait"`
	Timeout string   `json:"timeout,omitempty"`
	Signal  string   `json:"signal,omitempty"`
	All     bool     `json:"all,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

// Listen opens the control socket at path with mode 0600. The umask is
// tightened around bind so the socket is never, even briefly, open to others.
func Listen(path string) (net.Listener, error) {
	_ = os.Remove(path) // the caller holds the host lock: any socket here is stale
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Handler routes the API to b.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		if q := r.URL.Query().Get("names"); q != "" {
			names = strings.Split(q, ",")
		}
		st, err := b.Status(names)
		reply(w, st, err)
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		h, err := b.History(r.URL.Query().Get("name"))
		reply(w, h, err)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		service := r.URL.Query().Get("service")
		if service != "" {
			if _, err := b.Status([]string{service}); err != nil {
				reply(w, nil, err)
				return
			}
		}
		streamEvents(w, r, b, service, r.URL.Query().Get("follow") == "1")
	})
	action := func(do func(ctx context.Context, req Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req Request
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{"bad request: " + err.Error()})
				return
			}
			for _, n := range req.Names {
				if err := spec.CheckName(n); err != nil {
					writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
					return
				}
			}
			ctx := r.Context()
			if req.Timeout != "" {
				d, err := time.ParseDuration(req.Timeout)
				if err != nil {
					writeJSON(w, http.StatusBadRequest, errorBody{"bad timeout: " + err.Error()})
					return
				}
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			v, err := do(ctx, req)
			reply(w, v, err)
		}
	}
	ok := map[string]bool{"ok": true}
	mux.Handle("POST /v1/start", action(func(ctx context.Context, req Request) (any, error) {
		return ok, b.Start(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/stop", action(func(ctx context.Context, req Request) (any, error) {
		return ok, b.Stop(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/restart", action(func(ctx context.Context, req Request) (any, error) {
		return ok, b.Restart(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/signal", action(func(ctx context.Context, req Request) (any, error) {
		if len(req.Names) != 1 {
			return nil, badRequest("signal takes exactly one service")
		}
		sig, err := spec.ParseSignal(req.Signal)
		if err != nil {
			return nil, badRequest(err.Error())
		}
		return ok, b.Signal(req.Names[0], sig, req.All)
	}))
	mux.Handle("POST /v1/reload", action(func(ctx context.Context, req Request) (any, error) {
		return b.Reload(ctx)
	}))
	mux.Handle("POST /v1/rotate", action(rotate(b)))
	return mux
}

// streamEvents writes events as JSON lines: the recent ones, then, when
// following, each new one as it happens until the client goes away.
func streamEvents(w http.ResponseWriter, r *http.Request, b Backend, service string, follow bool) {
	var live <-chan supervise.Event
	if follow {
		ch, cancel := b.Follow() // subscribe first, so nothing falls between backlog and live
		defer cancel()
		live = ch
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	var last time.Time
	for _, e := range b.Events(service) {
		_ = enc.Encode(e)
		last = e.Time
	}
	flusher, _ := w.(http.Flusher)
	if !follow {
		return
	}
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case e := <-live:
			if (service != "" && e.Service != service) || !e.Time.After(last) {
				continue
			}
			if enc.Encode(e) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

type badRequest string

func (e badRequest) Error() string { return string(e) }

func reply(w http.ResponseWriter, v any, err error) {
	var br badRequest
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, supervise.ErrUnknown):
		writeJSON(w, http.StatusNotFound, errorBody{err.Error()})
	case errors.As(err, &br):
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
	default:
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve answers the API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, b Backend) error {
	srv := &http.Server{Handler: Handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}
