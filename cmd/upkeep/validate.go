package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"upkeep/internal/host"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

func validateCommand(g *globals) *cobra.Command {
	var print, strict bool
	cmd := &cobra.Command{
		Use:   "validate [NAME|PATH]",
		Short: "Check service definitions without a daemon (NAME: a service of the root; PATH: a service directory or its service.toml)",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svcs, problems, err := loadForValidate(g.root, args)
			if err != nil {
				return err
			}
			cfg, err := host.LoadConfig(g.root) // prefixes and strict_names from etc/upkeep/upkeep.toml
			if err != nil {
				return err
			}
			accounts, err := spec.LoadAccounts(g.root)
			if err != nil {
				return err
			}
			for _, s := range svcs {
				// user, group, groups: a start would fail on a missing one.
				problems = append(problems, accounts.Check(s)...)
				// The rule deploy and image add apply; --strict makes its
				// warning an error here too.
				if warn, err := cfg.CheckName(s.Name); err != nil {
					problems = append(problems, spec.Problem{File: s.File, Msg: err.Error()})
				} else if warn != "" {
					problems = append(problems, spec.Problem{File: s.File, Warning: !strict, Msg: warn})
				}
			}
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, p.String())
			}
			if print {
				for _, s := range svcs {
					fmt.Printf("# %s\n", s.File)
					if err := toml.NewEncoder(os.Stdout).Encode(s); err != nil {
						return err
					}
				}
			}
			if n := len(problems.Errors()); n > 0 {
				return fmt.Errorf("%d problem(s) found", n)
			}
			if !print {
				fmt.Printf("%d service(s) OK\n", len(svcs))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the effective definitions, defaults included")
	cmd.Flags().BoolVar(&strict, "strict", false, "treat a name without a conventional prefix as an error")
	return cmd
}

func loadForValidate(root string, args []string) ([]*spec.Service, spec.Problems, error) {
	if len(args) == 0 {
		host, err := spec.LoadHost(root)
		if err != nil {
			return nil, nil, err
		}
		var svcs []*spec.Service
		var ps spec.Problems
		for _, n := range host.Names() {
			svcs = append(svcs, host.Services[n])
		}
		for _, p := range host.Problems {
			ps = append(ps, p...)
		}
		return svcs, ps, nil
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		return nil, nil, err
	}
	// A service's name as well as a path: the path wins when both exist
	// (./www-blog in the current directory is what the operator typed).
	if _, serr := os.Stat(dir); serr != nil && spec.CheckName(args[0]) == nil {
		dir = paths.Service(root, args[0])
		if _, err := os.Stat(dir); err != nil {
			return nil, nil, usageError{fmt.Errorf("validate: %s is neither a path nor a service under %s", args[0], filepath.Dir(dir))}
		}
	}
	if filepath.Base(dir) == spec.FileName {
		dir = filepath.Dir(dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, nil, usageError{fmt.Errorf("validate: %s is not a service directory", args[0])}
	}
	s, ps := spec.Load(root, dir)
	if s == nil {
		return nil, ps, nil
	}
	return []*spec.Service{s}, ps, nil
}
