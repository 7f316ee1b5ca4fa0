package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"upkeep/internal/control"
	"upkeep/internal/crash"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// JournalDir holds one journal per service whose deploy or rollback is
// under way: <name>.json. Like SQLite's rollback journal it is made durable
// (fsync of the file and of the directory) before the step it describes
// starts, and removed after the last step; a journal found with the
// service's lock free belongs to a process that died, and Recover finishes
// its work: undo (back to the state before) or redo (on to the state
// after), as the journal's Then says for the step it was in.
const JournalDir = StateDir + "/journal"

// What recovery does with a journal's step.
const (
	undo = "undo" // back to From: the link, the overlay, the history as they were
	redo = "redo" // on to To: the link and the overlay of To, the history saying so
)

// Journal is the record of one deploy, rollback or remove in progress.
// A remove only goes forward (redo): it has no To, no History, and says
// with Purge and Force what the command was asked.
type Journal struct {
	Op      string `json:"op"` // deploy | rollback | remove
	Service string `json:"service"`
	Step    string `json:"step"` // the step under way
	Then    string `json:"then"` // undo | redo, if the process dies in Step
	// From is what var/www/<name> was before: "" for nothing, else the
	// version of a release. To is the version the op switches to.
	From string `json:"from"`
	To   string `json:"to"`
	// Fresh: To's release was unpacked by this op, so undo removes it.
	Fresh bool `json:"fresh,omitempty"`
	// Prior is the overlay manifest as it was before (From's); Entries and
	// Dirs are what laying To's overlay places and makes. With both,
	// recovery knows every file a half-laid overlay may have touched.
	Prior   *Manifest `json:"prior"`
	Entries []Placed  `json:"entries,omitempty"`
	Dirs    []string  `json:"dirs,omitempty"`
	History *History  `json:"history"`         // as it was before: undo writes it back
	Purge   bool      `json:"purge,omitempty"` // remove: var/db/<name> and the logs too
	Force   bool      `json:"force,omitempty"` // remove: var/www/<name> was a manual directory
	// Home is the operator's home the remove was run with, whose links to
	// the service it removes: a daemon that finishes the remove has none.
	Home string `json:"home,omitempty"`
}

func journalRel(name string) string { return path.Join(JournalDir, name+".json") }

// beginJournal starts the journal of op on name, from the current state
// before and the history hs as they are now; nothing is written yet.
func (h *Host) beginJournal(op, name string, before Current, to string, hs *History) (*Journal, error) {
	prior, err := h.readManifest(name)
	if err != nil {
		return nil, err
	}
	j := &Journal{Op: op, Service: name, To: to, Prior: prior}
	if before.Kind == "release" {
		j.From = before.Version
	}
	b, err := json.Marshal(hs)
	if err == nil {
		j.History = &History{}
		err = json.Unmarshal(b, j.History)
	}
	return j, err
}

// undoable says whether the state before can be put back: a release, or
// nothing. A manual directory swapped out (kept as a release) or a dangling
// link is not restored; for those every step after the switch is redone.
func undoable(before Current) bool { return before.Kind == "release" || before.Kind == "none" }

// plan records what laying plan places, for recovery.
func (j *Journal) plan(h *Host, p *Plan) {
	j.Entries, j.Dirs = nil, nil
	for _, op := range p.Ops {
		switch op.Action {
		case "mkdir":
			j.Dirs = append(j.Dirs, op.Path)
		case "link":
			j.Entries = append(j.Entries, Placed{Path: op.Path, Kind: "link", Target: h.linkTarget(p.Service, op.Path)})
		case "copy", "update", "keep", "conflict":
			pl := Placed{Path: op.Path, Kind: op.Kind, SHA256: op.sum}
			if op.Kind == "link" {
				pl.Target = h.linkTarget(p.Service, op.Path)
			}
			j.Entries = append(j.Entries, pl)
		}
	}
}

// planJournal records what laying version's overlay would place.
func (h *Host) planJournal(j *Journal, version string) error {
	var copies []string
	if svc, err := h.parseRelease(j.Service, version); err == nil {
		copies = svc.Copy
	}
	p, err := h.PlanOverlay(j.Service, version, h.Path(releaseRel(j.Service, version)), copies)
	if err != nil {
		return err
	}
	j.plan(h, p)
	return nil
}

// step makes the journal say that step is under way, and what recovery
// does if the process dies in it, durably, before the step starts. A nil
// journal (none was begun) does nothing.
func (h *Host) step(j *Journal, step, then string) error {
	if j == nil {
		return nil
	}
	j.Step, j.Then = step, then
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := h.writeDurable(journalRel(j.Service), append(b, '\n')); err != nil {
		return fmt.Errorf("journal of %s: %w", j.Service, err)
	}
	return nil
}

// endJournal removes the journal: the op is complete (or failed cleanly).
// What the op changed is written out first: the steps themselves (links,
// overlay files, manifest, history) are not fsynced one by one, which would
// cost a deploy an fsync a file, so after a power cut either the journal is
// still there (and recovery redoes or undoes) or all of the op is on disk.
func (h *Host) endJournal(j *Journal) {
	if j == nil {
		return
	}
	if err := h.syncOp(j); err != nil {
		// The journal stays: recovery settles the op again, harmlessly.
		h.say("warning: journal of %s kept: %v", j.Service, err)
		return
	}
	if err := h.root.Remove(journalRel(j.Service)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.say("warning: journal of %s: %v", j.Service, err)
		return
	}
	_ = h.syncDir(JournalDir)
}

// syncOp makes what the op j changed durable: an fsync of each directory
// in which it renamed, linked, made or removed an entry. That is var/www
// (the switch), the service's releases, every directory of an overlay path
// of j (its entries and directories, To's and the prior manifest's) and,
// with a home, the operator's link directories. Manifests and histories
// are written durably already. Directories, not syncfs(2): a syncfs
// writes out everything dirty on the file system, other programs' writes
// too, and on a busy host that is what a deploy would wait for.
func (h *Host) syncOp(j *Journal) error {
	dirs := map[string]bool{
		WWWDir: true, ReleasesDir: true, OverlayDir: true, HistoryDir: true,
		DBDir: true, LogDir: true, // var/db/NAME and the logs: made at a first deploy
	}
	if j.Service != "" {
		dirs[releasesRel(j.Service)] = true
	}
	entries, made := j.Entries, j.Dirs
	if j.Prior != nil {
		entries = append(append([]Placed{}, entries...), j.Prior.Entries...)
		made = append(append([]string{}, made...), j.Prior.Dirs...)
	}
	for _, e := range entries {
		dirs[path.Dir(e.Path)] = true
	}
	for _, d := range made {
		dirs[d], dirs[path.Dir(d)] = true, true
	}
	var errs []error
	for d := range dirs {
		if d == "." {
			d = ""
		}
		if err := h.syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err) // a directory removed since needs none
		}
	}
	if h.Home != "" && j.Service != "" {
		home := map[string]bool{}
		for _, l := range h.homeLinks(j.Service) {
			home[path.Dir(l.rel)] = true
		}
		for d := range home {
			if err := syncDirPath(h.home.abs(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// writeDurable writes data to rel as a new file renamed over the old one,
// with the file fsynced before the rename and the directory after it:
// once it returns, the file survives a crash or a power cut.
func (h *Host) writeDurable(rel string, data []byte) error {
	if _, err := h.root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	// The tree's durable write fsyncs the file, renames, then fsyncs the
	// directory through the descriptor it renamed in.
	_, err := h.root.write(rel, bytes.NewReader(data), 0o644, true)
	return err
}

// syncDir fsyncs the directory rel, so that a rename or unlink in it is on
// disk. (The tree's O_PATH descriptors cannot be fsynced; this one is
// opened for reading, without following a symlink at its last component.)
func (h *Host) syncDir(rel string) error {
	fd, err := unix.Open(h.Path(rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: h.Path(rel), Err: err}
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// readJournal reads the journal of name; nil when there is none.
func (h *Host) readJournal(name string) (*Journal, error) {
	j := &Journal{}
	err := h.readJSON(journalRel(name), j)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := j.check(name); err != nil {
		return nil, fmt.Errorf("%s: %w", h.Path(journalRel(name)), err)
	}
	return j, nil
}

// check vets a journal read from disk before recovery acts on it: its
// versions name releases (a ".." would lead a removal elsewhere), and the
// files it lists are beneath the root and outside upkeep's own trees.
func (j *Journal) check(name string) error {
	if j.Service != name {
		return fmt.Errorf("not a journal of %s", name)
	}
	if j.Then != undo && j.Then != redo {
		return fmt.Errorf("then %q: want undo or redo", j.Then)
	}
	if j.Op == "remove" {
		if j.Then != redo || j.To != "" || j.From != "" || j.History != nil || j.Prior != nil || len(j.Entries) > 0 || len(j.Dirs) > 0 {
			return fmt.Errorf("a remove only goes forward: then redo, and no versions, history or overlay")
		}
		if j.Home != "" && (!filepath.IsAbs(j.Home) || filepath.Clean(j.Home) != j.Home) {
			return fmt.Errorf("home %q is not a clean absolute path", j.Home)
		}
		return nil
	}
	if j.Purge || j.Force || j.Home != "" {
		return fmt.Errorf("purge, force and home are a remove's")
	}
	if err := CheckVersion(j.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if j.From != "" {
		if err := CheckVersion(j.From); err != nil {
			return fmt.Errorf("from: %w", err)
		}
	}
	if j.History == nil || j.History.Service != name {
		return fmt.Errorf("history: not of %s", name)
	}
	entries := j.Entries
	dirs := j.Dirs
	if j.Prior != nil {
		if j.Prior.Service != name {
			return fmt.Errorf("prior manifest: not of %s", name)
		}
		entries = append(append([]Placed{}, entries...), j.Prior.Entries...)
		dirs = append(append([]string{}, dirs...), j.Prior.Dirs...)
	}
	for _, e := range entries {
		if e.Kind != "link" && e.Kind != "copy" {
			return fmt.Errorf("%s: kind %q", e.Path, e.Kind)
		}
		dirs = append(dirs, e.Path)
	}
	for _, p := range dirs {
		if err := checkOverlayPath(p); err != nil {
			return err
		}
	}
	return nil
}

// checkOverlayPath accepts a path the overlay may have placed: relative,
// clean, not into upkeep's own trees.
func checkOverlayPath(p string) error {
	c, err := clean(p)
	if err != nil || c != p || c == "" {
		return fmt.Errorf("path %q is not a clean path beneath the root", p)
	}
	for _, r := range reserved {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Errorf("path %q is upkeep's own", p)
		}
	}
	return nil
}

// journals lists the services that have a journal.
func (h *Host) journals() []string {
	entries, _ := os.ReadDir(h.Path(JournalDir))
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && spec.CheckName(name) == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Recover finishes the deploys and rollbacks that a killed upkeep left
// half done: for each journal whose service lock is free (its process is
// gone; a held lock is a live deploy, left alone), undo or redo as the
// journal says. d, when not nil, is asked to restart a service whose
// restart was under way. It returns what it did, one line per service.
func (h *Host) Recover(ctx context.Context, d Daemon) ([]string, error) {
	var done []string
	var errs []error
	for _, name := range h.journals() {
		unlock, ok, err := h.tryLock(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // a live deploy
		}
		line, err := h.recoverLocked(ctx, d, name)
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
		if line != "" {
			done = append(done, line)
		}
	}
	return done, errors.Join(errs...)
}

// recoverLocked recovers name's journal, if any, with name's lock held.
func (h *Host) recoverLocked(ctx context.Context, d Daemon, name string) (string, error) {
	j, err := h.readJournal(name)
	if err != nil || j == nil {
		return "", err
	}
	if err := h.settle(ctx, d, j); err != nil {
		return "", fmt.Errorf("recover the %s of %s (died at %s): %w", j.Op, name, j.Step, err)
	}
	h.endJournal(j)
	if j.Op == "remove" {
		_ = h.root.Remove(path.Join(LockDir, name+".lock")) // held: see Remove
		if h.finished == nil {
			h.finished = map[string]bool{}
		}
		h.finished[name] = true
		line := fmt.Sprintf("recovered the remove of %s that died at %s: redo (now removed)", name, j.Step)
		h.say("%s", line)
		return line, nil
	}
	state := "nothing"
	if v := j.From; j.Then == undo && v != "" {
		state = v
	} else if j.Then == redo {
		state = j.To
	}
	line := fmt.Sprintf("recovered the %s of %s %s that died at %s: %s (now %s)", j.Op, name, j.To, j.Step, j.Then, state)
	h.say("%s", line)
	return line, nil
}

// settle brings name to the state the journal's Then names.
func (h *Host) settle(ctx context.Context, d Daemon, j *Journal) error {
	name := j.Service
	if j.Op == "remove" {
		return h.finishRemove(ctx, d, j, d != nil)
	}
	if j.Step == "unpack" {
		// Nothing outside the release was touched yet.
		if j.Fresh {
			return h.discardRelease(name, j.To)
		}
		h.removeStaging(name)
		return nil
	}
	hostUnlock, err := h.lock("host")
	if err != nil {
		return err
	}
	err = h.settleLocked(j)
	hostUnlock()
	if err != nil {
		return err
	}
	if j.Then == undo {
		err := h.saveHistory(j.History)
		if len(j.History.Releases) == 0 {
			// A first deploy undone: no history, as before it.
			err = h.root.Remove(historyRel(name))
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if j.Fresh {
			return h.discardRelease(name, j.To)
		}
		return nil
	}
	hs, err := h.history(name)
	if err != nil {
		return err
	}
	if i := hs.find(j.To); i < 0 || hs.Releases[i].Status == "pending" || j.Step == "restart" {
		if i < 0 {
			hs.push(Release{Version: j.To, Status: "unknown"})
		}
		hs.setStatus(j.To, "unknown")
	}
	if err := h.saveHistory(hs); err != nil {
		return err
	}
	if (j.Step == "restart" || j.Step == "rollback") && d != nil {
		// The daemon may not have been told, or runs the release the
		// rollback left: it reads the definition again and restarts the
		// service. Not waited for: the status stays unknown.
		_, err := d.Reload(ctx)
		if err == nil {
			err = d.Restart(ctx, []string{name}, control.ActOptions{})
		}
		if err != nil && !errors.Is(err, control.ErrNoDaemon) {
			h.say("warning: restart %s: %v", name, err)
		}
	}
	return nil
}

// settleLocked puts var/www/<name> and the overlay in the state the
// journal's Then names, with the host lock held. The manifest is first
// rewritten to say what is really in place (a SIGKILL in the middle of an
// overlay leaves files laid that no manifest lists), so that planning the
// overlay of the wanted release then replaces, removes and restores exactly
// the files of either release.
func (h *Host) settleLocked(j *Journal) error {
	name := j.Service
	if err := h.writeJSON(manifestRel(name), h.inPlace(j)); err != nil {
		return err
	}
	want := j.To
	if j.Then == undo {
		want = j.From
	}
	if want == "" {
		if cur := h.current(name); cur.Kind == "release" || cur.Kind == "dangling" {
			if err := h.root.Remove(serviceRel(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		h.unlinkHome(name)
		return h.RemoveOverlay(name)
	}
	svc, err := h.parseRelease(name, want)
	if err != nil {
		return err
	}
	// Planned and checked before the switch: a conflict (a file changed
	// by hand) stops recovery before anything moves.
	plan, err := h.PlanOverlay(name, want, h.Path(releaseRel(name, want)), svc.Copy)
	if err == nil {
		err = checkConflicts(plan, false)
	}
	if err != nil {
		return err
	}
	if cur := h.current(name); cur.Version != want || cur.Kind != "release" {
		if err := h.root.Symlink(paths.ReleaseLink(name, want), serviceRel(name)); err != nil {
			return err
		}
	}
	return h.ApplyOverlay(plan, false)
}

// inPlace is the manifest of what is on disk: for each path either release
// may have placed, the entry (on disk now, of the manifest, of To, of the
// prior manifest) the file matches; the manifest's entry when it matches
// none (changed by someone: planning then reports it).
func (h *Host) inPlace(j *Journal) *Manifest {
	cur, err := h.readManifest(j.Service)
	if err != nil {
		cur = &Manifest{Service: j.Service}
	}
	sets := [][]Placed{cur.Entries, j.Entries}
	dirs := slicesUnion(cur.Dirs, j.Dirs)
	if j.Prior != nil {
		sets = append(sets, j.Prior.Entries)
		dirs = slicesUnion(dirs, j.Prior.Dirs)
	}
	paths := map[string]bool{}
	for _, s := range sets {
		for _, e := range s {
			paths[e.Path] = true
		}
	}
	own := map[string]Placed{}
	for _, e := range cur.Entries {
		own[e.Path] = e
	}
	m := &Manifest{Service: j.Service, Release: cur.Release}
	for p := range paths {
		st, err := h.root.Lstat(p)
		chosen, found := own[p]
		if err == nil {
			for _, s := range sets {
				if e, ok := findPlaced(s, p); ok && h.matches(p, st, e) {
					chosen, found = e, true
					break
				}
			}
		}
		if found {
			m.Entries = append(m.Entries, chosen)
		}
	}
	sort.Slice(m.Entries, func(a, b int) bool { return m.Entries[a].Path < m.Entries[b].Path })
	for _, d := range dirs {
		if st, err := h.root.Lstat(d); err == nil && isType(st, unix.S_IFDIR) {
			m.Dirs = append(m.Dirs, d)
		}
	}
	return m
}

func findPlaced(es []Placed, p string) (Placed, bool) {
	for _, e := range es {
		if e.Path == p {
			return e, true
		}
	}
	return Placed{}, false
}

func slicesUnion(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// discardRelease removes a release this op unpacked, and staging leftovers.
func (h *Host) discardRelease(name, version string) error {
	h.removeStaging(name)
	if cur := h.current(name); cur.Version == version {
		return fmt.Errorf("%s %s is current; not removed", name, version)
	}
	return h.removeRelease(name, version)
}

// removeStaging removes staging directories of name's releases: an unpack
// killed midway leaves one.
func (h *Host) removeStaging(name string) {
	entries, _ := os.ReadDir(h.Path(releasesRel(name)))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".staging-") {
			removeAll(h.Path(path.Join(releasesRel(name), e.Name())))
		}
	}
}

// tryLock takes name's lock if it is free; ok is false when another
// process holds it.
func (h *Host) tryLock(key string) (unlock func(), ok bool, err error) {
	if _, err := h.root.MkdirAll(LockDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	p := h.Path(path.Join(LockDir, key+".lock"))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
	case err == unix.EWOULDBLOCK:
		f.Close()
		return nil, false, nil
	case err != nil:
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, true, nil
}

// lockHeld reports whether another process holds key's lock, without
// creating the lock file (doctor writes nothing).
func (h *Host) lockHeld(key string) bool {
	f, err := h.root.Open(path.Join(LockDir, key+".lock"))
	if err != nil {
		return false // no lock file: nobody holds it
	}
	defer f.Close()
	// A shared lock conflicts with the exclusive lock a deploy holds, and
	// is dropped at once.
	return unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == unix.EWOULDBLOCK
}

// checkJournals is doctor's look for deploys that died half done.
func (h *Host) checkJournals(add func(Finding)) {
	for _, name := range h.journals() {
		if h.lockHeld(name) {
			continue // a live deploy is not a problem
		}
		what := "a deploy or rollback died here; the next upkeep command on the host finishes it"
		if j, err := h.readJournal(name); err != nil {
			what = err.Error()
		} else if j != nil && j.Op == "remove" {
			what = fmt.Sprintf("the remove of %s died half done; the next upkeep command on the host will finish it", name)
		} else if j != nil {
			what = fmt.Sprintf("the %s of %s %s died at step %s; the next upkeep command on the host will %s it", j.Op, name, j.To, j.Step, j.Then)
		}
		add(Finding{Path: h.Path(journalRel(name)), What: what, Fix: "upkeep provision  # recovers it (so does the daemon's start or reload); a file changed by hand that it names must be put right first"})
	}
}

// crashAt is the test hook at a step boundary (see package crash).
func crashAt(step string) { crash.Point(step) }
