package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/spec"
)

func checkNames(names []string) error {
	for _, n := range names {
		if err := spec.CheckName(n); err != nil {
			return usageError{err}
		}
	}
	return nil
}

func statusCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show the state of services",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args); err != nil {
				return err
			}
			if asJSON {
				raw, err := control.NewClient(g.sock()).StatusJSON(cmd.Context(), args)
				if err != nil {
					return err
				}
				var out bytes.Buffer
				if err := json.Indent(&out, raw, "", "  "); err != nil {
					return err
				}
				_, err = os.Stdout.Write(out.Bytes())
				return err
			}
			st, err := control.NewClient(g.sock()).Status(cmd.Context(), args)
			if err != nil {
				return err
			}
			printStatus(st)
			printChecks(st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func printStatus(st []api.Status) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tLAST EXIT\tCPU\tRSS")
	for _, s := range st {
		pid, up, cpu, rss := "-", "-", "-", "-"
		if s.Pid != 0 {
			pid = fmt.Sprint(s.Pid)
			up = formatUptime(time.Duration(s.UptimeSeconds * float64(time.Second)))
			cpu = fmt.Sprintf("%.2fs", s.CPUSeconds)
			rss = fmt.Sprintf("%.1fM", float64(s.RSSBytes)/(1<<20))
		}
		state := s.State.String()
		if s.Detail != "" {
			state += " (" + s.Detail + ")"
		}
		last := s.LastExit
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, state, pid, up, s.Restarts, last, cpu, rss)
	}
	w.Flush()
	for _, s := range st {
		if s.LogError != "" || s.DroppedBytes > 0 {
			fmt.Fprintf(os.Stdout, "\n%s: log output dropped: %d bytes (%s)\n", s.Name, s.DroppedBytes, s.LogError)
		}
		if s.Error != "" {
			fmt.Fprintf(os.Stdout, "\n%s: definition problems:\n  %s\n", s.Name, strings.ReplaceAll(s.Error, "\n", "\n  "))
		}
	}
}

func actionCommand(g *globals, action, short string) *cobra.Command {
	var noWait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   action + " NAME...",
		Short: short,
		Args:  minArgs(1, "service name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+5*time.Second)
			defer cancel()
			c := control.NewClient(g.sock())
			act := map[string]func(context.Context, []string, control.ActOptions) error{"start": c.Start, "stop": c.Stop, "restart": c.Restart}[action]
			return act(ctx, args, control.ActOptions{Wait: !noWait, Timeout: timeout})
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has the request")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the services")
	return cmd
}

func signalCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "signal NAME SIGNAL",
		Short: "Send a signal to a service's main process (--all: to all its processes)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("signal: want NAME SIGNAL")}
			}
			if _, err := spec.ParseSignal(args[1]); err != nil {
				return usageError{err}
			}
			return checkNames(args[:1])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, _ := spec.ParseSignal(args[1]) // checked in Args
			return control.NewClient(g.sock()).Signal(cmd.Context(), args[0], sig, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "signal every process of the service")
	return cmd
}

func reloadCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read service definitions: start new, stop removed, restart changed",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := control.NewClient(g.sock()).Reload(cmd.Context())
			if err != nil {
				return err
			}
			for _, l := range []struct {
				what  string
				names []string
			}{{"added", res.Added}, {"removed", res.Removed}, {"changed", res.Changed}, {"unchanged", res.Unchanged}, {"broken", res.Broken}} {
				if len(l.names) > 0 {
					fmt.Printf("%s: %s\n", l.what, strings.Join(l.names, " "))
				}
			}
			if res.Policy != "" {
				fmt.Fprintln(os.Stderr, res.Policy)
			}
			if res.Problems != "" {
				fmt.Fprint(os.Stderr, res.Problems)
				return fmt.Errorf("some definitions are broken; their services keep their previous definition")
			}
			if res.Policy != "" {
				return fmt.Errorf("the host policy is broken; the control socket keeps its previous access")
			}
			return nil
		},
	}
}

func formatUptime(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
