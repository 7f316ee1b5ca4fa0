package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/logread"
)

func eventsCommand(g *globals) *cobra.Command {
	var follow, asJSON, retry bool
	var n int
	var since string
	cmd := &cobra.Command{
		Use:   "events [NAME]",
		Short: "Show recent events (state changes, check failures), of one service or all; -n, --since; -f follows",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args); err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			q := control.EventQuery{Service: name, N: n, Follow: follow}
			if n < -1 {
				return usageError{fmt.Errorf("events: -n: want a number of events, or -1 for all, got %d", n)}
			}
			if since != "" {
				t, err := logread.ParseTime(since, time.Now())
				if err != nil {
					return usageError{fmt.Errorf("events: --since: %w", err)}
				}
				q.Since = t
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			print := func(e api.Event) {
				if asJSON {
					b, _ := jsonLine(e)
					os.Stdout.Write(b)
					return
				}
				fmt.Println(formatEvent(e))
			}
			if retry && !follow {
				return usageError{fmt.Errorf("events: --retry needs -f")}
			}
			return followEvents(ctx, control.NewClient(g.sock()), q, retry, print)
		},
	}
	cmd.Flags().BoolVar(&retry, "retry", false, "with -f: when the daemon stops, wait for it and follow again")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they happen")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	cmd.Flags().IntVarP(&n, "lines", "n", -1, "only the last N events of the history (-1: all the daemon keeps)")
	cmd.Flags().StringVar(&since, "since", "", "only events since TIME (as logs --since: RFC 3339, a local time, or a duration before now: 10m)")
	return cmd
}

func formatEvent(e api.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-20s ", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Service)
	switch e.Kind {
	case "state":
		fmt.Fprintf(&b, "%s -> %s", e.From, e.State)
		if e.Pid != 0 {
			fmt.Fprintf(&b, " (pid %d)", e.Pid)
		}
	case "check":
		fmt.Fprintf(&b, "check %s", e.Check)
	default:
		b.WriteString(e.Kind)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// printChecks shows the checks of the services that have any, under the
// status table: last result, latency and failure streak.
func printChecks(st []api.Status) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	header := false
	for _, s := range st {
		for _, c := range s.Checks {
			if !header {
				fmt.Fprintln(w, "\nSERVICE\tCHECK\tTYPE\tLAST\tLATENCY\tSTREAK\tPASSES\tFAILURES\tMESSAGE")
				header = true
			}
			last, lat, msg := "-", "-", ""
			if c.Last != nil {
				last, lat, msg = "ok", c.Last.Latency.Round(10*time.Microsecond).String(), c.Last.Message
				if !c.Last.OK {
					last = "FAIL"
				}
				if c.Failing {
					last += " (failing)"
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, c.Name, c.Type, last, lat, c.Streak, c.Passes, c.Failures, msg)
		}
	}
	w.Flush()
}
