package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"upkeep/internal/compat"
	"upkeep/internal/host"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

func logrotateCommand(g *globals) *cobra.Command {
	var print bool
	var read string
	cmd := &cobra.Command{
		Use:   "logrotate NAME | logrotate --read FILE",
		Short: "Write <root>/etc/logrotate.d/NAME from the service's [log]; --read turns a stanza into a [log] section",
		Long: `upkeep logrotate NAME writes the logrotate stanza equivalent to the [log]
section of NAME's service.toml, for /var/log/NAME.log and NAME.error.log, and
a stanza for each file it writes itself ([[log.file]]: copytruncate, or a
postrotate script), to <root>/etc/logrotate.d/NAME (--print: to stdout). upkeep rotates these files
itself; the stanza is for hosts that keep logrotate in charge, and the two
should not both rotate the same files (see docs/logs.md).

upkeep logrotate --read FILE reads a logrotate configuration (FILE, or - for
stdin) and prints each stanza as the [log] section that does the same, with
what has no equivalent listed as comments.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if read != "" {
				if len(args) > 0 {
					return usageError{errors.New("logrotate: --read takes no NAME")}
				}
				return readStanza(read)
			}
			if err := minArgs(1, "NAME")(cmd, args); err != nil {
				return err
			}
			if err := checkNames(args); err != nil {
				return err
			}
			name := args[0]
			s, ps := spec.Load(g.root, paths.Service(g.root, name))
			if s == nil {
				return fmt.Errorf("logrotate %s: %w", name, ps)
			}
			stanza, skipped, err := compat.LogrotateD{
				HostPath: func(abs string) string { rel, _ := filepath.Rel(g.root, abs); return "/" + rel },
				Signal:   func(lf spec.LogFile) string { return "upkeep signal " + name + " " + lf.Signal },
			}.File(s)
			if err == nil && len(skipped) > 0 {
				err = skipped[0]
			}
			if err != nil {
				return fmt.Errorf("logrotate %s: %w", name, err)
			}
			rel, _ := filepath.Rel(g.root, s.File)
			text := fmt.Sprintf("# Written by `upkeep logrotate %s` from /%s.\n"+
				"# upkeep rotates these files itself, the same way; install this only for a\n"+
				"# host where logrotate is to do it, and then not both (docs/logs.md).\n%s", name, rel, stanza)
			if print {
				_, err := io.WriteString(os.Stdout, text)
				return err
			}
			h, err := host.New(g.root, "", nil)
			if err != nil {
				return err
			}
			path, err := h.WriteLogrotate(name, text)
			if err != nil {
				return fmt.Errorf("logrotate %s: %w", name, err)
			}
			fmt.Println(path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the stanza instead of writing it")
	cmd.Flags().StringVar(&read, "read", "", "read a logrotate stanza from FILE (- for stdin) and print it as a [log] section")
	return cmd
}

func readStanza(file string) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	stanzas, ps := compat.ParseStanzas(file, data)
	for _, p := range ps {
		fmt.Fprintln(os.Stderr, p.String())
	}
	if len(ps) > 0 {
		return fmt.Errorf("%d problem(s) found", len(ps))
	}
	if len(stanzas) == 0 {
		return fmt.Errorf("%s: no stanza (paths { ... })", file)
	}
	_, err = io.WriteString(os.Stdout, compat.Sections(file, stanzas))
	return err
}
