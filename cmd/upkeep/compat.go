package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"upkeep/internal/compat"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

func importCommand(g *globals) *cobra.Command {
	var to, format string
	var dryRun, force bool
	cmd := &cobra.Command{
		Use:   "import FILE…",
		Short: "Turn monit, upstart, supervisord, Procfile and logrotate files into service.toml files",
		Long: `Reads each FILE (its format is detected, or given with --format) and writes one
DIR/<name>/service.toml per service, DIR being --to (default <root>/var/www). What one service's
files say is merged: the guide's monit stanza and upstart job become one service. Everything that
could not be translated is listed on stderr as file:line: 'directive' what happened, and as
comments at the end of the file. An existing service.toml is never replaced without --force.`,
		Args: minArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := compat.Format(format)
			if f != "" && !slices.Contains(compat.Formats, f) {
				return usageError{fmt.Errorf("import: unknown --format %q", format)}
			}
			// A large import allocates about twice what it keeps (the
			// tokens, each service's draft), in a process that exits
			// when done: collecting half as often takes a tenth off the
			// time of 5,000 services, for a peak of about 100 MB.
			debug.SetGCPercent(200)
			var in []compat.Input
			for _, a := range args {
				data, err := os.ReadFile(a)
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				in = append(in, compat.Input{Path: a, Data: data, Format: f})
			}
			r := compat.Import(in, compat.Options{ReadFile: os.ReadFile, Glob: filepath.Glob, Validate: true})
			// Thousands of lines: one write each would cost more than
			// the rest of an import's output.
			stdout := bufio.NewWriter(cmd.OutOrStdout())
			stderr := bufio.NewWriter(cmd.ErrOrStderr())
			defer stdout.Flush()
			defer stderr.Flush()
			for _, n := range r.Notes {
				stderr.WriteString(n.String())
				stderr.WriteByte('\n')
			}
			stderr.Flush() // the notes come before what is written
			dir := to
			if dir == "" {
				dir = filepath.Join(g.root, paths.WWW)
			}
			failed := len(r.Errors())
			if dryRun {
				for _, d := range r.Services {
					fmt.Fprintf(stdout, "# %s\n%s\n", filepath.Join(dir, d.Name, spec.FileName), d.TOML())
				}
			} else {
				files := make([]compat.ServiceFile, len(r.Services))
				for i, d := range r.Services {
					files[i] = compat.ServiceFile{Name: d.Name, Data: d.TOML()}
				}
				for _, w := range compat.WriteServices(dir, files, force) {
					if w.Err != nil {
						failed++
						fmt.Fprintf(stderr, "%s: %v\n", w.Name, w.Err)
						continue
					}
					fmt.Fprintf(stdout, "wrote %s\n", w.File)
				}
			}
			if failed > 0 {
				return fmt.Errorf("import: %d service(s) not imported", failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "directory to write <name>/service.toml into (default <root>/var/www)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the service.toml files instead of writing them")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing service.toml files")
	cmd.Flags().StringVar(&format, "format", "", "the files' format: "+strings.Join(compatFormatNames(), ", ")+" (default: detected)")
	return cmd
}

func exportCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export systemd|kubernetes|nomad NAME…",
		Short: "Write services as systemd units, Kubernetes manifests or Nomad jobs",
		Long: `Reads the services NAME… from <root>/var/www and writes, into --out DIR (or to stdout):
systemd: <name>.service and logrotate.d/<name>; kubernetes: <name>.yaml (Deployment, and a Service
and ConfigMaps where there is something to put in them); nomad: <name>.nomad.json, for
nomad job run -json. What the target cannot express is listed on stderr.`,
		Args: minArgs(2, "target and NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := compat.Target(args[0])
			if !slices.Contains(compat.Targets, target) {
				return usageError{fmt.Errorf("export: unknown target %q (want systemd, kubernetes or nomad)", args[0])}
			}
			host, err := spec.LoadHost(g.root)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			var svcs []*spec.Service
			for _, name := range args[1:] {
				s, ok := host.Services[name]
				if !ok {
					for _, p := range host.Problems[name] {
						fmt.Fprintln(stderr, p.String())
					}
					return fmt.Errorf("export: no loadable service %q under %s", name, filepath.Join(g.root, paths.WWW))
				}
				svcs = append(svcs, s)
			}
			for _, s := range svcs {
				files, notes, err := compat.Export(target, g.root, s)
				for _, n := range notes {
					fmt.Fprintln(stderr, n.String())
				}
				if err != nil {
					return fmt.Errorf("export %s: %w", s.Name, err)
				}
				for _, f := range files {
					if out == "" {
						fmt.Fprintf(cmd.OutOrStdout(), "# %s\n%s", f.Name, f.Data)
						continue
					}
					path := filepath.Join(out, f.Name)
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return err
					}
					if err := os.WriteFile(path, f.Data, 0o644); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the files into (default: print them)")
	return cmd
}

func compatFormatNames() []string {
	var out []string
	for _, f := range compat.Formats {
		out = append(out, string(f))
	}
	return out
}
