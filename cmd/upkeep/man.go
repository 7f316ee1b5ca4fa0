//go:build man

package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Built only with -tags man (make man does): cobra/doc brings a markdown
// renderer and a YAML encoder, a megabyte the daemon has no use for.
func init() { extraCommands = append(extraCommands, manCommand) }

// manCommand writes the man pages, upkeep.1 and one upkeep-CMD.1 per
// command, generated from the commands themselves (make man runs it), so
// the pages never lag behind the flags.
func manCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "__man DIR",
		Short:  "Write the man pages into DIR (used by make man)",
		Hidden: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("__man: want DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			// The defaults as a reader's host has them, not as the
			// machine that built the pages had them.
			root.PersistentFlags().Lookup("root").DefValue = "/"
			root.PersistentFlags().Lookup("home").DefValue = "$HOME"
			disableAutoGenTag(root)
			// The date comes from SOURCE_DATE_EPOCH when set (the
			// Makefile sets it to the last commit's): reproducible pages.
			return doc.GenManTree(root, &doc.GenManHeader{Title: "UPKEEP", Section: "1", Source: "upkeep", Manual: "upkeep manual"}, args[0])
		},
	}
}

func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, s := range c.Commands() {
		disableAutoGenTag(s)
	}
}
