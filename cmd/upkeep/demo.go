package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/demo"
	"upkeep/internal/paths"
)

func demoCommand(g *globals) *cobra.Command {
	var keep bool
	var web webFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bring up an example host in a temp dir, crash a service, and show what upkeep does",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), keep, web)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo host running until Ctrl-C")
	cmd.Flags().StringVar(&web.addr, "http", "", "serve the dashboard at http://ADDR/ (with --keep, e.g. 127.0.0.1:9642)")
	cmd.Flags().BoolVar(&web.actions, "http-actions", false, "let the dashboard act (token in the demo host's run/upkeep/http.token)")
	return cmd
}

func runDemo(ctx context.Context, keep bool, web webFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "upkeep-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	addr, err := demo.Write(root, exe)
	if err != nil {
		return err
	}
	fmt.Printf("demo host at %s with three services under var/www/\n\n", root)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, root, slog.LevelWarn, "", web) }()

	c := control.NewClient(paths.Socket(root))
	all := []string{"www-hello", "service-ticker", "api-worker"}
	if err := waitRunning(c, all, 10*time.Second); err != nil {
		return err
	}
	show(c, "$ upkeep --root "+root+" status")
	if resp, err := http.Get("http://" + addr + "/ok"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("$ curl http://%s/ok\n%s\n", addr, b)
	}

	st, _ := c.Status(ctx, []string{"www-hello"})
	old := st[0].Pid
	fmt.Printf("$ kill -9 %d   # crash www-hello\n", old)
	t0 := time.Now()
	_ = syscall.Kill(old, syscall.SIGKILL)
	for time.Since(t0) < 5*time.Second {
		st, _ = c.Status(ctx, []string{"www-hello"})
		if len(st) == 1 && st[0].Pid != 0 && st[0].Pid != old {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("restarted as pid %d after %v\n\n", st[0].Pid, time.Since(t0).Round(100*time.Microsecond))
	_ = waitRunning(c, all, 5*time.Second)
	show(c, "$ upkeep status")
	if st, err := c.Status(ctx, []string{"www-hello"}); err == nil {
		fmt.Println("$ upkeep status www-hello   # its row, then its HTTP check")
		printStatus(st)
		printChecks(st)
		fmt.Println()
	}
	fmt.Println("$ upkeep events")
	_ = c.Events(ctx, "", false, func(e api.Event) { fmt.Println(formatEvent(e)) })
	fmt.Println()
	for _, rel := range []string{paths.LogRel("api-worker"), paths.ErrorLogRel("api-worker"), paths.LogRel("service-ticker")} {
		b, _ := os.ReadFile(filepath.Join(root, rel))
		fmt.Printf("$ cat %s\n%s\n", rel, strings.TrimSpace(string(b)))
	}
	if keep {
		up := keepCommand(exe)
		fmt.Printf("\nkeeping the demo host up; in another terminal try:\n  %s --root %s status\n  %s --root %s restart www-hello\nCtrl-C stops every service and removes the host.\n", up, root, up, root)
		if web.addr != "" {
			fmt.Printf("the dashboard: http://%s/\n", web.addr)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	fmt.Println("\nstopping the daemon: api-worker first (it depends on www-hello), then www-hello and service-ticker")
	cancel()
	return <-done
}

// keepCommand is how the operator runs this upkeep from another terminal:
// a binary that go run built lives in a go-build directory it removes on
// exit, so the hint names go run itself (from the checkout, where the demo
// was started); an installed binary is named by its path.
func keepCommand(exe string) string {
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/upkeep"
	}
	if p, err := exec.LookPath("upkeep"); err == nil && p == exe {
		return "upkeep"
	}
	return exe
}

func waitRunning(c *control.Client, names []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := c.Status(context.Background(), names)
		up := err == nil
		for _, s := range st {
			up = up && s.State == api.Running
		}
		if up {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo services did not come up within %v (last error: %v)", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func show(c *control.Client, title string) {
	st, err := c.Status(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(title)
	printStatus(st)
	fmt.Println()
}

func serveOKCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:    "serve-ok",
		Short:  "A tiny HTTP service answering /ok (used by the demo)",
		Hidden: true,
		Args:   maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			mux := http.NewServeMux()
			mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
				fmt.Printf("%s GET /ok\n", time.Now().Format(time.RFC3339))
				fmt.Fprintln(w, "ok")
			})
			fmt.Printf("listening on %s\n", addr)
			return http.ListenAndServe(addr, mux)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	return cmd
}
