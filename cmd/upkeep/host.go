package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/boot"
	"upkeep/internal/control"
	"upkeep/internal/host"
	"upkeep/internal/spec"
)

// The host's commands: layout (provision, doctor), images, releases
// (deploy, rollback, releases), the overlay and remove. internal/host does
// the work; these only read flags.

func (g *globals) host() (*host.Host, error) {
	return host.New(g.root, g.home, os.Stdout)
}

func provisionCommand(g *globals) *cobra.Command {
	var dryRun, force bool
	var bootInit string
	var dbs []string
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Create the host's layout (var/www, var/log, var/db, ~/service ~/log ~/db ~/image ~/script) and keep the symlinks in sync",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := createRoot(g.root, dryRun); err != nil {
				return err
			}
			h, err := g.changingHost(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			var init boot.Init
			if cmd.Flags().Changed("boot") {
				if init, err = boot.ParseInit(bootInit); err != nil {
					return usageError{err}
				}
			}
			if err := provisionDBs(h, dbs, dryRun); err != nil {
				return err
			}
			res, err := h.Provision(dryRun)
			if err != nil {
				return err
			}
			res.Format(os.Stdout, os.Stderr, dryRun)
			if init != "" {
				bin, err := selfPath()
				if err != nil {
					return err
				}
				if err := h.InstallBoot(host.BootOptions{Init: init, Binary: bin, Force: force, DryRun: dryRun}, os.Stdout); err != nil {
					return err
				}
			}
			if n := len(res.Skipped) + len(res.Left); n > 0 {
				return fmt.Errorf("%d problem(s) left; see upkeep doctor", n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be done (user creation included, and the boot file) and change nothing")
	cmd.Flags().StringVar(&bootInit, "boot", "", "install what starts upkeep daemon at boot: auto (detect the init), systemd, sysv, openrc or none")
	cmd.Flags().Lookup("boot").NoOptDefVal = string(boot.Auto)
	cmd.Flags().BoolVar(&force, "force", false, "with --boot: replace a boot file that was changed by hand")
	cmd.Flags().StringArrayVar(&dbs, "db", nil, "NAME=PATH: make var/db/NAME a symlink to PATH, a separate mount (repeatable)")
	return cmd
}

func doctorCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Report how the host differs from its layout, with the command that fixes each difference",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.host()
			if err != nil {
				return err
			}
			fs, err := h.Check()
			if err != nil {
				return err
			}
			if bin, err := selfPath(); err == nil {
				bootFs, warn, err := h.CheckBoot(bin)
				if err != nil {
					return err
				}
				fs = append(fs, bootFs...)
				if warn != "" {
					fmt.Printf("warning: %s\n", warn)
				}
			}
			for _, f := range fs {
				fmt.Printf("%s\n  fix: %s\n", f, f.Fix)
			}
			// The policy's warnings are not problems: doctor still exits 0.
			warns, err := h.PolicyWarnings()
			if err != nil {
				return err
			}
			for _, w := range warns {
				fmt.Printf("warning: %s\n", w)
			}
			if len(fs) > 0 {
				return fmt.Errorf("%d problem(s); upkeep provision fixes the layout's own", len(fs))
			}
			fmt.Println("ok: the host matches its layout")
			return nil
		},
	}
}

func imageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage service images in ~/image",
		// Runnable, so that `image` alone or `image foo` is a usage
		// error (exit 2) rather than cobra's help and exit 0.
		RunE: func(cmd *cobra.Command, args []string) error { return subcommandError(cmd, args) },
	}
	var o host.AddOptions
	var maxSize string
	add := &cobra.Command{
		Use:   "add FILE|DIR",
		Short: "Check an image (.tar.gz, .tar or a directory holding service.toml) and store it as ~/image/<name>-<version>.tar.gz",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("image add: want one FILE or DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxSize != "" {
				n, err := spec.ParseSize(maxSize)
				if err != nil || n < 1 {
					return usageError{fmt.Errorf("--max-size: want a size like \"4G\", got %q", maxSize)}
				}
				o.MaxSize = int64(n)
			}
			h, err := g.host()
			if err != nil {
				return err
			}
			_, err = h.AddImage(args[0], o)
			return err
		},
	}
	add.Flags().StringVar(&o.Name, "name", "", "the service's name, when neither service.toml nor the file name says")
	add.Flags().StringVar(&o.Version, "version", "", "the version, when neither service.toml nor the file name says")
	add.Flags().BoolVar(&o.Force, "force", false, "replace a stored image of the same name and version")
	add.Flags().BoolVar(&o.AllowSetuid, "allow-setuid", false, "accept files with the setuid or setgid bit")
	add.Flags().StringVar(&o.SHA256, "sha256", "", "refuse the image unless its file has this sha256 (hex)")
	add.Flags().StringVar(&o.Sig, "sig", "", "its minisign signature, checked against the keys of etc/upkeep/policy.toml (default: FILE.minisig when there is one)")
	add.Flags().StringVar(&maxSize, "max-size", "", "refuse an image larger than this unpacked (default: image_max_size of etc/upkeep/upkeep.toml, 4G)")
	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List the stored images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args); err != nil {
				return err
			}
			h, err := g.host()
			if err != nil {
				return err
			}
			imgs, err := h.Images(strings.Join(args, ""))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tENTRIES\tUNPACKED\tSHA256\tADDED\tSIGNED")
			for _, i := range imgs {
				key := "-" // not verified when added
				if i.Verified {
					key = i.KeyID
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.12s\t%s\t%s\n", i.Name, i.Version, i.Files, i.Unpacked, i.SHA256, i.Added.Format(time.RFC3339), key)
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}

// nameVersion splits NAME[@VERSION].
func nameVersion(arg string) (string, string, error) {
	name, version, _ := strings.Cut(arg, "@")
	if err := spec.CheckName(name); err != nil {
		return "", "", usageError{err}
	}
	if version != "" {
		if err := host.CheckVersion(version); err != nil {
			return "", "", usageError{err}
		}
	}
	return name, version, nil
}

func deployFlags(cmd *cobra.Command, o *host.DeployOptions) {
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace files in the overlay's way and a manual directory in var/www")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", host.DefaultTimeout, "how long the service has to come up (running, and its checks passing)")
}

func deployCommand(g *globals) *cobra.Command {
	var o host.DeployOptions
	var dryRun, withTest bool
	cmd := &cobra.Command{
		Use:   "deploy NAME[@VERSION]",
		Short: "Unpack an image into a release, lay its overlay, switch var/www/NAME, restart, and roll back if it does not come up",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("deploy: want NAME[@VERSION]")}
			}
			return nil // nameVersion checks the name
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := nameVersion(args[0])
			if err != nil {
				return err
			}
			h, err := g.changingHost(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			if dryRun {
				return h.DeployDryRun(os.Stdout, name, version, o)
			}
			if withTest {
				if err := deployTest(cmd.Context(), g, name, version); err != nil {
					return err
				}
			}
			h.Progress = os.Stderr // state changes and check failures while it waits
			_, err = h.Deploy(cmd.Context(), control.NewClient(g.sock()), name, version, o)
			return err
		},
	}
	deployFlags(cmd, &o)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what deploy would do (the image is read and checked, the overlay planned) and change nothing; exit 1 where deploy would stop")
	cmd.Flags().BoolVar(&withTest, "test", false, "first run the new release in a sandbox (upkeep test NAME@VERSION); a failing test leaves the current release untouched")
	cmd.Flags().IntVar(&o.Keep, "keep", 0, "releases to keep (default: keep_releases of service.toml, then of etc/upkeep/upkeep.toml, 5)")
	cmd.Flags().BoolVar(&o.AllowSetuid, "allow-setuid", false, "accept files with the setuid or setgid bit")
	return cmd
}

// exactName accepts exactly one argument that is a safe service name.
func exactName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s: want one service name", cmd.Name())}
	}
	return checkNames(args)
}

func rollbackCommand(g *globals) *cobra.Command {
	var o host.DeployOptions
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Go back to the release deployed before the current one, with its overlay, and restart",
		Args:  exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.changingHost(cmd.Context(), false)
			if err != nil {
				return err
			}
			h.Progress = os.Stderr
			_, err = h.Rollback(cmd.Context(), control.NewClient(g.sock()), args[0], o)
			return err
		},
	}
	deployFlags(cmd, &o)
	return cmd
}

func releasesCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "releases NAME",
		Short: "List a service's releases in the order they were deployed (* marks the current one)",
		Args:  exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.host()
			if err != nil {
				return err
			}
			rs, err := h.Releases(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if rs == nil {
					rs = []host.ReleaseInfo{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rs)
			}
			if len(rs) == 0 {
				return fmt.Errorf("%s has no releases", args[0])
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "\tVERSION\tDEPLOYED\tSTATUS\tSHA256")
			for _, r := range rs {
				mark, when, status := " ", "-", r.Status
				if r.Current {
					mark = "*"
				}
				if !r.Deployed.IsZero() {
					when = r.Deployed.Local().Format("2006-01-02 15:04:05")
				}
				if r.Missing {
					status += " (directory gone)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.12s\n", mark, r.Version, when, status, r.SHA256)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func overlayCommand(g *globals) *cobra.Command {
	var dryRun, force bool
	cmd := &cobra.Command{
		Use:   "overlay NAME",
		Short: "Lay var/www/NAME/config/ onto the root (symlinks; copies for service.toml's copy list); --dry-run prints the plan",
		Args:  exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.changingHost(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			_, err = h.Overlay(args[0], dryRun, force, os.Stdout)
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing (exit 1 on conflicts)")
	cmd.Flags().BoolVar(&force, "force", false, "replace files and symlinks in the way")
	return cmd
}

func removeCommand(g *globals) *cobra.Command {
	var o host.RemoveOptions
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop a service and remove its overlay, var/www/NAME, releases and symlinks (data and logs stay unless --purge)",
		Args:  exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.changingHost(cmd.Context(), false)
			if err != nil {
				return err
			}
			return h.Remove(cmd.Context(), control.NewClient(g.sock()), args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "also remove var/db/NAME and the service's logs")
	cmd.Flags().BoolVar(&o.Force, "force", false, "also remove a var/www/NAME directory that upkeep did not deploy")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", host.DefaultTimeout, "how long the service has to stop")
	return cmd
}

// selfPath is this binary's real path, for the boot file's ExecStart.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		return "", fmt.Errorf("the upkeep binary's path: %w", err)
	}
	return p, nil
}

// provisionDBs lays the var/db symlinks that --db NAME=PATH asks for.
func provisionDBs(h *host.Host, dbs []string, dryRun bool) error {
	for _, a := range dbs {
		name, target, ok := strings.Cut(a, "=")
		if !ok || name == "" || target == "" {
			return usageError{fmt.Errorf("--db %s: want NAME=PATH", a)}
		}
		if err := h.LinkDB(name, target, dryRun); err != nil {
			return err
		}
	}
	return nil
}
