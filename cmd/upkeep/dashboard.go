package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"upkeep/internal/dashboard"
	"upkeep/internal/paths"
	"upkeep/internal/policy"
)

// webFlags are the daemon's dashboard flags.
type webFlags struct {
	addr    string
	actions bool
}

// serveDashboard serves the dashboard at w.addr until ctx ends. With
// metrics set (the --metrics address is the same), /metrics shares the
// listener. Actions get a fresh token in run/upkeep/http.token, 0600.
func serveDashboard(ctx context.Context, root string, b dashboard.Backend, w webFlags, metrics http.Handler, log *slog.Logger) error {
	o := dashboard.Options{Root: root, Addr: w.addr, Actions: w.actions, Log: log, Started: time.Now()}
	if p, err := policy.Load(root); err == nil {
		o.BasicUser, o.BasicHash = p.HTTP.User, p.HTTP.PasswordBcrypt
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("--http: %w", err)
	}
	if w.actions {
		tok, err := writeToken(root)
		if err != nil {
			return fmt.Errorf("--http-actions: %w", err)
		}
		o.Token = tok
	}
	if metrics != nil {
		o.Extra = map[string]http.Handler{"GET /metrics": metrics}
	}
	s, err := dashboard.New(b, o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	// No WriteTimeout: the live stream and log tails are long responses.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	attrs := []any{"url", "http://" + l.Addr().String() + "/", "actions", w.actions}
	if w.actions {
		attrs = append(attrs, "token", filepath.Join(root, paths.HTTPTokenRel))
	}
	if s.Remote() {
		log.Warn("dashboard on a non-loopback address: every request needs the basic auth of the host policy", attrs...)
	} else {
		log.Info("dashboard", attrs...)
	}
	return nil
}

// writeToken makes the dashboard's token for this run of the daemon,
// readable by root (the daemon's user) only, written whole or not at all.
func writeToken(root string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	p := filepath.Join(root, paths.HTTPTokenRel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tok, nil
}
