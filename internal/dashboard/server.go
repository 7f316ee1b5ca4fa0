package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"upkeep/internal/api"
)

// Backend is what the dashboard asks of the daemon: the calls the control
// socket answers, so the page acts through the CLI's own code paths.
type Backend interface {
	Status(names []string) ([]api.Status, error)
	Start(ctx context.Context, names []string, wait bool) error
	Stop(ctx context.Context, names []string, wait bool) error
	Restart(ctx context.Context, names []string, wait bool) error
	Rotate(names []string) ([]api.Rotated, error)
	Events(service string) []api.Event
	Follow() (<-chan api.Event, func())
	History(name string) (api.History, error)
}

// Options says how the dashboard is served.
type Options struct {
	Root string // the host root, for the log files the tail reads
	// Addr is the address it is bound to: anything but loopback needs
	// basic auth, and then every request must carry it.
	Addr string
	// Actions enables start, stop, restart and rotate from the page.
	// They need Token (a cookie set by /login or a bearer header) or
	// basic auth, and a CSRF token.
	Actions   bool
	Token     string
	BasicUser string
	BasicHash string // bcrypt
	Started   time.Time
	Log       *slog.Logger
	// Extra serves what the dashboard does not (the daemon's /metrics
	// when both share a listener).
	Extra map[string]http.Handler
}

//go:embed ui
var ui embed.FS

// Server is the dashboard's http.Handler.
type Server struct {
	b      Backend
	o      Options
	mux    *http.ServeMux
	pages  *template.Template
	csrf   string
	remote bool // bound beyond loopback: every request authenticates

	mu       sync.Mutex
	goodAuth [sha256.Size]byte // the last basic credentials bcrypt accepted
}

// New checks the options and makes the handler. Binding beyond loopback
// without basic auth is refused: the read-only pages show what runs on the
// host and its logs.
func New(b Backend, o Options) (*Server, error) {
	s := &Server{b: b, o: o, mux: http.NewServeMux()}
	if o.Log == nil {
		s.o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Started.IsZero() {
		s.o.Started = time.Now()
	}
	if !isLoopback(o.Addr) {
		if o.BasicUser == "" {
			return nil, fmt.Errorf("--http %s is not a loopback address: set [http] user and password_bcrypt in the host policy first", o.Addr)
		}
		s.remote = true
	}
	if o.Actions && o.Token == "" && o.BasicUser == "" {
		return nil, errors.New("dashboard actions need a token or basic auth")
	}
	secret := o.Token
	if secret == "" {
		secret = o.BasicHash
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("upkeep dashboard csrf"))
	s.csrf = hex.EncodeToString(m.Sum(nil))
	t, err := template.New("").Funcs(funcs).ParseFS(ui, "ui/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	s.pages = t
	static, _ := fs.Sub(ui, "ui/static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.hostPage)
	s.mux.HandleFunc("GET /fragment/rows", s.rowsFragment)
	s.mux.HandleFunc("GET /service/{name}", s.servicePage)
	s.mux.HandleFunc("GET /service/{name}/plots", s.plotsFragment)
	s.mux.HandleFunc("GET /api/status", s.apiStatus)
	s.mux.HandleFunc("GET /api/events", s.apiEvents)
	s.mux.HandleFunc("GET /api/history/{name}", s.apiHistory)
	s.mux.HandleFunc("GET /api/stream", s.stream)
	s.mux.HandleFunc("GET /api/logs/{name}", s.logTail)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /api/act/{name}/{action}", s.act)
	for p, h := range o.Extra {
		s.mux.Handle(p, h)
	}
	return s, nil
}

// Remote says whether the dashboard is bound beyond loopback.
func (s *Server) Remote() bool { return s.remote }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	if s.remote && !s.authed(r) && r.URL.Path != "/login" {
		s.unauthorized(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	if s.o.BasicUser != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="upkeep", charset="UTF-8"`)
	}
	http.Error(w, "unauthorized: this needs the token in run/upkeep/http.token or the dashboard's basic auth", http.StatusUnauthorized)
}

const authCookie = "upkeep_auth"

// authed: the token (cookie or bearer header) or basic auth.
func (s *Server) authed(r *http.Request) bool {
	if t := s.o.Token; t != "" {
		if c, err := r.Cookie(authCookie); err == nil && equal(c.Value, t) {
			return true
		}
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(h, t) {
			return true
		}
	}
	u, p, ok := r.BasicAuth()
	if !ok || s.o.BasicUser == "" || !equal(u, s.o.BasicUser) {
		return false
	}
	// bcrypt costs tens of milliseconds by design: remember the last
	// credentials it accepted rather than pay that on every request.
	sum := sha256.Sum256([]byte(u + "\x00" + p))
	s.mu.Lock()
	known := s.goodAuth == sum
	s.mu.Unlock()
	if known {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(s.o.BasicHash), []byte(p)) != nil {
		return false
	}
	s.mu.Lock()
	s.goodAuth = sum
	s.mu.Unlock()
	return true
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// login takes the token from a form and keeps it in a cookie the page's
// requests carry; the cookie is HttpOnly and SameSite=Strict, and the form
// itself needs the CSRF token, so another site cannot log a browser in.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !equal(r.PostForm.Get("csrf"), s.csrf) {
		http.Error(w, "bad request: the form's CSRF token is missing or wrong", http.StatusForbidden)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if s.o.Token == "" || !equal(tok, s.o.Token) {
		s.unauthorized(w)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: authCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// loginPage asks for basic auth when that is set (the browser prompts),
// and otherwise shows the token form.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.o.BasicUser != "" && !s.authed(r) {
		s.unauthorized(w)
		return
	}
	if s.authed(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, "login.html", map[string]any{"CSRF": s.csrf, "Actions": s.o.Actions})
}

var actions = map[string]bool{"start": true, "stop": true, "restart": true, "rotate": true}

// act runs one of the CLI's actions on one service. POST only, with the
// CSRF header, from the dashboard's own origin, authenticated.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	switch {
	case !s.o.Actions:
		http.Error(w, "actions are off: start the daemon with --http-actions", http.StatusForbidden)
		return
	case !s.authed(r):
		s.unauthorized(w)
		return
	case !equal(r.Header.Get("X-Upkeep-CSRF"), s.csrf):
		http.Error(w, "forbidden: missing or wrong CSRF token", http.StatusForbidden)
		return
	case crossOrigin(r):
		http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
		return
	case !actions[action]:
		http.Error(w, fmt.Sprintf("unknown action %q (start, stop, restart, rotate)", action), http.StatusNotFound)
		return
	}
	if _, err := s.b.Status([]string{name}); err != nil {
		httpError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	names := []string{name}
	var err error
	switch action {
	case "start":
		err = s.b.Start(ctx, names, true)
	case "stop":
		err = s.b.Stop(ctx, names, true)
	case "restart":
		err = s.b.Restart(ctx, names, true)
	case "rotate":
		_, err = s.b.Rotate(names)
	}
	if err != nil {
		httpError(w, err)
		return
	}
	s.o.Log.Info("dashboard action", "service", name, "action", action, "from", r.RemoteAddr)
	st, _ := s.b.Status(names)
	writeJSON(w, st)
}

// crossOrigin: browsers send Sec-Fetch-Site and Origin; a request from
// another site is refused whatever else it carries.
func crossOrigin(r *http.Request) bool {
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" && v != "same-origin" && v != "none" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		h, ok := strings.CutPrefix(o, "http://")
		if !ok {
			h, _ = strings.CutPrefix(o, "https://")
		}
		return h != r.Host
	}
	return false
}

func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, api.ErrUnknown) {
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) render(w http.ResponseWriter, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages.ExecuteTemplate(w, page, data); err != nil {
		s.o.Log.Warn("dashboard render", "page", page, "err", err.Error())
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
