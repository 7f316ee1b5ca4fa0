package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// DeployDryRun writes what Deploy would do with the same arguments to w,
// step by step, and writes nothing to the host: no lock, no staging
// directory. The stored image is read and checked like deploy checks it
// (hostile entries, size limit, its recorded sha256), but not unpacked:
// the overlay is planned from the list of its config/ entries. It returns
// the error deploy would stop with (conflicts, a missing data mount, ...).
// The daemon is not asked anything: what it would be told depends on what
// it knows of the service then.
func (h *Host) DeployDryRun(w io.Writer, name, version string, o DeployOptions) error {
	cfg, err := h.Config()
	if err != nil {
		return err
	}
	warn, err := cfg.CheckName(name)
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	img, err := h.FindImage(name, version)
	if err != nil {
		return err
	}
	if err := h.checkImagePolicy(img, o); err != nil {
		return err
	}
	hs, err := h.history(name)
	if err != nil {
		return err
	}
	before := h.current(name)
	if before.Kind == "other" && !o.Force {
		return fmt.Errorf("%s", before.Problems)
	}
	if before.Kind == "manual" && !o.Force {
		return fmt.Errorf("%s is a directory (a manual install?); deploy replaces it with a symlink to a release only with --force, and then keeps it as a release of its own", h.Path(serviceRel(name)))
	}
	fmt.Fprintf(w, "deploy of %s %s (dry run: nothing is written)\n", name, img.Version)
	step := func(what, format string, args ...any) {
		fmt.Fprintf(w, "  %-8s %s\n", what, fmt.Sprintf(format, args...))
	}

	// The release.
	relRel := releaseRel(name, img.Version)
	var tree configTree
	var toml []byte
	if i := hs.find(img.Version); i >= 0 && hs.Releases[i].SHA256 == img.SHA256 && h.exists(relRel) {
		step("release", "%s holds this image already: reused, not unpacked", h.Path(relRel))
		if toml, err = os.ReadFile(filepath.Join(h.Path(relRel), spec.FileName)); err != nil {
			return err
		}
		tree = diskConfig(filepath.Join(h.Path(relRel), "config"))
	} else {
		if before.Version == img.Version && before.Kind == "release" {
			return fmt.Errorf("%s %s is deployed from another image; give the new image its own version", name, img.Version)
		}
		c, list, err := h.listImage(img, o)
		if err != nil {
			return err
		}
		step("image", "%s: checked, sha256 %.12s as recorded (%s, %s)", h.HomePath(filepath.Join(homeImage, img.File)), img.SHA256, plural(c.Files, "entry", "entries"), humanBytes(c.Bytes))
		replace := ""
		if h.exists(relRel) {
			replace = ", replacing the directory there"
		}
		step("unpack", "into %s (through a staging directory beside it, then syncfs%s)", h.Path(relRel), replace)
		toml, tree = c.TOML, list.config(c.Top)
	}
	svc, err := h.parseTOML(name, img.Version, toml)
	if err != nil {
		return err
	}
	if svc.DBMount {
		if err := h.checkDataMount(name); err != nil {
			step("stop", "db_mount = true, and %s is not on a mount of its own: the deploy stops here, nothing is switched", h.Path(dbRel(name)))
			return err
		}
		step("data", "%s is on a mount of its own (db_mount = true)", h.Path(dbRel(name)))
	}

	// The overlay, planned as deploy plans it (with the host's claims as
	// they are now).
	plan, err := h.planOverlay(name, img.Version, tree, svc.Copy)
	if err != nil {
		return err
	}
	h.Format(w, plan)
	if err := checkConflicts(plan, o.Force); err != nil {
		step("stop", "the conflicts above stop the deploy here: nothing is switched, the new release is discarded")
		return err
	}

	// The switch.
	sw, target := h.Path(serviceRel(name)), paths.ReleaseLink(name, img.Version)
	switch before.Kind {
	case "none":
		step("switch", "%s -> %s: a new symlink renamed into place", sw, target)
	case "manual":
		step("switch", "%s: the directory is exchanged for a symlink to %s (renameat2 RENAME_EXCHANGE) and kept as the release manual-<UTC time>", sw, target)
	case "other":
		step("switch", "%s: %s; replaced by a symlink to %s (--force)", sw, before.Problems, target)
	default:
		step("switch", "%s: %s -> %s, a new symlink renamed over the old one (one rename)", sw, describe(before), img.Version)
	}
	h.checkService(name, map[string]bool{}, -1, -1, func(f Finding) {
		if f.fix != nil && !f.root { // what SyncService does
			step("layout", "%s", f.Fix)
		}
	})
	step("history", "%s: %s appended, pending", h.Path(historyRel(name)), img.Version)

	// The daemon, and what follows from its answer.
	checks := ""
	if svc.HasChecks() {
		checks = " and its checks passing"
	}
	switch old, err := os.ReadFile(filepath.Join(sw, spec.FileName)); {
	case before.Kind == "none" || err != nil:
		step("daemon", "reload (it adds %s), then start %s", name, name)
	case !bytes.Equal(old, toml):
		step("daemon", "reload (its service.toml changed: the daemon restarts it with the new one), then start %s", name)
	default:
		step("daemon", "reload, then restart %s (same service.toml, new files)", name)
	}
	step("wait", "up to %v for %s %s to come up (running%s); with no daemon running, the switch stays and it starts when the daemon does", o.Timeout, name, img.Version, checks)
	switch {
	case before.Kind == "release" && before.Version != img.Version:
		step("rollback", "if it does not come up: back to %s, with its overlay, restarted; deploy exits 1", before.Version)
	case before.Kind == "manual":
		step("rollback", "if it does not come up: back to the directory that was there (release manual-<UTC time>); deploy exits 1")
	default:
		step("rollback", "if it does not come up: nothing earlier to roll back to; deploy exits 1")
	}
	keep := h.keep(o.Keep, svc, cfg)
	sim := &History{Service: name, Releases: slices.Clone(hs.Releases)}
	sim.push(Release{Version: img.Version})
	var gone []string
	for i, r := range sim.Releases {
		if i < len(sim.Releases)-keep && r.Version != img.Version && h.exists(releaseRel(name, r.Version)) {
			gone = append(gone, h.Path(releaseRel(name, r.Version)))
		}
	}
	entries, _ := os.ReadDir(h.Path(releasesRel(name)))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".staging-") {
			gone = append(gone, filepath.Join(h.Path(releasesRel(name)), e.Name())+" (stale)")
		}
	}
	what := "nothing to remove"
	if len(gone) > 0 {
		what = "remove " + strings.Join(gone, ", ")
	}
	step("prune", "once it is up, keep the newest %s: %s", plural(keep, "release", "releases"), what)
	return nil
}

// listImage reads a stored image as deploy would unpack it, with every
// check and its recorded sha256, and lists what may be its config/
// instead of writing anything.
func (h *Host) listImage(img *Image, o DeployOptions) (*content, *listSink, error) {
	lim, err := h.limits(o.MaxSize, o.AllowSetuid)
	if err != nil {
		return nil, nil, err
	}
	f, err := h.home.Open(filepath.Join(homeImage, img.File))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sum := sha256.New()
	list := newListSink()
	c, err := readImage(teeReader{f, sum}, lim, list)
	if err != nil {
		return nil, nil, fmt.Errorf("unpack %s: %w", f.Name(), err)
	}
	if _, err := copyAll(sum, f); err != nil {
		return nil, nil, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != img.SHA256 {
		return nil, nil, fmt.Errorf("%s does not match its recorded sha256 (%.12s, now %.12s): it changed since image add", f.Name(), img.SHA256, got)
	}
	return c, list, nil
}
