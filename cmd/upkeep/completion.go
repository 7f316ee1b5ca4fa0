package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

// Shell completion: cobra's `upkeep completion bash|zsh|fish` scripts call
// the hidden `upkeep __complete ARGS...`, which answers from the functions
// set here. Service names are read from the root's var/www, not asked of
// the daemon: completion works on a host whose daemon is down, and costs a
// directory read.

// Which arguments of which command are service names: every one, or only
// the first.
var (
	serviceArgsAll   = []string{"start", "stop", "restart", "status", "rotate", "is-active", "is-failed"}
	serviceArgsFirst = []string{"logs", "logrotate", "events", "rollback", "releases", "remove", "test", "validate", "deploy"}
	exportTargets    = []string{"systemd", "kubernetes", "nomad"}
)

func addCompletions(root *cobra.Command, g *globals) {
	for _, c := range root.Commands() {
		if c.ValidArgsFunction != nil {
			continue
		}
		name := c.Name()
		switch {
		case slices.Contains(serviceArgsAll, name):
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				return without(serviceNames(g.root), args), cobra.ShellCompDirectiveNoFileComp
			}
		case slices.Contains(serviceArgsFirst, name):
			// validate and test take a path as well as a name: files too.
			dir := cobra.ShellCompDirectiveNoFileComp
			if name == "validate" || name == "test" {
				dir = cobra.ShellCompDirectiveDefault
			}
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveDefault
				}
				return serviceNames(g.root), dir
			}
		case name == "signal":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				switch len(args) {
				case 0:
					return serviceNames(g.root), cobra.ShellCompDirectiveNoFileComp
				case 1:
					return signalNames(), cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		case name == "export":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return exportTargets, cobra.ShellCompDirectiveNoFileComp
				}
				return without(serviceNames(g.root), args[1:]), cobra.ShellCompDirectiveNoFileComp
			}
		}
	}
}

// serviceNames lists the services under root: each directory of var/www
// (or link to one) holding a service.toml; .releases and other dot
// entries are not services.
func serviceNames(root string) []string {
	www := filepath.Join(root, spec.WWW)
	entries, err := os.ReadDir(www)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || spec.CheckName(n) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(www, n, spec.FileName)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// signalNames are the signals `upkeep signal` takes, without SIG, as
// kill -l prints them.
func signalNames() []string {
	var out []string
	for n := unix.Signal(1); n < 32; n++ {
		if s := unix.SignalName(n); s != "" {
			out = append(out, strings.TrimPrefix(s, "SIG"))
		}
	}
	return out
}

func without(names, given []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if !slices.Contains(given, n) {
			out = append(out, n)
		}
	}
	return out
}
