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
	"strings"
	"syscall"
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
		var eb errorBody
		if json.NewDecoder(resp.Body).Decode(&eb) == nil && eb.Error != "" {
			return nil, errors.New(eb.Error)
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
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

// Act posts an action (start, stop, restart, signal).
func (c *Client) Act(ctx context.Context, action string, req Request) error {
	return c.do(ctx, http.MethodPost, "/v1/"+action, req, nil)
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
	resp, err := c.open(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		fn(e)
	}
}
