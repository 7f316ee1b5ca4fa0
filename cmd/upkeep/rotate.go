package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"upkeep/internal/control"
)

func rotateCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "rotate NAME|PATTERN... | rotate --all",
		Short: "Rotate services' logs now, as logrotate -f does",
		Long: `upkeep rotate NAME rotates every log of the service now, through the daemon:
NAME.log, NAME.error.log and the files it writes itself ([[log.file]]), each
by its [log] settings, as logrotate -f does. notifempty still applies: an empty
file is left as it is. --all rotates every service's logs.

A rotation of captured output happens between two lines. When the service
has written half a line and paused, the rotation waits for the end of that
line and is reported as pending.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usageError{errors.New("rotate: NAME or --all, not both")}
			}
			if !all && len(args) == 0 {
				return usageError{errors.New("rotate: missing NAME (or --all)")}
			}
			return checkSelectors(args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := control.NewClient(g.sock())
			if anyPattern(args) {
				var err error
				if args, err = selection(cmd.Context(), c, args, false); err != nil {
					return err
				}
			}
			res, err := c.Rotate(cmd.Context(), args, all)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			failed := 0
			for _, r := range res {
				file := r.File
				if rel, err := filepath.Rel(g.root, r.File); err == nil {
					file = "/" + rel
				}
				what := "not rotated (empty or missing)"
				switch {
				case r.Error != "":
					what = "error: " + r.Error
					failed++
				case r.Pending:
					what = "pending: at the end of the line being written"
				case r.Rotated && r.To == "":
					what = "rotated (rotate 0: old contents discarded)"
				case r.Rotated:
					what = "rotated to " + filepath.Base(r.To)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Service, file, what)
			}
			w.Flush()
			if failed > 0 {
				return fmt.Errorf("rotate: %d file(s) not rotated", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "rotate the logs of every service")
	return cmd
}
