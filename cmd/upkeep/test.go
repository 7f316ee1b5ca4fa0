package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/sandbox"
)

func testCommand(g *globals) *cobra.Command {
	var o sandbox.Options
	var asJSON bool
	var net, enterID, stopID string
	cmd := &cobra.Command{
		Use:   "test NAME|DIR|IMAGE | --enter ID [CMD...] | --stop ID",
		Short: "Run a service and its [test] in a throwaway copy of the host (namespaces, overlayfs) and report what it touched",
		Long: `Run a service and its [test] in a throwaway copy of the host and report what it touched.
IMAGE is a .tar.gz/.tgz/.tar file (as image add takes) or NAME@VERSION in the image store
(NAME@ for the newest). --keep leaves the sandbox running (its record: run/upkeep/sandbox/ID
under the root); --enter ID runs a shell or CMD inside it, --stop ID ends it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case enterID != "" && stopID != "":
				return usageError{errors.New("test: --enter and --stop exclude each other")}
			case enterID != "":
				return nil // the command to run inside
			case stopID != "" && len(args) != 0:
				return usageError{errors.New("test: --stop takes no arguments")}
			case stopID != "":
				return nil
			case len(args) != 1:
				return usageError{errors.New("test: want one NAME, DIR or IMAGE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case enterID != "":
				code, err := sandbox.Enter(g.root, enterID, args)
				if err != nil {
					return sandboxErr(err)
				}
				if code != 0 {
					os.Exit(code) // the command's own status, as nsenter and ssh pass it on
				}
				return nil
			case stopID != "":
				msg, err := sandbox.Stop(g.root, stopID, 30*time.Second)
				if err != nil {
					return sandboxErr(err)
				}
				fmt.Println(msg)
				return nil
			}
			switch net {
			case "":
			case "host":
				o.NetHost = true
			default:
				return usageError{fmt.Errorf("--net: want host, got %q", net)}
			}
			o.Root, o.Home, o.Target = g.root, g.home, args[0]
			r, err := runSandbox(cmd.Context(), o)
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
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "leave the sandbox running once the service is healthy and tested, and print how to enter it")
	cmd.Flags().BoolVar(&o.Shell, "shell", false, "open a shell inside once the service is healthy and tested; the sandbox goes when it exits")
	cmd.Flags().StringVar(&enterID, "enter", "", "run a shell (or the command given) inside the kept sandbox `ID`")
	cmd.Flags().StringVar(&stopID, "stop", "", "end the kept sandbox `ID`")
	return cmd
}

// runSandbox runs one sandbox test; SIGINT and SIGTERM tear it down.
func runSandbox(ctx context.Context, o sandbox.Options) (*sandbox.Report, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := sandbox.Run(ctx, o)
	return r, sandboxErr(err)
}

func sandboxErr(err error) error {
	var ue sandbox.UsageError
	if errors.As(err, &ue) {
		return usageError{err}
	}
	return err
}

// deployTest is deploy --test: the sandbox test of the release about to
// be deployed, before anything of the host changes.
func deployTest(ctx context.Context, g *globals, name, version string) error {
	o := sandbox.Options{Root: g.root, Home: g.home, Target: name + "@" + version, Timeout: 60 * time.Second}
	fmt.Fprintf(os.Stderr, "testing %s in a sandbox\n", strings.TrimSuffix(o.Target, "@"))
	r, err := runSandbox(ctx, o)
	if err != nil {
		return fmt.Errorf("deploy --test of %s: %w; the current release is untouched", o.Target, err)
	}
	r.Format(os.Stderr)
	if !r.OK {
		return fmt.Errorf("deploy --test of %s: %s; the current release is untouched", r.Image, r.Reason)
	}
	return nil
}
