package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"upkeep/internal/host"
	"upkeep/internal/spec"
)

// LogrotateDir is where logrotate reads its per-package stanzas, under the
// root.
const LogrotateDir = "etc/logrotate.d"

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
			s, ps := spec.Load(g.root, filepath.Join(g.root, spec.WWW, name))
			if s == nil {
				return fmt.Errorf("logrotate %s: %w", name, ps)
			}
			logDir := "/" + host.LogDir
			stanza, err := s.Log.Logrotate([]string{
				filepath.Join(logDir, name+".log"),
				filepath.Join(logDir, name+".error.log"),
			})
			if err != nil {
				return fmt.Errorf("logrotate %s: %w", name, err)
			}
			for _, lf := range s.LogFiles {
				rel, _ := filepath.Rel(g.root, lf.Abs)
				more, err := lf.Logrotate("/"+rel, "upkeep signal "+name+" "+lf.Signal)
				if err != nil {
					return fmt.Errorf("logrotate %s: %w", name, err)
				}
				stanza += "\n" + more
			}
			rel, _ := filepath.Rel(g.root, s.File)
			text := fmt.Sprintf("# Written by `upkeep logrotate %s` from /%s.\n"+
				"# upkeep rotates these files itself, the same way; install this only for a\n"+
				"# host where logrotate is to do it, and then not both (docs/logs.md).\n%s", name, rel, stanza)
			if print {
				_, err := io.WriteString(os.Stdout, text)
				return err
			}
			dir := filepath.Join(g.root, LogrotateDir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("logrotate %s: %w", name, err)
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
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
	stanzas, ps := spec.ParseLogrotate(file, data)
	for _, p := range ps {
		fmt.Fprintln(os.Stderr, p.String())
	}
	if len(ps) > 0 {
		return fmt.Errorf("%d problem(s) found", len(ps))
	}
	if len(stanzas) == 0 {
		return fmt.Errorf("%s: no stanza (paths { ... })", file)
	}
	for i, st := range stanzas {
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("# %s (%s:%d)\n", strings.Join(st.Paths, " "), file, st.Line)
		for _, ig := range st.Ignored {
			fmt.Printf("# no equivalent, left out: %s\n", ig)
		}
		if st.CopyTruncate {
			fmt.Println("# copytruncate: not needed, upkeep rotates its captured output between two writes")
		}
		fmt.Print(st.Log.Section())
	}
	return nil
}
