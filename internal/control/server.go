package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/spec"
)

// Backend is what the API drives: the supervise.Daemon. An error that
// wraps api.ErrUnknown is answered 404, one of a request the Backend finds
// malformed 400, any other 409; the client turns each into its ErrX.
type Backend interface {
	Status(names []string) ([]api.Status, error)
	Start(ctx context.Context, names []string, wait bool) error
	Stop(ctx context.Context, names []string, wait bool) error
	Restart(ctx context.Context, names []string, wait bool) error
	Signal(name string, sig syscall.Signal, all bool) error
	Reload(ctx context.Context) (api.ReloadResult, error)
	Events(service string) []api.Event
	Follow() (<-chan api.Event, func())
	History(name string) (api.History, error)
	// Rotate rotates the logs of names now, or of every service with none.
	Rotate(names []string) ([]api.Rotated, error)
	// Owner names the service pid is a process of, if any: such a peer
	// may read and act on that service only. An error (it cannot tell)
	// refuses the request.
	Owner(pid int) (string, error)
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

// Listen opens the control socket at path. It is bound under a tight
// umask, so it is never, even briefly, open to others, and then opened to
// every local user (0666): the socket has one group but access has two (an
// admin and a read group), and a refused user should learn why, which
// only an answer can tell. Serve checks each request's peer, and bounds
// what anyone can make the daemon hold.
func Listen(path string) (net.Listener, error) {
	_ = os.Remove(path) // the caller holds the host lock: any socket here is stale
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// SocketMode is the control socket's mode (see Listen).
const SocketMode = 0o666

// Handler routes the API to b. It checks no credentials: Serve puts
// guard in front of it; a request whose context names a service (a
// service's own process) is kept to that service here.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		if q := r.URL.Query().Get("names"); q != "" {
			names = strings.Split(q, ",")
		}
		if own := scope(r); own != "" {
			if names == nil {
				names = []string{own}
			}
			if !onlyOwn(w, own, names) {
				return
			}
		}
		st, err := b.Status(names)
		reply(w, st, err)
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if own := scope(r); own != "" && !onlyOwn(w, own, []string{name}) {
			return
		}
		h, err := b.History(name)
		reply(w, h, err)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		service := r.URL.Query().Get("service")
		if own := scope(r); own != "" {
			if service == "" {
				service = own
			}
			if !onlyOwn(w, own, []string{service}) {
				return
			}
		}
		if service != "" {
			if _, err := b.Status([]string{service}); err != nil {
				reply(w, nil, err)
				return
			}
		}
		streamEvents(w, r, b, service, r.URL.Query().Get("follow") == "1")
	})
	action := func(what string, do func(ctx context.Context, req Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req Request
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				code := http.StatusBadRequest
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					code = http.StatusRequestEntityTooLarge
				}
				writeJSON(w, code, errorBody{"bad request: " + err.Error()})
				return
			}
			for _, n := range req.Names {
				if err := spec.CheckName(n); err != nil {
					writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
					return
				}
			}
			if own := scope(r); own != "" {
				if what == "reload" || req.All && what == "rotate" || len(req.Names) == 0 {
					writeJSON(w, http.StatusForbidden, errorBody{fmt.Sprintf("permission denied: a process of service %q may only act on %q; %s acts on others", own, own, what)})
					return
				}
				if !onlyOwn(w, own, req.Names) {
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
	mux.Handle("POST /v1/start", action("start", func(ctx context.Context, req Request) (any, error) {
		return ok, b.Start(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/stop", action("stop", func(ctx context.Context, req Request) (any, error) {
		return ok, b.Stop(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/restart", action("restart", func(ctx context.Context, req Request) (any, error) {
		return ok, b.Restart(ctx, req.Names, req.Wait)
	}))
	mux.Handle("POST /v1/signal", action("signal", func(ctx context.Context, req Request) (any, error) {
		if len(req.Names) != 1 {
			return nil, badRequest("signal takes exactly one service")
		}
		sig, err := spec.ParseSignal(req.Signal)
		if err != nil {
			return nil, badRequest(err.Error())
		}
		return ok, b.Signal(req.Names[0], sig, req.All)
	}))
	mux.Handle("POST /v1/reload", action("reload", func(ctx context.Context, req Request) (any, error) {
		return b.Reload(ctx)
	}))
	mux.Handle("POST /v1/rotate", action("rotate", rotate(b)))
	if lb, ok := logsOf(b); ok {
		mux.HandleFunc("GET /v1/logs", logsHandler(lb))
	}
	return mux
}

// maxBody bounds a request's body: an action's is a few hundred bytes.
const maxBody = 1 << 20

type scopeKey struct{}

// scope is the service a request's peer is a process of, or "".
func scope(r *http.Request) string {
	s, _ := r.Context().Value(scopeKey{}).(string)
	return s
}

// onlyOwn refuses, with 403, a request of a service's process that names
// another service.
func onlyOwn(w http.ResponseWriter, own string, names []string) bool {
	for _, n := range names {
		if n != own {
			writeJSON(w, http.StatusForbidden, errorBody{fmt.Sprintf("permission denied: a process of service %q may only read and act on %q, not %q", own, own, n)})
			return false
		}
	}
	return true
}

// streamEvents writes events as JSON lines: the recent ones, then, when
// following, each new one as it happens until the client goes away.
func streamEvents(w http.ResponseWriter, r *http.Request, b Backend, service string, follow bool) {
	var live <-chan api.Event
	if follow {
		ch, cancel := b.Follow() // subscribe first, so nothing falls between backlog and live
		defer cancel()
		live = ch
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	// A stream has no deadline as a whole (it lasts as long as the client
	// wants); each write has one, so a client that stops reading is dropped.
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	enc := json.NewEncoder(w)
	var last time.Time
	for _, e := range recent(b.Events(service), r.URL.Query()) {
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
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
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
	case errors.Is(err, api.ErrUnknown):
		writeJSON(w, http.StatusNotFound, errorBody{err.Error()})
	case errors.As(err, &br):
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
	default:
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
	}
}

// writeTimeout bounds each write to a client: a client that does not read
// its answer cannot hold a handler. It is set per write, not as the
// server's WriteTimeout, which would cut `events -f` streams and long
// `restart --timeout` waits.
const writeTimeout = 10 * time.Second

func writeJSON(w http.ResponseWriter, code int, v any) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Options bound what clients can make the daemon hold; zero values take
// the defaults.
type Options struct {
	Access Access // who may use the socket until the first reload
	// PolicyRoot, when set, is the root whose etc/upkeep/policy.toml and
	// etc/group the server reads again at each reload (and ReloadAccess):
	// the [control] groups then follow the policy without a restart.
	PolicyRoot        string
	Log               *slog.Logger
	MaxConns          int           // connections open at once (default: from the descriptor limit, ≤ 4096)
	PerUID            int           // of those, for one uid other than root and Access.Self (default 128)
	AdmitWait         time.Duration // how long a connection waits for a slot when all are busy (default 100ms)
	ReadHeaderTimeout time.Duration // a request's header (default 5s)
	ReadTimeout       time.Duration // a request's header and body (default 10s)
	IdleTimeout       time.Duration // a keep-alive connection between requests (default 30s)
}

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.AdmitWait, 100*time.Millisecond)
	set(&o.ReadHeaderTimeout, 5*time.Second)
	set(&o.ReadTimeout, 10*time.Second)
	set(&o.IdleTimeout, 30*time.Second)
	if o.MaxConns <= 0 {
		o.MaxConns = defaultMaxConns()
	}
	if o.PerUID <= 0 {
		o.PerUID = 128
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Server is the control API on one listener.
type Server struct {
	http *http.Server
	l    *limitListener
	// access is swapped whole at a reload, and guard loads it once per
	// request: a request is judged by the old access or the new, never
	// by a mix of the two.
	access *atomic.Pointer[Access]
	root   string
	log    *slog.Logger
}

// NewServer prepares the API on l (a unix listener) for b.
func NewServer(l net.Listener, b Backend, o Options) (*Server, error) {
	ul, ok := l.(*net.UnixListener)
	if !ok {
		return nil, fmt.Errorf("control: %T is not a unix listener: peers could not be identified", l)
	}
	o.defaults()
	spare.fill()
	ll := newLimitListener(ul, o.MaxConns, o.PerUID, o.Access.Self, o.AdmitWait)
	s := &Server{l: ll, access: new(atomic.Pointer[Access]), root: o.PolicyRoot, log: o.Log}
	acc := o.Access
	s.access.Store(&acc)
	if s.root != "" {
		b = reloader{Backend: b, s: s}
	}
	srv := &http.Server{
		Handler:           guard(b, o, s.access, Handler(b)),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10, // a request's header is a few hundred bytes
		ConnContext:       connContext,
		ConnState:         ll.connState,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
	}
	s.http = srv
	return s, nil
}

// ReloadAccess reads the [control] groups again from the policy under
// Options.PolicyRoot and lets every later request be judged by them. A
// policy file that does not parse changes nothing: the old access stays,
// and the error (file:line:col) is returned. A group the root's etc/group
// lacks grants nothing, as at the start; that is logged, not returned.
func (s *Server) ReloadAccess() error {
	if s.root == "" {
		return nil
	}
	a, warn, err := LoadAccess(s.root)
	if err != nil {
		s.log.Error("control access", "err", err.Error(), "kept", "the previous access")
		return fmt.Errorf("%w; the control socket keeps its previous access", err)
	}
	if warn != nil {
		s.log.Warn("control access", "err", warn.Error())
	}
	s.access.Store(&a)
	s.log.Info("control access", "group", a.AdminGroup, "read_group", a.ReadGroup)
	return nil
}

// reloader is the backend with a reload that re-reads the access too.
type reloader struct {
	Backend
	s *Server
}

// logsOf finds the Logs of b, under the reloader NewServer wraps it in:
// the wrapper adds Reload only and must not hide the logs.
func logsOf(b Backend) (Logs, bool) {
	if r, ok := b.(reloader); ok {
		b = r.Backend
	}
	lb, ok := b.(Logs)
	return lb, ok
}

func (r reloader) Reload(ctx context.Context) (api.ReloadResult, error) {
	res, err := r.Backend.Reload(ctx)
	if aerr := r.s.ReloadAccess(); aerr != nil {
		res.Policy = aerr.Error()
	}
	return res, err
}

// Serve answers until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.http.Shutdown(sctx)
		_ = s.http.Close() // what Shutdown left: open event streams
	}()
	if err := s.http.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

// Conns returns how many connections are open, and how many were closed
// to make room for others or refused for want of it.
func (s *Server) Conns() (open int, evicted, refused int64) {
	return s.l.open(), s.l.evicted.Load(), s.l.refused.Load()
}

// Serve answers the API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, b Backend, o Options) error {
	s, err := NewServer(l, b, o)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// guard admits a request: it identifies the peer, refuses it with 403
// unless the Access lets it do what the method asks (GET: read, else
// act), and only then reads its body, bounded in size and time. Once the
// body is in, the read deadline is lifted, so a long wait or an event
// stream is not cut by ReadTimeout (net/http 1.26 also lifts it when it
// starts its background read; this does not depend on that).
func guard(b Backend, o Options, access *atomic.Pointer[Access], next http.Handler) http.Handler {
	refusals := &refusalLog{last: map[uint32]*refused{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{}) // a previous request's on this connection
		pc, _ := r.Context().Value(peerKey{}).(*peerConn)
		if pc == nil {
			deny(w, "permission denied: not a unix socket peer")
			return
		}
		p, err := identify(pc, b.Owner)
		if errors.Is(err, errBusy) {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{err.Error()})
			return
		}
		if err != nil {
			refusals.log(o.Log, p, r, err.Error())
			deny(w, err.Error())
			return
		}
		need := admin
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			need = reader
		}
		acc := access.Load()
		if has := acc.level(p); has < need {
			msg := acc.refusal(p, has, need, strings.TrimPrefix(r.URL.Path, "/v1/"))
			refusals.log(o.Log, p, r, msg)
			deny(w, msg)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			code := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				code = http.StatusRequestEntityTooLarge
			}
			w.Header().Set("Connection", "close")
			writeJSON(w, code, errorBody{"bad request: " + err.Error()})
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(body))
		if p.Service != "" {
			r = r.WithContext(context.WithValue(r.Context(), scopeKey{}, p.Service))
		}
		next.ServeHTTP(w, r)
	})
}

// refusalLog logs refused requests, at most one a uid every ten seconds
// with the count of those left out: any local user can send thousands, and
// the event log must not grow with them.
type refusalLog struct {
	mu   sync.Mutex
	last map[uint32]*refused
}

type refused struct {
	at      time.Time
	skipped int
}

func (l *refusalLog) log(log *slog.Logger, p Peer, r *http.Request, msg string) {
	l.mu.Lock()
	e := l.last[p.Uid]
	now := time.Now()
	if e != nil && now.Sub(e.at) < 10*time.Second {
		e.skipped++
		l.mu.Unlock()
		return
	}
	skipped := 0
	if e != nil {
		skipped = e.skipped
	}
	if len(l.last) >= 1024 {
		clear(l.last) // bounded: forgetting only lets a line through early
	}
	l.last[p.Uid] = &refused{at: now}
	l.mu.Unlock()
	log.Warn("control refused", "uid", p.Uid, "pid", p.Pid, "method", r.Method, "path", r.URL.Path, "reason", msg, "refused_since_last", skipped)
}

// deny answers 403 and closes the connection: a refused peer holds no slot.
func deny(w http.ResponseWriter, msg string) {
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusForbidden, errorBody{msg})
}
