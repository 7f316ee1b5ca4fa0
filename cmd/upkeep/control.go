package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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
	var asJSON, all, watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status [NAME|PATTERN...]",
		Short: "Show the state of services (exit 3 when one is not in its wanted state)",
		Long: `upkeep status shows the state of the named services, of those matching a
shell pattern ('www-*'), or with none named (or --all) of every service.

Exit status: 0 when each service shown is in its wanted state (running, or
stopped on purpose), 3 when one is not (starting, stopping, backoff, exited,
fatal, or stopped with a broken definition), as systemctl is-active; 1 when
the daemon could not answer or a name is unknown, 2 for bad usage.`,
		Args: func(cmd *cobra.Command, args []string) error { return checkSelectors(args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c := control.NewClient(g.sock())
			if watch {
				if asJSON {
					return usageError{errors.New("status: --watch and --json exclude each other")}
				}
				if every < 100*time.Millisecond {
					return usageError{fmt.Errorf("status: --interval %s: want 100ms or more", every)}
				}
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return watchStatus(ctx, c, args, all, every)
			}
			names, err := selection(cmd.Context(), c, args, all)
			if err != nil {
				return err
			}
			if asJSON {
				raw, err := c.StatusJSON(cmd.Context(), names)
				if err != nil {
					return err
				}
				var out bytes.Buffer
				if err := json.Indent(&out, raw, "", "  "); err != nil {
					return err
				}
				if _, err = os.Stdout.Write(out.Bytes()); err != nil {
					return err
				}
				var st []api.Status
				if err := json.Unmarshal(raw, &st); err != nil {
					return err
				}
				return statusExit(st)
			}
			st, err := c.Status(cmd.Context(), names)
			if err != nil {
				return err
			}
			printStatus(st)
			printChecks(st)
			return statusExit(st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().BoolVar(&all, "all", false, "every service (the same as naming none)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh the table every --interval until Ctrl-C (in place on a terminal), like top")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "with --watch: how often")
	return cmd
}

// watchStatus redraws the status table every interval until ctx ends:
// in place on a terminal (cursor home, clear), as successive tables
// otherwise. The names are looked up each time, so a pattern picks up
// services added meanwhile; a daemon that stops is said and waited for.
func watchStatus(ctx context.Context, c *control.Client, args []string, all bool, every time.Duration) error {
	tty := term.IsTerminal(int(os.Stdout.Fd()))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var frame bytes.Buffer
		if tty {
			frame.WriteString("\033[H\033[2J")
		}
		fmt.Fprintf(&frame, "every %s: upkeep status%s    %s\n\n", every, strings.TrimRight(" "+strings.Join(args, " "), " "), time.Now().Format("15:04:05"))
		os.Stdout.Write(frame.Bytes())
		names, err := selection(ctx, c, args, all)
		var st []api.Status
		if err == nil {
			st, err = c.Status(ctx, names)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Printf("upkeep: %v\n", err)
		} else {
			printStatus(st)
		}
		if !tty {
			fmt.Println()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// statusExit is status's answer: nil when every service of st is in its
// wanted state, exit status 3 otherwise.
func statusExit(st []api.Status) error {
	for _, s := range st {
		if !wanted(s) {
			return notWanted
		}
	}
	return nil
}

// stateCommand is is-active and is-failed: one state word per name on
// stdout, and the exit status scripts branch on.
func stateCommand(g *globals, use, short string, yes func(api.Status) bool, allMust bool) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   use + " NAME|PATTERN...",
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("%s: missing service name", use)}
			}
			return checkSelectors(args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := control.NewClient(g.sock())
			names, err := selection(cmd.Context(), c, args, false)
			if err != nil {
				return err
			}
			// All of them, so an unknown name is answered "unknown" as
			// systemctl answers "inactive", not refused.
			st, err := c.Status(cmd.Context(), nil)
			if err != nil {
				return err
			}
			byName := map[string]api.Status{}
			for _, s := range st {
				byName[s.Name] = s
			}
			some, every := false, true
			for _, n := range names {
				s, ok := byName[n]
				word := "unknown"
				if ok {
					word = s.State.String()
				}
				if !quiet {
					fmt.Println(word)
				}
				y := ok && yes(s)
				some = some || y
				every = every && y
			}
			if (allMust && every) || (!allMust && some) {
				return nil
			}
			if allMust {
				return notWanted
			}
			return exitStatus(1)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing; only the exit status answers")
	return cmd
}

func isActiveCommand(g *globals) *cobra.Command {
	cmd := stateCommand(g, "is-active", "Print each service's state; exit 0 when all are running, 3 otherwise",
		func(s api.Status) bool { return s.State == api.Running }, true)
	return cmd
}

func isFailedCommand(g *globals) *cobra.Command {
	return stateCommand(g, "is-failed", "Print each service's state; exit 0 when one has failed (fatal, backoff, exited non-zero, broken), 1 otherwise",
		failed, false)
}

func printStatus(st []api.Status) {
	var table bytes.Buffer
	w := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
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
	b := table.Bytes()
	if colourStdout() {
		b = colourTable(b, st)
	}
	os.Stdout.Write(b)
	for _, s := range st {
		if s.StatusText != "" || s.Announced != "" {
			fmt.Fprintf(os.Stdout, "\n%s: %s\n", s.Name, strings.TrimPrefix(strings.Join([]string{s.Announced, s.StatusText}, ": "), ": "))
		}
		if len(s.StoppedPids) > 0 {
			fmt.Fprintf(os.Stdout, "\n%s: stopped (T), frozen until continued: pid %s\n", s.Name, strings.Trim(fmt.Sprint(s.StoppedPids), "[]"))
		}
		if s.LogError != "" || s.DroppedBytes > 0 {
			fmt.Fprintf(os.Stdout, "\n%s: log output dropped: %d bytes (%s)\n", s.Name, s.DroppedBytes, s.LogError)
		}
		if s.Error != "" {
			fmt.Fprintf(os.Stdout, "\n%s: definition problems:\n  %s\n", s.Name, strings.ReplaceAll(s.Error, "\n", "\n  "))
		}
	}
}

func actionCommand(g *globals, action, short string) *cobra.Command {
	var noWait, all, quiet bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   action + " NAME|PATTERN... | " + action + " --all",
		Short: short,
		Long: short + `.

Names, shell patterns matched against the services' names ('www-*', quoted
so the shell leaves them alone; one that matches nothing is an error) or
--all. The daemon acts in dependency order: a start starts what a service
depends on first, a stop stops what depends on it first.

When done, one line per service: "www-hello: running (pid 123)",
"www-hello: stopped". While waiting, a progress line (a stop timeout
counting down to its SIGKILL) is drawn on stderr when it is a terminal.
-q prints nothing but errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usageError{fmt.Errorf("%s: NAME or --all, not both", action)}
			}
			if !all && len(args) == 0 {
				return usageError{fmt.Errorf("%s: missing service name (or --all)", action)}
			}
			return checkSelectors(args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+5*time.Second)
			defer cancel()
			c := control.NewClient(g.sock())
			names, err := selection(ctx, c, args, all)
			if err != nil {
				return err
			}
			act := map[string]func(context.Context, []string, control.ActOptions) error{"start": c.Start, "stop": c.Stop, "restart": c.Restart}[action]
			var tty io.Writer
			if !quiet && !noWait {
				tty = stderrTTY()
			}
			p := startProgress(tty, c, g.root, names)
			err = act(ctx, names, control.ActOptions{Wait: !noWait, Timeout: timeout})
			p.end()
			if !quiet {
				// One line per service, in the order the daemon acted:
				// what it depends on first, or for stop its dependents.
				// A stop stops the dependents too: they get their line.
				shown := names
				if action == "stop" {
					shown = withDependents(g.root, names)
				}
				if st, serr := c.Status(cmd.Context(), nil); serr == nil {
					byName := map[string]api.Status{}
					for _, s := range st {
						byName[s.Name] = s
					}
					for _, n := range dependencyOrder(g.root, shown, action == "stop") {
						if s, ok := byName[n]; ok {
							fmt.Println(doneLine(s))
						}
					}
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has the request")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the services")
	cmd.Flags().BoolVar(&all, "all", false, "every service of the host")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
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
