package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"

	"upkeep/internal/boot"
	"upkeep/internal/spec"
)

// BootOptions say what provision --boot installs.
type BootOptions struct {
	Init   boot.Init // boot.Auto: detected from the root
	Binary string    // the upkeep binary the boot file starts (its real path)
	Force  bool      // replace a boot file an operator changed
	DryRun bool      // print the file and the links; change nothing
}

// ErrBootChanged is returned when the boot file on the host was edited
// by hand (its checksum line does not match) and Force was not given.
var ErrBootChanged = errors.New("changed by hand (its upkeep-checksum line no longer matches); --force replaces it")

// BootFile renders the boot file this host needs for init (Auto: the
// detected one), with the stop budget of its services: the longest chain
// of stop timeouts plus boot.StopMargin.
func (h *Host) BootFile(init boot.Init, binary string) (*boot.File, boot.Init, error) {
	if init == boot.Auto || init == "" {
		init = boot.Detect(h.Root)
	}
	if init == boot.None {
		return nil, init, nil
	}
	svcs, err := spec.LoadHost(h.Root)
	if err != nil {
		return nil, init, err
	}
	f, err := boot.Render(init, boot.Options{Binary: binary, Root: h.Root, StopTimeout: boot.LongestChain(svcs.Services) + boot.StopMargin})
	return f, init, err
}

// InstallBoot writes the file that starts `upkeep daemon` at boot and
// enables it, as systemctl enable / update-rc.d / rc-update would, with
// symlinks beneath the root (no init is asked when the root is not /).
// The write is atomic; an unchanged file is left alone, an outdated one
// of ours replaced, and one an operator edited only with Force.
func (h *Host) InstallBoot(o BootOptions, out io.Writer) error {
	f, init, err := h.BootFile(o.Init, o.Binary)
	if err != nil {
		return err
	}
	if f == nil {
		fmt.Fprintln(out, "boot: none; nothing starts upkeep daemon at boot")
		return nil
	}
	old, err := h.readBoot(f.Path)
	if err != nil {
		return err
	}
	same := bytes.Equal(old, f.Data)
	if old != nil && !same && !boot.Sealed(old) && !o.Force {
		return fmt.Errorf("%s: %w", h.Path(f.Path), ErrBootChanged)
	}
	if o.DryRun {
		if same {
			fmt.Fprintf(out, "# %s (%s) is up to date:\n", h.Path(f.Path), init)
		} else {
			fmt.Fprintf(out, "# would write %s (%s, mode %04o):\n", h.Path(f.Path), init, f.Mode)
		}
		out.Write(f.Data)
		for _, l := range f.Enable {
			fmt.Fprintf(out, "# would link %s -> %s\n", h.Path(l.Path), l.Target)
		}
		return nil
	}
	if !same {
		if _, err := h.root.MkdirAll(path.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("boot file: %w", err)
		}
		if _, err := h.root.WriteFile(f.Path, bytes.NewReader(f.Data), os.FileMode(f.Mode)); err != nil {
			return fmt.Errorf("boot file: %w", err)
		}
		if err := h.root.Chmod(f.Path, os.FileMode(f.Mode)); err != nil {
			return fmt.Errorf("boot file: %w", err)
		}
		fmt.Fprintf(out, "wrote %s (%s)\n", h.Path(f.Path), init)
	}
	if h.Root == "/" && enableOnHost(init) {
		return nil
	}
	for _, l := range f.Enable {
		if got, err := h.root.Readlink(l.Path); err == nil && got == l.Target {
			continue
		}
		if _, err := h.root.MkdirAll(path.Dir(l.Path), 0o755); err != nil {
			return fmt.Errorf("enable: %w", err)
		}
		if err := h.root.Symlink(l.Target, l.Path); err != nil {
			return fmt.Errorf("enable: %w", err)
		}
		fmt.Fprintf(out, "linked %s -> %s\n", h.Path(l.Path), l.Target)
	}
	return nil
}

// enableOnHost enables the boot file with the init's own tool on a real
// host, where it knows more than our links (insserv orders sysvinit
// scripts by their LSB headers; systemd must re-read its units). It
// reports false when the tool is not there, and the links are made.
func enableOnHost(init boot.Init) bool {
	var cmds [][]string
	switch init {
	case boot.Systemd:
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return false // not booted with systemd: links only
		}
		cmds = [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "upkeep.service"}}
	case boot.SysV:
		cmds = [][]string{{"update-rc.d", "upkeep", "defaults"}}
	case boot.OpenRC:
		cmds = [][]string{{"rc-update", "add", "upkeep", "default"}}
	}
	if _, err := exec.LookPath(cmds[0][0]); err != nil {
		return false
	}
	for _, c := range cmds {
		if runCommand(c) != nil {
			return false
		}
	}
	return true
}

func (h *Host) readBoot(rel string) ([]byte, error) {
	f, err := h.root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("boot file: %w", err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// CheckBoot is doctor's view of the boot file: problems (a file that is
// outdated or edited by hand, not enabled) and, when there is none at all,
// a warning — a host may well be started some other way.
func (h *Host) CheckBoot(binary string) (problems []Finding, warning string, err error) {
	f, init, err := h.BootFile(boot.Auto, binary)
	if err != nil || f == nil {
		return nil, "", err
	}
	p := h.Path(f.Path)
	old, err := h.readBoot(f.Path)
	switch {
	case err != nil:
		return nil, "", err
	case old == nil:
		return nil, fmt.Sprintf("%s: no boot file: nothing starts upkeep daemon at boot (%s detected); upkeep provision --boot installs one", p, init), nil
	case !bytes.Equal(old, f.Data) && boot.Sealed(old):
		problems = append(problems, Finding{Path: p, What: "outdated boot file (the binary's path or the services' stop timeouts changed)", Fix: "upkeep provision --boot"})
	case !bytes.Equal(old, f.Data):
		problems = append(problems, Finding{Path: p, What: "boot file changed by hand: it is not what upkeep would write", Fix: "upkeep provision --boot --dry-run  # to compare; --force replaces it"})
	}
	// update-rc.d names its links by insserv's order, not ours.
	if h.Root != "/" || init != boot.SysV {
		for _, l := range f.Enable {
			if got, err := h.root.Readlink(l.Path); err != nil || got != l.Target {
				problems = append(problems, Finding{Path: h.Path(l.Path), What: "boot file not enabled (want a symlink -> " + l.Target + ")", Fix: "upkeep provision --boot"})
				break
			}
		}
	}
	return problems, "", nil
}
