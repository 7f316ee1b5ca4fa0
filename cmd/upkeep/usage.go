package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"upkeep/internal/control"
	"upkeep/internal/spec"
)

// The operator's words for what cobra and pflag say in theirs: every bad
// usage is one line and exit status 2, with a "did you mean" where a near
// name exists.

var (
	unknownCommandRE = regexp.MustCompile(`^unknown command "([^"]*)" for "([^"]*)"`)
	invalidFlagRE    = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-(\w), )?--([\w-]+)" flag: `)
	unknownFlagRE    = regexp.MustCompile(`^unknown flag: --([\w-]+)`)
	unknownServiceRE = regexp.MustCompile(`unknown service "([^"]+)"`)
)

// explain rewrites the error of a command line that went wrong before any
// command ran (an unknown command), and adds a suggestion to an unknown
// service name. root is the command tree that ran.
func explain(root *cobra.Command, err error) error {
	if m := unknownCommandRE.FindStringSubmatch(err.Error()); m != nil {
		parent := root
		if c, _, ferr := root.Find(strings.Fields(m[2])[1:]); ferr == nil {
			parent = c
		}
		msg := fmt.Sprintf("unknown command %q", m[1])
		if parent != root {
			msg = fmt.Sprintf("%s: unknown command %q", parent.Name(), m[1])
		}
		if s := suggestCommand(parent, m[1]); s != "" {
			return usageError{fmt.Errorf("%s; did you mean %q?", msg, s)}
		}
		return usageError{fmt.Errorf("%s (%s --help lists them)", msg, parent.CommandPath())}
	}
	if errors.Is(err, control.ErrUnknown) {
		if m := unknownServiceRE.FindStringSubmatch(err.Error()); m != nil {
			if alt := spec.Suggest(m[1], serviceNames(rootFlag(root))); alt != "" {
				return fmt.Errorf("%w; did you mean %q?", err, alt)
			}
		}
	}
	return err
}

// suggestName adds a "did you mean" to the failure of a command that was
// given a service name the root does not have (logs, deploy, rollback,
// export, … which read the host rather than ask the daemon), when the
// error names it and a defined service is near.
func suggestName(root, ran *cobra.Command, err error) error {
	var ue usageError
	if ran == nil || errors.As(err, &ue) || strings.Contains(err.Error(), "did you mean") {
		return err
	}
	names := serviceNames(rootFlag(root))
	for _, a := range ran.Flags().Args() {
		name, _, _ := strings.Cut(a, "@") // deploy NAME@VERSION
		if spec.CheckName(name) != nil || !strings.Contains(err.Error(), name) || slices.Contains(names, name) {
			continue
		}
		if alt := spec.Suggest(name, names); alt != "" {
			return fmt.Errorf("%w; did you mean %q?", err, alt)
		}
	}
	return err
}

// rootFlag is the --root the command line gave (or its default).
func rootFlag(root *cobra.Command) string {
	if f := root.PersistentFlags().Lookup("root"); f != nil {
		return f.Value.String()
	}
	return ""
}

// flagError is the root's flag error function: pflag's messages
// ("strconv.ParseInt: parsing \"abc\": invalid syntax") in the operator's
// words, as usage errors.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if m := invalidFlagRE.FindStringSubmatch(msg); m != nil {
		name := "--" + m[3]
		if m[2] != "" {
			name = "-" + m[2]
		}
		what := "not valid"
		if f := cmd.Flags().Lookup(m[3]); f != nil {
			what = expected(f)
		}
		return usageError{fmt.Errorf("invalid value %q for %s: %s", m[1], name, what)}
	}
	if m := unknownFlagRE.FindStringSubmatch(msg); m != nil {
		var names []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		if alt := spec.Suggest(m[1], names); alt != "" {
			return usageError{fmt.Errorf("%s: unknown flag --%s; did you mean --%s?", cmd.Name(), m[1], alt)}
		}
		return usageError{fmt.Errorf("%s: unknown flag --%s", cmd.Name(), m[1])}
	}
	if cmd == cmd.Root() {
		return usageError{err} // "upkeep: " is said once
	}
	return usageError{fmt.Errorf("%s: %s", cmd.Name(), msg)}
}

// expected says what a flag's value must be, by its type.
func expected(f *pflag.Flag) string {
	switch t := f.Value.Type(); t {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "not a number"
	case "float32", "float64":
		return "not a number"
	case "duration":
		return `not a duration such as "500ms", "5s" or "1m"`
	case "bool":
		return "not true or false"
	default:
		return "not a valid " + t
	}
}

// subcommandError is the error of a command that only holds subcommands,
// called without one (or with one it does not have).
func subcommandError(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	want := strings.Join(names, " or ")
	if len(args) == 0 {
		return usageError{fmt.Errorf("%s: want a subcommand: %s", cmd.Name(), want)}
	}
	if s := suggestCommand(cmd, args[0]); s != "" {
		return usageError{fmt.Errorf("%s: unknown command %q; did you mean %q?", cmd.Name(), args[0], s)}
	}
	return usageError{fmt.Errorf("%s: unknown command %q (want %s)", cmd.Name(), args[0], want)}
}

// suggestCommand is the subcommand of parent nearest to word: within two
// edits (the rule keys and service names follow), else one it prefixes
// (cobra's own suggestion).
func suggestCommand(parent *cobra.Command, word string) string {
	var names []string
	for _, c := range parent.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
			names = append(names, c.Aliases...)
		}
	}
	if s := spec.Suggest(word, names); s != "" {
		return s
	}
	if s := parent.SuggestionsFor(word); len(s) > 0 {
		return s[0]
	}
	return ""
}
