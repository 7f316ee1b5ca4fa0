package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/spec"
)

// Logs is what a Backend that serves services' logs has (the daemon
// does, through logread): GET /v1/logs is there only when it does, so the
// socket's groups govern the logs as they govern status.
type Logs interface {
	Logs(ctx context.Context, q api.LogQuery, emit func(api.LogLine) error) error
}

// MaxLogLines bounds -n through the daemon: the last N lines are held
// until the merge ends, and a reader must not make the daemon hold a
// history. All lines (n = -1) stream with one line a file held.
const MaxLogLines = 100_000

// logsHandler streams the lines of q as JSON lines. Each write has a
// deadline, so a client that stops reading is dropped: it holds one
// handler's goroutine and a buffer, never the capture, which writes the
// files whoever reads them.
func logsHandler(lb Logs) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseLogQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		if own := scope(r); own != "" {
			if len(q.Names) == 0 {
				q.Names = []string{own}
			}
			if !onlyOwn(w, own, q.Names) {
				return
			}
		}
		rc := http.NewResponseController(w)
		bw := bufio.NewWriterSize(w, 32<<10)
		enc := json.NewEncoder(bw)
		started := false
		emit := func(l api.LogLine) error {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := enc.Encode(l); err != nil {
				return err
			}
			if q.Follow && bw.Buffered() > 0 {
				// Following: each line as it comes. The backlog
				// goes out a buffer at a time.
				if err := bw.Flush(); err != nil {
					return err
				}
				return rc.Flush()
			}
			return nil
		}
		if q.Follow {
			// The header now, so that the client knows the request
			// was taken before any line comes.
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
			_ = rc.Flush()
		}
		err = lb.Logs(r.Context(), q, emit)
		if err != nil && !started {
			code := http.StatusConflict
			if errors.Is(err, api.ErrUnknown) {
				code = http.StatusNotFound
			}
			writeJSON(w, code, errorBody{err.Error()})
			return
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err != nil && r.Context().Err() == nil {
			// Lines went out already: the error is the last line.
			_ = json.NewEncoder(bw).Encode(errorBody{err.Error()})
		}
		_ = bw.Flush()
	}
}

func parseLogQuery(v url.Values) (api.LogQuery, error) {
	q := api.LogQuery{N: 10, Stream: v.Get("stream"), Grep: v.Get("grep"), Follow: v.Get("follow") == "1"}
	if s := v.Get("names"); s != "" {
		q.Names = strings.Split(s, ",")
		for _, n := range q.Names {
			if err := spec.CheckName(n); err != nil {
				return q, err
			}
		}
	}
	switch q.Stream {
	case "", "out", "err":
	default:
		return q, fmt.Errorf("stream: want out or err, got %q", q.Stream)
	}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < -1 {
			return q, fmt.Errorf("n: want a number of lines, or -1 for all, got %q", s)
		}
		if n > MaxLogLines {
			return q, fmt.Errorf("n: at most %d lines through the daemon, got %d; -n -1 streams all of them", MaxLogLines, n)
		}
		q.N = n
	}
	for _, t := range []struct {
		key string
		to  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.key); s != "" {
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, fmt.Errorf("%s: want an RFC 3339 time, got %q", t.key, s)
			}
			*t.to = tm
		}
	}
	return q, nil
}

// Logs asks the daemon for the lines of q and calls fn with each, until
// the daemon ends the stream (with Follow: until ctx ends or the daemon
// stops).
func (c *Client) Logs(ctx context.Context, q api.LogQuery, fn func(api.LogLine) error) error {
	v := url.Values{}
	if len(q.Names) > 0 {
		v.Set("names", strings.Join(q.Names, ","))
	}
	if q.Stream != "" {
		v.Set("stream", q.Stream)
	}
	v.Set("n", strconv.Itoa(q.N))
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Grep != "" {
		v.Set("grep", q.Grep)
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	resp, err := c.open(ctx, http.MethodGet, "/v1/logs?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			var l struct {
				api.LogLine
				Error string `json:"error"`
			}
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return fmt.Errorf("logs: daemon sent %q: %w", b, jerr)
			}
			if l.Error != "" {
				return &Error{Code: http.StatusConflict, Message: l.Error}
			}
			if ferr := fn(l.LogLine); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
