package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"upkeep/internal/api"
)

// Client talks to a daemon's control socket.
type Client struct {
	sock string
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{sock: path, http: &http.Client{Transport: tr}}
}

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("no daemon is running")

// The conditions a caller branches on, each matched with errors.Is by the
// *Error of the daemon's answer.
var (
	// ErrUnknown: the daemon has no service of that name (404). It is
	// api.ErrUnknown itself, so one errors.Is serves the daemon's own
	// errors in its process and the client's on the other side.
	ErrUnknown = api.ErrUnknown
	// ErrBadRequest: the daemon refused the request as malformed (400,
	// 413): a bad name, signal or timeout, rotate without names or all.
	ErrBadRequest = errors.New("bad request")
	// ErrConflict: the daemon could not do what was asked (409): a start
	// that failed or timed out, a broken definition, a reload that failed.
	ErrConflict = errors.New("the daemon could not do it")
	// ErrDenied: the peer may not do this (403).
	ErrDenied = errors.New("permission denied")
)

// Error is a daemon's answer other than 200: its status code and the
// message it sent, which is the error's text as it was before the types
// (the CLI prints it as it is).
type Error struct {
	Code    int    // HTTP status
	Message string // the daemon's "error", or "daemon answered <status>"
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel of e's status code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case http.StatusNotFound:
		return target == ErrUnknown
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return target == ErrBadRequest
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusForbidden:
		return target == ErrDenied
	}
	return false
}

// open sends a request and returns the response of a 200, or the daemon's
// error as an error.
func (c *Client) open(ctx context.Context, method, path string, body any) (*http.Response, error) {
	b := []byte(nil)
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://upkeep"+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNoDaemon, c.sock)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		e := &Error{Code: resp.StatusCode}
		var eb errorBody
		if json.NewDecoder(resp.Body).Decode(&eb) == nil && eb.Error != "" {
			e.Message = eb.Error
		} else {
			e.Message = "daemon answered " + resp.Status
		}
		return nil, e
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.open(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status fetches the status of names (all when empty).
func (c *Client) Status(ctx context.Context, names []string) ([]api.Status, error) {
	var out []api.Status
	return out, c.do(ctx, http.MethodGet, statusPath(names), nil, &out)
}

// StatusJSON is Status as the daemon sent it, a JSON array: for printing it
// as it is, without decoding and encoding 1,000 services again (a third of
// what `status --json` cost the CLI).
func (c *Client) StatusJSON(ctx context.Context, names []string) ([]byte, error) {
	resp, err := c.open(ctx, http.MethodGet, statusPath(names), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, errors.New("daemon answered a status that is not JSON")
	}
	return b, nil
}

func statusPath(names []string) string {
	path := "/v1/status"
	if len(names) > 0 {
		path += "?names=" + url.QueryEscape(strings.Join(names, ","))
	}
	return path
}

// ActOptions say how Start, Stop and Restart wait. The zero value does
// not: the call returns once the daemon has the request.
type ActOptions struct {
	// Wait: return once the services are up (start, restart; with checks,
	// once they pass) or down (stop), with an error if they are not.
	Wait bool
	// Timeout bounds how long the daemon works on the request; 0: only ctx
	// does, and the daemon's own bound.
	Timeout time.Duration
}

func (o ActOptions) request(names []string) Request {
	r := Request{Names: names, Wait: o.Wait}
	if o.Timeout > 0 {
		r.Timeout = o.Timeout.String()
	}
	return r
}

// Start starts names, and what they depend on first.
func (c *Client) Start(ctx context.Context, names []string, o ActOptions) error {
	return c.do(ctx, http.MethodPost, "/v1/start", o.request(names), nil)
}

// Stop stops names, and what depends on them first.
func (c *Client) Stop(ctx context.Context, names []string, o ActOptions) error {
	return c.do(ctx, http.MethodPost, "/v1/stop", o.request(names), nil)
}

// Restart restarts names (starts those that are down).
func (c *Client) Restart(ctx context.Context, names []string, o ActOptions) error {
	return c.do(ctx, http.MethodPost, "/v1/restart", o.request(names), nil)
}

// Signal sends sig to the main process of service name, or with all to
// every process of its group.
func (c *Client) Signal(ctx context.Context, name string, sig syscall.Signal, all bool) error {
	s := unix.SignalName(sig) // "SIGHUP": what scripts send too
	if s == "" {
		s = strconv.Itoa(int(sig))
	}
	return c.do(ctx, http.MethodPost, "/v1/signal", Request{Names: []string{name}, Signal: s, All: all}, nil)
}

// Reload asks the daemon to re-read the definitions.
func (c *Client) Reload(ctx context.Context) (api.ReloadResult, error) {
	var out api.ReloadResult
	return out, c.do(ctx, http.MethodPost, "/v1/reload", Request{}, &out)
}

// History fetches what the daemon remembers of a service.
func (c *Client) History(ctx context.Context, name string) (api.History, error) {
	var out api.History
	return out, c.do(ctx, http.MethodGet, "/v1/history?name="+url.QueryEscape(name), nil, &out)
}

// Events calls fn for each event of service (all when ""): the recent ones,
// and with follow every new one until ctx ends.
func (c *Client) Events(ctx context.Context, service string, follow bool, fn func(api.Event)) error {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if follow {
		q.Set("follow", "1")
	}
	return c.events(ctx, http.MethodGet, "/v1/events?"+q.Encode(), follow, fn)
}

// events reads the event stream of a request: see Events.
func (c *Client) events(ctx context.Context, method, path string, follow bool, fn func(api.Event)) error {
	resp, err := c.open(ctx, method, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case follow:
				// A followed stream ends only with the daemon: cut off
				// mid-chunk (unexpected EOF, a reset) or closed.
				return fmt.Errorf("%w (%v)", ErrDaemonStopped, err)
			case errors.Is(err, io.EOF):
				return nil
			}
			return err
		}
		fn(e)
	}
}

// ErrDaemonStopped: a followed event stream ended because the daemon
// stopped (or closed it).
var ErrDaemonStopped = errors.New("daemon stopped")
