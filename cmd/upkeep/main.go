// Command upkeep keeps the services of a host up and running.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"upkeep/internal/paths"
)

// extraCommands are the commands of optional build tags (man: __man).
var extraCommands []func() *cobra.Command

// usageError marks errors in how upkeep was called (exit status 2).
type usageError struct{ error }

type globals struct {
	root string
	home string
}

func (g *globals) sock() string { return paths.Socket(g.root) }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := rootCommand()
	cmd.SetArgs(args)
	ran, err := cmd.ExecuteC()
	if err == nil {
		return 0
	}
	var es exitStatus
	if errors.As(err, &es) {
		return int(es) // an answer (status, is-active), not an error to print
	}
	err = suggestName(cmd, ran, explain(cmd, err)) // usage.go: unknown commands, did you mean
	fmt.Fprintln(os.Stderr, "upkeep: "+err.Error())
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func rootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "upkeep",
		Short:         "Keep the services of a host up and running",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			abs, err := filepath.Abs(g.root)
			if err != nil {
				return usageError{fmt.Errorf("--root: %w", err)}
			}
			g.root = abs
			return nil
		},
	}
	root.SetFlagErrorFunc(flagError)
	defRoot := os.Getenv("UPKEEP_ROOT")
	if defRoot == "" {
		defRoot = "/"
	}
	home, _ := os.UserHomeDir()
	root.PersistentFlags().StringVar(&g.root, "root", defRoot, "the host's root directory (env UPKEEP_ROOT)")
	root.PersistentFlags().StringVar(&g.home, "home", home, "the operator's home, for ~/service ~/log ~/db")
	root.AddCommand(
		daemonCommand(g),
		statusCommand(g),
		actionCommand(g, "start", "Start services (and what they depend on)"),
		actionCommand(g, "stop", "Stop services (and what depends on them)"),
		actionCommand(g, "restart", "Restart services"),
		signalCommand(g),
		reloadCommand(g),
		eventsCommand(g),
		validateCommand(g),
		demoCommand(g),
		serveOKCommand(),
		provisionCommand(g), doctorCommand(g), imageCommand(g), deployCommand(g), rollbackCommand(g),
		releasesCommand(g), overlayCommand(g), removeCommand(g),
		logsCommand(g), logrotateCommand(g), rotateCommand(g),
		importCommand(g), exportCommand(g),
		testCommand(g),
		isActiveCommand(g), isFailedCommand(g),
	)
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	// "upkeep version 1.2.3 (commit ..., go1.26)". Not SetVersionTemplate:
	// a template links text/template, whose reflection keeps every method
	// of every type in the binary (3 MB more).
	root.Version = version()
	addCompletions(root, g)
	return root
}

// exactArgs and minArgs turn cobra's argument errors into usage errors.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s: missing %s", cmd.Name(), what)}
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%s: too many arguments", cmd.Name())}
		}
		return nil
	}
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}
