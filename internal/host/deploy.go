package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Daemon is what deploy, rollback and remove ask of the running daemon:
// *control.Client.
type Daemon interface {
	Reload(ctx context.Context) (api.ReloadResult, error)
	Start(ctx context.Context, names []string, o control.ActOptions) error
	Stop(ctx context.Context, names []string, o control.ActOptions) error
	Restart(ctx context.Context, names []string, o control.ActOptions) error
}

// DeployOptions tune deploy and rollback.
type DeployOptions struct {
	Force       bool          // replace conflicting files, a manual directory
	Timeout     time.Duration // for the service to come up
	Keep        int           // releases to keep; 0: service.toml's keep_releases, then the host's
	AllowSetuid bool
	MaxSize     int64
}

// DefaultTimeout is how long deploy waits for a service to come up.
const DefaultTimeout = 60 * time.Second

// RolledBackError is a deploy that failed and was rolled back: the
// previous release runs again (Up), or was put back but did not come up.
type RolledBackError struct {
	Name, Failed, Back string
	Cause              error
	Up                 bool
	BackErr            error
}

func (e *RolledBackError) Error() string {
	if e.Up {
		return fmt.Sprintf("deploy of %s %s failed (%v); rolled back to %s", e.Name, e.Failed, e.Cause, e.Back)
	}
	return fmt.Sprintf("deploy of %s %s failed (%v); rolled back to %s, which did not come up either: %v", e.Name, e.Failed, e.Cause, e.Back, e.BackErr)
}

func (e *RolledBackError) Unwrap() error { return e.Cause }

// Timing is where a deploy's time went, for the benchmarks.
type Timing struct {
	Unpack, Overlay, Switch, Total time.Duration
	Sync                           time.Duration // part of Unpack: syncfs(2) of the release
	Bytes                          int64
	Files                          int
}

// Deploy unpacks the image of name at version (the newest when "") into a
// release, lays its overlay, switches var/www/<name> to it, and has the
// daemon restart (or start) it and wait until it is up; if it does not come
// up, the previous release and its overlay come back.
func (h *Host) Deploy(ctx context.Context, d Daemon, name, version string, o DeployOptions) (*Timing, error) {
	t0 := time.Now()
	tm := &Timing{}
	cfg, err := h.Config()
	if err != nil {
		return nil, err
	}
	warn, err := cfg.CheckName(name)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		h.say("warning: %s", warn)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	img, err := h.FindImage(name, version)
	if err != nil {
		return nil, err
	}
	if err := h.checkImagePolicy(img, o); err != nil {
		return nil, err
	}
	unlock, err := h.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	hs, err := h.history(name)
	if err != nil {
		return nil, err
	}
	if _, err := h.recoverLocked(ctx, d, name); err != nil {
		return nil, err
	}
	before := h.current(name)
	if before.Kind == "other" && !o.Force {
		return nil, fmt.Errorf("%s", before.Problems)
	}
	if before.Kind == "manual" && !o.Force {
		return nil, fmt.Errorf("%s is a directory (a manual install?); deploy replaces it with a symlink to a release only with --force, and then keeps it as a release of its own", h.Path(serviceRel(name)))
	}
	j, err := h.beginJournal("deploy", name, before, img.Version, hs)
	if err != nil {
		return nil, err
	}
	defer h.endJournal(j)

	// The release: reuse it when it holds this very image, else unpack.
	relRel := releaseRel(name, img.Version)
	fresh := false
	if i := hs.find(img.Version); i >= 0 && hs.Releases[i].SHA256 == img.SHA256 && h.exists(relRel) {
		h.say("release %s %s is already unpacked", name, img.Version)
	} else {
		if before.Version == img.Version && before.Kind == "release" {
			return nil, fmt.Errorf("%s %s is deployed from another image; give the new image its own version", name, img.Version)
		}
		j.Fresh = true
		if err := h.step(j, "unpack", undo); err != nil {
			return nil, err
		}
		t := time.Now()
		synced, err := h.unpackRelease(img, o)
		if err != nil {
			return nil, err
		}
		crashAt("deploy-unpacked")
		tm.Unpack, tm.Sync = time.Since(t), synced
		tm.Bytes, tm.Files = img.Unpacked, img.Files
		fresh = true
	}
	discard := func() {
		if fresh {
			_ = h.removeRelease(name, img.Version)
		}
	}
	svc, err := h.parseRelease(name, img.Version)
	if err == nil {
		// The release on disk too: what the record judged is what was unpacked.
		err = h.checkReleasePolicy(name, img.Version, h.Path(relRel), svc)
	}
	if err == nil && svc.DBMount {
		err = h.checkDataMount(name)
	}
	if err != nil {
		discard()
		return nil, err
	}

	// Overlay and switch, under the host lock: the overlay's claims span
	// services.
	hostUnlock, err := h.lock("host")
	if err != nil {
		discard()
		return nil, err
	}
	t := time.Now()
	plan, err := h.PlanOverlay(name, img.Version, h.Path(relRel), svc.Copy)
	if err == nil {
		err = checkConflicts(plan, o.Force)
	}
	if err != nil {
		hostUnlock()
		discard()
		return nil, err
	}
	if j.plan(h, plan); undoable(before) {
		err = h.step(j, "switch", undo)
	} else {
		err = h.step(j, "switch", redo)
	}
	ts := time.Now()
	if err == nil {
		err = h.switchTo(name, img.Version, o.Force, hs)
	}
	if err != nil {
		hostUnlock()
		discard()
		return nil, err
	}
	crashAt("deploy-switched")
	tm.Switch = time.Since(ts)
	h.say("switched %s: %s -> %s", h.Path(serviceRel(name)), describe(before), img.Version)
	if err := h.ApplyOverlay(plan, o.Force); err != nil {
		hostUnlock()
		if before.Kind == "release" {
			h.say("overlay failed: %v; switching back to %s", err, before.Version)
			if rerr := h.activate(name, before.Version, true, hs); rerr != nil {
				return nil, fmt.Errorf("overlay of %s: %w; and switching back failed: %v", name, err, rerr)
			}
		}
		return nil, fmt.Errorf("overlay of %s: %w", name, err)
	}
	tm.Overlay = time.Since(t) - tm.Switch
	crashAt("deploy-overlaid")
	hostUnlock()
	hs.push(Release{Version: img.Version, SHA256: img.SHA256, Deployed: time.Now().UTC().Truncate(time.Second), Status: "pending"})
	if err := h.SyncService(name); err != nil {
		h.say("warning: %v", err)
	}
	if err := h.saveHistory(hs); err != nil {
		return nil, err
	}
	tm.Total = time.Since(t0)
	h.say("switched in %v: unpack %v (syncfs %v), overlay %v, the switch (one rename) %v", round(tm.Total), round(tm.Unpack), round(tm.Sync), round(tm.Overlay), tm.Switch.Round(time.Microsecond))

	// The daemon: tell it, (re)start, wait. From here the new release is
	// the one to keep: the daemon may be running it.
	crashAt("deploy-before-restart")
	if err := h.step(j, "restart", redo); err != nil {
		return nil, err
	}
	err = h.startAndWait(ctx, d, name, o.Timeout)
	crashAt("deploy-after-restart")
	_ = h.step(j, "finish", redo) // if it fails, recovery asks for one restart too many
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		h.say("%v: the switch is done; %s %s starts when the daemon does", err, name, img.Version)
		hs.setStatus(img.Version, "unknown")
	case err != nil:
		hs.setStatus(img.Version, "failed")
		h.say("%s %s did not come up: %v", name, img.Version, err)
		if (before.Kind != "release" && before.Kind != "manual") || before.Version == img.Version {
			_ = h.saveHistory(hs)
			return tm, fmt.Errorf("deploy of %s %s failed, and there is no earlier release to roll back to: %w", name, img.Version, err)
		}
		prev := before.Version
		if before.Kind == "manual" {
			prev = hs.Releases[0].Version
		}
		j.To = prev // a crash in the rollback finishes it: the failed release stays failed
		_ = h.saveHistory(hs)
		if rerr := h.step(j, "rollback", redo); rerr != nil {
			return tm, rerr
		}
		crashAt("deploy-rolling-back")
		if rerr := h.activate(name, prev, o.Force, hs); rerr != nil {
			_ = h.saveHistory(hs)
			return tm, fmt.Errorf("deploy of %s %s failed (%v), and rolling back to %s failed: %w", name, img.Version, err, prev, rerr)
		}
		h.say("rolled back %s: %s -> %s", h.Path(serviceRel(name)), img.Version, prev)
		_ = h.saveHistory(hs)
		rb := &RolledBackError{Name: name, Failed: img.Version, Back: prev, Cause: err}
		if rerr := h.startAndWait(ctx, d, name, o.Timeout); rerr != nil {
			rb.BackErr = rerr
			return tm, rb
		}
		h.say("%s %s is up again", name, prev)
		rb.Up = true
		return tm, rb
	default:
		hs.setStatus(img.Version, "ok")
		h.say("%s %s is up", name, img.Version)
	}
	h.prune(name, h.keep(o.Keep, svc, cfg), hs)
	return tm, h.saveHistory(hs)
}

func describe(c Current) string {
	switch c.Kind {
	case "release", "dangling":
		return c.Version
	case "manual":
		return "a directory"
	}
	return "nothing"
}

func (h *Host) keep(flag int, svc *spec.Service, cfg *Config) int {
	switch {
	case flag > 0:
		return flag
	case svc != nil && svc.KeepReleases > 0:
		return svc.KeepReleases
	}
	return cfg.KeepReleases
}

func (h *Host) exists(rel string) bool {
	_, err := h.root.Lstat(rel)
	return err == nil
}

func checkConflicts(p *Plan, force bool) error {
	var stop []Op
	for _, op := range p.Conflicts() {
		if op.Hard || !force {
			stop = append(stop, op)
		}
	}
	if len(stop) > 0 {
		return &ConflictError{Service: p.Service, Ops: stop, Forced: force}
	}
	return nil
}

// unpackRelease unpacks a stored image into var/www/.releases/<name>/<version>,
// checking the archive against its recorded sha256 as it goes, and writes
// it to disk. It returns how long that last step took.
func (h *Host) unpackRelease(img *Image, o DeployOptions) (time.Duration, error) {
	lim, err := h.limits(o.MaxSize, o.AllowSetuid)
	if err != nil {
		return 0, err
	}
	parent := releasesRel(img.Name)
	if _, err := h.root.MkdirAll(parent, 0o755); err != nil {
		return 0, err
	}
	f, err := h.home.Open(filepath.Join(homeImage, img.File))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sum := sha256.New()
	tee := teeReader{f, sum}
	u, err := h.unpack(tee, lim, h.Path(parent))
	if err != nil {
		return 0, fmt.Errorf("unpack %s: %w", f.Name(), err)
	}
	defer removeAll(u.Staging)
	if _, err := copyAll(sum, f); err != nil {
		return 0, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != img.SHA256 {
		return 0, fmt.Errorf("%s does not match its recorded sha256 (%.12s, now %.12s): it changed since image add", f.Name(), img.SHA256, got)
	}
	// The release must be on disk before var/www/<name> points to it: after
	// a crash, a switch the journal kept would otherwise lead to files that
	// delayed allocation never wrote (ext4 writes data on rename only for
	// files renamed over others). One syncfs(2) instead of an fsync a file.
	ts := time.Now()
	if err := syncFS(u.Staging); err != nil {
		return 0, fmt.Errorf("sync %s: %w", u.Staging, err)
	}
	synced := time.Since(ts)
	if err := os.Chmod(u.Dir, 0o755); err != nil {
		return 0, err
	}
	rel := releaseRel(img.Name, img.Version)
	if err := h.removeRelease(img.Name, img.Version); err != nil {
		return 0, err
	}
	from, _ := filepath.Rel(h.Root, u.Dir)
	if err := h.root.Rename(filepath.ToSlash(from), rel); err != nil {
		return 0, err
	}
	h.say("unpacked %s %s into %s (%s, %s)", img.Name, img.Version, h.Path(rel), plural(u.Files, "entry", "entries"), humanBytes(u.Bytes))
	return synced, nil
}

// parseRelease reads the release's service.toml as it will be seen once
// deployed (var/www/<name>/service.toml).
func (h *Host) parseRelease(name, version string) (*spec.Service, error) {
	data, err := os.ReadFile(filepath.Join(h.Path(releaseRel(name, version)), spec.FileName))
	if err != nil {
		return nil, err
	}
	return h.parseTOML(name, version, data)
}

func (h *Host) parseTOML(name, version string, data []byte) (*spec.Service, error) {
	s, ps := spec.Parse(h.Root, h.Path(serviceRel(name)), data)
	if len(ps.Errors()) > 0 {
		return nil, fmt.Errorf("the service.toml of %s %s is not valid: %s", name, version, oneLine(ps.Errors().Error()))
	}
	return s, nil
}

// activate makes version the current release again: its overlay, the
// switch, the operator's links. Rollback uses it.
func (h *Host) activate(name, version string, force bool, hs *History) error {
	hostUnlock, err := h.lock("host")
	if err != nil {
		return err
	}
	defer hostUnlock()
	var copies []string
	svc, err := h.parseRelease(name, version)
	if err == nil {
		copies = svc.Copy
	} else if _, serr := os.Stat(filepath.Join(h.Path(releaseRel(name, version)), spec.FileName)); serr == nil {
		return err
	}
	if err := h.checkReleasePolicy(name, version, h.Path(releaseRel(name, version)), svc); err != nil {
		return err
	}
	plan, err := h.PlanOverlay(name, version, h.Path(releaseRel(name, version)), copies)
	if err != nil {
		return err
	}
	if err := checkConflicts(plan, force); err != nil {
		return err
	}
	if err := h.switchTo(name, version, force, hs); err != nil {
		return err
	}
	if err := h.ApplyOverlay(plan, force); err != nil {
		return err
	}
	if err := h.SyncService(name); err != nil {
		h.say("warning: %v", err)
	}
	return nil
}

// startAndWait tells the daemon about the definitions (a new service is
// unknown to it until a reload), then restarts the service, or starts it
// when the reload just added or changed it, and waits until it runs (with
// checks: until they pass).
func (h *Host) startAndWait(ctx context.Context, d Daemon, name string, timeout time.Duration) error {
	if d == nil {
		return control.ErrNoDaemon
	}
	res, err := d.Reload(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(res.Broken, name) {
		return fmt.Errorf("the daemon refused the definition: %s", strings.TrimSpace(res.Problems))
	}
	action, act := "restart", d.Restart
	if slices.Contains(res.Added, name) || slices.Contains(res.Changed, name) {
		action, act = "start", d.Start
	}
	h.say("%s %s through the daemon; waiting up to %v for it to come up", action, name, timeout)
	return h.follow(ctx, d, name, timeout, func(wctx context.Context) error {
		return act(wctx, []string{name}, control.ActOptions{Wait: true, Timeout: timeout})
	})
}

// Rollback makes the release deployed before the current one current
// again, with its overlay, and has the daemon restart the service.
func (h *Host) Rollback(ctx context.Context, d Daemon, name string, o DeployOptions) (string, error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	unlock, err := h.lock(name)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := h.recoverLocked(ctx, d, name); err != nil {
		return "", err
	}
	hs, err := h.history(name)
	if err != nil {
		return "", err
	}
	cur := h.current(name)
	if cur.Kind != "release" && cur.Kind != "dangling" {
		return "", fmt.Errorf("%s is not deployed from a release (%s)", name, describe(cur))
	}
	i := hs.find(cur.Version)
	prev := ""
	for j := i - 1; j >= 0 && i >= 0; j-- {
		if h.exists(releaseRel(name, hs.Releases[j].Version)) {
			prev = hs.Releases[j].Version
			break
		}
	}
	if prev == "" {
		return "", fmt.Errorf("no earlier release of %s to roll back to (upkeep releases %s)", name, name)
	}
	j, err := h.beginJournal("rollback", name, cur, prev, hs)
	if err == nil {
		err = h.planJournal(j, prev)
	}
	if err == nil && undoable(cur) {
		err = h.step(j, "switch", undo)
	} else if err == nil {
		err = h.step(j, "switch", redo)
	}
	if err != nil {
		return "", err
	}
	defer h.endJournal(j)
	if err := h.activate(name, prev, o.Force, hs); err != nil {
		return "", err
	}
	h.say("rolled back %s: %s -> %s", h.Path(serviceRel(name)), cur.Version, prev)
	crashAt("rollback-switched")
	if err := h.step(j, "restart", redo); err != nil {
		return "", err
	}
	err = h.startAndWait(ctx, d, name, o.Timeout)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		h.say("%v: the switch is done; %s %s starts when the daemon does", err, name, prev)
	case err != nil:
		return prev, fmt.Errorf("rolled back %s to %s, but it did not come up: %w", name, prev, err)
	default:
		h.say("%s %s is up", name, prev)
	}
	return prev, h.saveHistory(hs)
}

// RemoveOptions tune remove.
type RemoveOptions struct {
	Purge   bool // also var/db/<name> and the logs
	Force   bool // remove a manual directory in var/www too
	Timeout time.Duration
}

// Remove stops the service through the daemon, then removes its overlay,
// var/www/<name>, its releases and the operator's symlinks; its data and
// logs stay unless purge.
func (h *Host) Remove(ctx context.Context, d Daemon, name string, o RemoveOptions) error {
	if err := spec.CheckName(name); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	unlock, err := h.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	cur := h.current(name)
	if cur.Kind == "manual" && !o.Force {
		return fmt.Errorf("%s is a directory not deployed by upkeep; remove it only with --force", h.Path(serviceRel(name)))
	}
	_, manifestErr := h.root.Lstat(manifestRel(name))
	_, historyErr := h.root.Lstat(historyRel(name))
	if cur.Kind == "none" && manifestErr != nil && historyErr != nil && !h.exists(releasesRel(name)) {
		if h.finished[name] {
			h.say("%s is removed: the remove that died half done was finished", name)
			return nil
		}
		return fmt.Errorf("%s is not deployed", name)
	}
	daemonUp := d != nil
	if daemonUp {
		sctx, cancel := context.WithTimeout(ctx, o.Timeout+5*time.Second)
		err := d.Stop(sctx, []string{name}, control.ActOptions{Wait: true, Timeout: o.Timeout})
		cancel()
		switch {
		case errors.Is(err, control.ErrNoDaemon):
			h.say("%v: nothing to stop", err)
			daemonUp = false
		case errors.Is(err, control.ErrUnknown): // deployed, never loaded: nothing to stop
		case err != nil:
			return fmt.Errorf("stop %s: %w", name, err)
		default:
			h.say("stopped %s", name)
		}
	}
	// From here the remove only goes forward: the journal says so before
	// anything is removed, and a remove killed in the middle is finished
	// (redone from its first step: each step is idempotent) by the next
	// upkeep command or daemon start that recovers journals.
	j := &Journal{Op: "remove", Service: name, Step: "remove", Then: redo, Purge: o.Purge, Force: cur.Kind == "manual", Home: h.Home}
	if err := h.step(j, "remove", redo); err != nil {
		return err
	}
	crashAt("remove-journaled")
	if err := h.finishRemove(ctx, d, j, daemonUp); err != nil {
		return err
	}
	h.endJournal(j)
	// The lock file goes too (held, so no other command is between its
	// open and its flock on this service now).
	_ = h.root.Remove(path.Join(LockDir, name+".lock"))
	return nil
}

// finishRemove does a remove's steps, with name's lock held: each finds
// its work done, or half done, and finishes it, so a journal's redo runs
// them all again. daemonUp: d is a running daemon, to be told to forget
// the service once its directory is gone.
func (h *Host) finishRemove(ctx context.Context, d Daemon, j *Journal, daemonUp bool) error {
	name := j.Service
	switch cur := h.current(name); cur.Kind {
	case "manual":
		if !j.Force {
			return fmt.Errorf("%s is a directory not deployed by upkeep; remove it only with --force", h.Path(serviceRel(name)))
		}
		if err := h.root.RemoveAll(serviceRel(name)); err != nil {
			return err
		}
	case "none":
	default:
		if err := h.root.Remove(serviceRel(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	h.say("removed %s", h.Path(serviceRel(name)))
	crashAt("remove-unlinked")
	if daemonUp {
		// The daemon forgets a service whose directory is gone.
		if _, err := d.Reload(ctx); err != nil && !errors.Is(err, control.ErrNoDaemon) {
			h.say("warning: reload: %v", err)
		}
	}
	hostUnlock, err := h.lock("host")
	if err != nil {
		return err
	}
	err = h.RemoveOverlay(name)
	hostUnlock()
	if err != nil {
		return err
	}
	crashAt("remove-unlaid")
	if err := h.root.RemoveAll(releasesRel(name)); err != nil {
		removeAll(h.Path(releasesRel(name)))
	}
	if err := h.root.Remove(historyRel(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	home := h
	if h.Home == "" && j.Home != "" {
		// The links are only removed where they point at this root's
		// places for name (unlinkHome), so a recorded home is safe to use.
		if hh, err := New(h.Root, j.Home, h.Out); err == nil {
			home = hh
		}
	}
	home.unlinkHome(name)
	crashAt("remove-released")
	if !j.Purge {
		h.say("kept %s and the logs %s*; --purge removes them", h.Path(dbRel(name)), h.Path(logRel(name)))
	} else {
		if err := (tree{h.Path(DBDir)}).RemoveAll(name); err != nil {
			return err
		}
		h.say("removed %s", h.Path(dbRel(name)))
		entries, _ := os.ReadDir(h.Path(LogDir))
		for _, e := range entries {
			if isLogOf(e.Name(), name) {
				if err := h.root.Remove(LogDir + "/" + e.Name()); err == nil {
					h.say("removed %s", h.Path(LogDir+"/"+e.Name()))
				}
			}
		}
	}
	h.removeLogIndexes(name)
	// The removals on disk before the journal goes: after a power cut the
	// journal is there (and redone) or everything it did is.
	// One syncfs here, not syncOp's directories: os.RemoveAll's unlinks
	// lie in directories removed after them, and a remove is rare.
	if err := syncFS(h.Root); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if h.Home != "" {
		if err := syncFS(h.Home); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if j.Purge { // var/db and var/log may be file systems of their own
		_ = syncFS(h.Path(DBDir))
		_ = syncFS(h.Path(LogDir))
	}
	return nil
}

// isLogOf reports whether file is a log of name: <name>.log,
// <name>.error.log, and their rotated forms (.1, .2.gz, -20240101).
func isLogOf(file, name string) bool {
	for _, base := range []string{paths.LogBase(name), paths.ErrorLogBase(name)} {
		rest, ok := strings.CutPrefix(file, base)
		if !ok {
			continue
		}
		if rest == "" || (len(rest) > 1 && (rest[0] == '.' || rest[0] == '-') && rest[1] >= '0' && rest[1] <= '9') {
			return true
		}
	}
	return false
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
