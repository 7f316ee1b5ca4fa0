package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/boot"
	"upkeep/internal/control"
	"upkeep/internal/host"
	"upkeep/internal/logsink"
	"upkeep/internal/metrics"
	"upkeep/internal/paths"
	"upkeep/internal/supervise"
)

func daemonCommand(g *globals) *cobra.Command {
	var quiet bool
	var metricsAddr string
	var web webFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Supervise every service of the host until SIGTERM",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			return runDaemon(cmd.Context(), g.root, level, metricsAddr, web)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only warnings and errors on stderr")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9641)")
	cmd.Flags().StringVar(&web.addr, "http", "", "serve the web dashboard at http://ADDR/ (e.g. 127.0.0.1:9642; may be the --metrics address)")
	cmd.Flags().BoolVar(&web.actions, "http-actions", false, "let the dashboard start, stop, restart and rotate (token in run/upkeep/http.token)")
	return cmd
}

// runDaemon wires the daemon: event log, lock, control socket, signals.
func runDaemon(ctx context.Context, root string, level slog.Level, metricsAddr string, web webFlags) error {
	// The daemon's live heap is small and its allocation rate low, so a
	// tighter GC target costs little CPU and keeps its footprint near what it
	// holds (GOGC still overrides).
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	if err := os.MkdirAll(filepath.Join(root, paths.LogDir), 0o755); err != nil {
		return err
	}
	// A sink, not a plain file: on a full var/log a record that does not
	// fit is taken back whole (and counted), never left half-written for
	// the next one to run into.
	events, err := logsink.Open(paths.DaemonLog(root))
	if err != nil {
		return err
	}
	defer events.Close()
	log := slog.New(slog.NewMultiHandler(
		slog.NewJSONHandler(events, nil),
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}),
	))
	d, err := supervise.New(root, log)
	if err != nil {
		return err
	}
	d.SetStartGuard(host.DataMountGuard(root))
	// A deploy killed half done is finished before the definitions are
	// read, at the start and at each reload, so no service starts from a
	// half-laid release. (No daemon to ask for a restart: this is it.)
	d.SetBeforeLoad(func() {
		h, err := host.New(root, "", nil)
		if err != nil {
			return
		}
		lines, err := h.Recover(ctx, nil)
		for _, l := range lines {
			log.Warn("recovered", "what", l)
		}
		if err != nil {
			log.Error("recover", "err", err.Error())
		}
	})
	if err := d.Load(); err != nil {
		return err
	}
	l, err := control.Listen(paths.Socket(root))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	// Read (and unset, so services do not inherit it) before anything
	// starts a service.
	notifier, err := boot.FromEnv()
	if err != nil {
		log.Warn("sd_notify", "err", err.Error())
	}
	defer notifier.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The first SIGTERM/SIGINT ends ctx: an ordered shutdown. The second
	// hurries it (SIGKILL to what is left), as systemd's and docker's
	// operators expect of a second Ctrl-C or `docker stop` after a kill.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		<-sigs
		d.Hurry()
	}()
	go func() {
		<-ctx.Done()
		_ = notifier.Send("STOPPING=1\nSTATUS=stopping services")
	}()
	acc, err := controlAccess(root)
	if err != nil {
		log.Warn("control access", "err", err.Error())
	}
	// Group members must reach the socket: the run directory is
	// traversable by all (it holds pid files, which are public anyway).
	_ = os.Chmod(filepath.Join(root, paths.RunDir), 0o755)
	srv, err := control.NewServer(l, logsBackend{d, root}, control.Options{Access: acc, PolicyRoot: root, Log: log})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go func() { _ = srv.Serve(ctx) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if _, err := d.Reload(ctx); err != nil {
				log.Error("reload", "err", err.Error())
			}
			_ = srv.ReloadAccess() // logs what it keeps or takes
		}
	}()
	var metricsHandler http.Handler
	if metricsAddr != "" {
		m := metrics.New(d)
		d.SetObserver(m)
		metricsHandler = m.Handler()
	}
	if metricsAddr != "" && metricsAddr != web.addr {
		ml, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		srv := &http.Server{Handler: metricsHandler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ml) }()
		defer srv.Close()
		log.Info("metrics", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	if web.addr != "" {
		if metricsAddr != web.addr {
			metricsHandler = nil
		}
		if err := serveDashboard(ctx, root, d, web, metricsHandler, log); err != nil {
			return err
		}
	}
	log.Info("daemon started", "root", root, "pid", os.Getpid())
	go boot.Report(ctx, notifier, d)
	go boot.KeepAlive(ctx, notifier, func() bool { _, err := d.Status(nil); return err == nil })
	err = d.Run(ctx)
	os.Remove(paths.Socket(root))
	log.Info("daemon stopped")
	return err
}

// controlAccess reads who may use the control socket from the host policy's
// [control] table. A policy that does not parse leaves only root and the
// daemon's own user: refusing too much is the safe side of a broken file.
func controlAccess(root string) (control.Access, error) {
	a, warn, err := control.LoadAccess(root)
	if err != nil {
		a, _ := control.ResolveAccess(root, "", "")
		return a, fmt.Errorf("%w; only root and the daemon's own user may use the control socket", err)
	}
	return a, warn
}
