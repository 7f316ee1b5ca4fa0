package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// httpConn is one HTTP check's client: a kept-alive connection written and
// read by the check's own goroutine. net/http's Transport would give each
// connection a read and a write goroutine and hand every request across
// them; with hundreds of checks a second those hand-offs (goroutine wake-ups
// and thread park/unpark) were most of the daemon's CPU. A check sends one
// request at a time on one connection, so it needs none of that: it writes
// the request, then reads the response with net/http's own parser.
type httpConn struct {
	key  string        // method, URL and Host header req and wire were made for
	req  *http.Request // for the response parser (HEAD has no body)
	wire []byte        // the request as sent
	conn net.Conn
	br   *bufio.Reader // only while a response is being read; pooled between runs
	body []byte        // reused for each response's body
}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (h *httpConn) close() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
	h.releaseReader()
}

func (h *httpConn) releaseReader() {
	if h.br != nil {
		h.br.Reset(nil)
		readers.Put(h.br)
		h.br = nil
	}
}

// staleError is a failure before any byte of a response came back: on a
// kept-alive connection that is most likely the server having closed it
// while idle, not the endpoint failing, so the request goes again on a new
// connection (as net/http does for idempotent requests).
type staleError struct{ err error }

func (e staleError) Error() string { return e.err.Error() }

// prepare makes the request a check sends, once: it is the same every run.
// A different request (the check was replaced) gets a new connection too.
func (h *httpConn) prepare(method, rawURL, host string) error {
	key := method + " " + rawURL + " " + host
	if h.req != nil && h.key == key {
		return nil
	}
	h.close()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		return err
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("unsupported protocol scheme %q", req.URL.Scheme)
	}
	h.key, h.req, h.wire = key, req, requestBytes(req, host)
	return nil
}

// do sends the prepared request and returns the status and at most
// maxBody bytes of the body.
func (h *httpConn) do(ctx context.Context) (int, []byte, error) {
	reused := h.conn != nil
	status, body, err := h.roundTrip(ctx)
	var stale staleError
	if errors.As(err, &stale) && reused && ctx.Err() == nil {
		status, body, err = h.roundTrip(ctx)
	}
	if errors.As(err, &stale) {
		err = stale.err
		if errors.Is(err, io.EOF) {
			err = errors.New("connection closed before a response")
		}
	}
	return status, body, err
}

func (h *httpConn) roundTrip(ctx context.Context) (status int, body []byte, err error) {
	req := h.req
	if h.conn == nil {
		if h.conn, err = dialHTTP(ctx, req.URL); err != nil {
			return 0, nil, err
		}
	}
	conn := h.conn
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Time{})
	}
	// Stop cancels without a deadline of its own: unblock the I/O by hand.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })()
	if _, err := conn.Write(h.wire); err != nil {
		return 0, nil, staleError{err}
	}
	h.br = readers.Get().(*bufio.Reader)
	h.br.Reset(conn)
	if _, err := h.br.Peek(1); err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil, err
		}
		return 0, nil, staleError{err}
	}
	resp, err := http.ReadResponse(h.br, req)
	if err != nil {
		return 0, nil, err
	}
	body, err = readBody(h.body[:0], resp.Body)
	if cap(body) <= 64<<10 { // keep a small buffer for the next run, not a big one
		h.body = body
	}
	if err != nil {
		return 0, nil, fmt.Errorf("HTTP %d: read body: %w", resp.StatusCode, err)
	}
	// Keep the connection only when the response ended cleanly and the
	// server did not say it closes; anything left over means we are out of
	// step with it.
	var one [1]byte
	_, rest := resp.Body.Read(one[:])
	if resp.Close || rest != io.EOF || h.br.Buffered() > 0 {
		resp.Body.Close()
		h.close()
	} else {
		h.releaseReader()
	}
	return resp.StatusCode, body, nil
}

// readBody appends at most maxBody bytes of r to b.
func readBody(b []byte, r io.Reader) ([]byte, error) {
	for len(b) < maxBody {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), maxBody)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// requestBytes is an HTTP/1.1 request without a body. No Accept-Encoding:
// the body is compared as the server sent it.
func requestBytes(req *http.Request, host string) []byte {
	if host == "" {
		host = req.URL.Host
	}
	b := make([]byte, 0, 128)
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: upkeep-health\r\n\r\n"...)
	return b
}

func dialHTTP(ctx context.Context, u *url.URL) (net.Conn, error) {
	var d net.Dialer
	addr := canonicalAddr(u)
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || u.Scheme != "https" {
		return conn, err
	}
	// monit checks that the port answers, not who it is: no verification.
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname()})
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// canonicalAddr is the URL's host:port, with the scheme's default port.
func canonicalAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
