package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/sandbox"
)

func testCommand(g *globals) *cobra.Command {
	var o sandbox.Options
	var asJSON bool
	var net string
	cmd := &cobra.Command{
		Use:   "test NAME|DIR",
		Short: "Run a service and its [test] in a throwaway copy of the host (namespaces, overlayfs) and report what it touched",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("test: want one NAME or DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch net {
			case "":
			case "host":
				o.NetHost = true
			default:
				return usageError{fmt.Errorf("--net: want host, got %q", net)}
			}
			o.Root, o.Target = g.root, args[0]
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := sandbox.Run(ctx, o)
			var ue sandbox.UsageError
			if errors.As(err, &ue) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.MarshalIndent(r, "", "  ")
				fmt.Println(string(b))
			} else {
				r.Format(os.Stdout)
			}
			if !r.OK {
				return errors.New(r.Reason)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long the service has to come up healthy")
	cmd.Flags().StringVar(&net, "net", "", "host: share the host's network instead of a loopback of its own")
	return cmd
}
