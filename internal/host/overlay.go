package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The overlay lays a service's config/ onto the root 1:1: config/etc/x
// becomes <root>/etc/x, a symlink to <root>/var/www/<name>/config/etc/x
// unless service.toml lists it under copy. The links go through
// var/www/<name>, so switching that one symlink switches every linked file
// of the service at once; copies are rewritten (new file, rename) on each
// deploy.

// Manifest records what the overlay placed for one service, so that a
// redeploy, a rollback and `upkeep remove` touch exactly that.
type Manifest struct {
	Service string   `json:"service"`
	Release string   `json:"release,omitempty"`
	Entries []Placed `json:"entries"`
	Dirs    []string `json:"dirs,omitempty"` // made by the overlay; removed when empty
}

// Placed is one file the overlay put beneath the root.
type Placed struct {
	Path   string `json:"path"` // beneath the root, slash-separated
	Kind   string `json:"kind"` // link | copy
	Target string `json:"target,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // of a copy's content
}

// Op is one step of an overlay plan.
type Op struct {
	Action string // mkdir, link, copy, keep, update, remove, leave, conflict
	Path   string // beneath the root
	Kind   string // link | copy, for files
	Target string // a link's target (host path)
	Source string // config-relative source of a link or copy
	Why    string // conflicts and notes
	Hard   bool   // a conflict --force does not override
	Owner  string // the service that placed the file, for a conflict
	sum    string // a copy's content
	src    string // a file's host path in the release's config/
}

// Plan is what laying a release's config/ would do.
type Plan struct {
	Service string
	Release string
	Ops     []Op
	own     *Manifest
	shared  []string // directories the plan uses that another service's overlay made
}

// Conflicts returns the plan's conflicts.
func (p *Plan) Conflicts() []Op {
	var out []Op
	for _, op := range p.Ops {
		if op.Action == "conflict" {
			out = append(out, op)
		}
	}
	return out
}

// ConflictError lists every conflict of a plan.
type ConflictError struct {
	Service string
	Ops     []Op
	Forced  bool
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "overlay of %s: %d conflict(s): ", e.Service, len(e.Ops))
	hard := false
	for i, op := range e.Ops {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s", show(op.Path), op.Why)
		hard = hard || op.Hard
	}
	if !e.Forced {
		b.WriteString(" (--force replaces files and symlinks in the way")
		if hard {
			b.WriteString(", but never writes through a symlink or over a directory")
		}
		b.WriteString(")")
	}
	return b.String()
}

// reserved are trees the overlay must not write into: upkeep's own.
var reserved = []string{WWWDir, StateDir, RunDir}

// manifests reads every service's overlay manifest.
func (h *Host) manifests() (map[string]*Manifest, error) {
	out := map[string]*Manifest{}
	entries, err := os.ReadDir(h.Path(OverlayDir))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		m, err := h.readManifest(name)
		if err != nil {
			return nil, err
		}
		out[name] = m
	}
	return out, nil
}

func (h *Host) readManifest(name string) (*Manifest, error) {
	m := &Manifest{Service: name}
	if err := h.readJSON(manifestRel(name), m); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return m, nil
}

func (h *Host) readJSON(rel string, v any) error {
	f, err := h.root.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", h.Path(rel), err)
	}
	return nil
}

func (h *Host) writeJSON(rel string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if _, err := h.root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	// Fsynced before the rename: manifests and histories are what recovery
	// trusts, so their names must never point at data a power cut lost
	// (zero bytes, on many file systems). Their directories are synced
	// once at the op's end (syncOp), or by the caller.
	_, err = h.root.WriteFileData(rel, strings.NewReader(string(b)+"\n"), 0o644)
	return err
}

// linkTarget is where a linked file of name's config points: through
// var/www/<name>, so the service's switch switches it.
func (h *Host) linkTarget(name, rel string) string {
	return h.Path(path.Join(serviceRel(name), "config", rel))
}

// PlanOverlay plans laying the config/ of release dir (a host path: a
// release, or var/www/<name> itself) for service name, with copies listing
// the paths to copy rather than link.
func (h *Host) PlanOverlay(name, release, dir string, copies []string) (*Plan, error) {
	return h.planOverlay(name, release, diskConfig(filepath.Join(dir, "config")), copies)
}

func (h *Host) planOverlay(name, release string, cfg configTree, copies []string) (*Plan, error) {
	all, err := h.manifests()
	if err != nil {
		return nil, err
	}
	own := all[name]
	if own == nil {
		own = &Manifest{Service: name}
	}
	owners := map[string]string{}
	placed := map[string]Placed{}
	madeBy := map[string]bool{} // directories other services' overlays made
	for svc, m := range all {
		for _, e := range m.Entries {
			owners[e.Path] = svc
			if svc == name {
				placed[e.Path] = e
			}
		}
		if svc != name {
			for _, d := range m.Dirs {
				madeBy[d] = true
			}
		}
	}
	plan := &Plan{Service: name, Release: release, own: own}
	conflict := func(rel, why string, hard bool, owner string) {
		plan.add(Op{Action: "conflict", Path: rel, Why: why, Hard: hard, Owner: owner})
	}
	want := map[string]bool{}
	blocked := map[string]bool{} // symlinked or non-directory components, reported once
	err = cfg.walk(func(rel string, d fs.DirEntry) error {
		for _, r := range reserved {
			if rel == r || strings.HasPrefix(rel, r+"/") || strings.HasPrefix(r, rel+"/") {
				if d.IsDir() && strings.HasPrefix(r, rel+"/") {
					return nil // var/, var/lib/ on the way to something else
				}
				conflict(rel, "upkeep's own; the overlay never writes there", true, "")
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		st, lerr := h.root.Lstat(rel)
		var se *SymlinkError
		var nd *NotDirError
		if errors.As(lerr, &se) || errors.As(lerr, &nd) {
			at := rel
			why := lerr.Error()
			if se != nil {
				at, why = se.Path, fmt.Sprintf("is a symlink (-> %s); upkeep does not write through symlinks", se.Target)
			} else {
				at, why = nd.Path, "is not a directory"
			}
			if !blocked[at] {
				blocked[at] = true
				conflict(at, why, true, "")
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		exists := lerr == nil
		if lerr != nil && !errors.Is(lerr, fs.ErrNotExist) {
			return lerr
		}
		if d.IsDir() {
			switch {
			case !exists:
				plan.add(Op{Action: "mkdir", Path: rel})
			case madeBy[rel] && isType(st, unix.S_IFDIR):
				// Another service's overlay made it: this one records it
				// too, so whichever of them goes last removes it once empty.
				plan.shared = append(plan.shared, rel)
			case isType(st, unix.S_IFLNK):
				target, _ := h.root.Readlink(rel)
				blocked[rel] = true
				conflict(rel, fmt.Sprintf("is a symlink (-> %s); upkeep does not write through symlinks", target), true, "")
				return filepath.SkipDir
			case !isType(st, unix.S_IFDIR):
				blocked[rel] = true
				conflict(rel, "exists and is not a directory", true, "")
				return filepath.SkipDir
			}
			return nil
		}
		want[rel] = true
		op := Op{Path: rel, Kind: "link", Source: "config/" + rel, Target: h.linkTarget(name, rel), src: cfg.path(rel)}
		if matchCopy(rel, copies) {
			op.Kind, op.Target = "copy", ""
			if !d.Type().IsRegular() {
				conflict(rel, "listed in copy, but config/"+rel+" is not a regular file", true, "")
				return nil
			}
			sum, err := cfg.sum(rel)
			if err != nil {
				return err
			}
			op.sum = sum
		}
		if !exists {
			op.Action = op.Kind
			plan.add(op)
			return nil
		}
		if isType(st, unix.S_IFDIR) {
			conflict(rel, "is a directory", true, "")
			return nil
		}
		same := h.matches(rel, st, Placed{Kind: op.Kind, Target: op.Target, SHA256: op.sum})
		fileConflict := func(why, owner string) {
			op.Action, op.Why, op.Owner = "conflict", why, owner
			plan.add(op)
		}
		switch owner := owners[rel]; {
		case owner == name && !h.matches(rel, st, placed[rel]):
			fileConflict("changed since upkeep placed it", name)
		case owner == name && same:
			op.Action = "keep"
			plan.add(op)
		case owner == name:
			op.Action = "update"
			plan.add(op)
		case owner != "":
			fileConflict("placed by "+owner, owner)
		case same:
			op.Action, op.Why = "keep", "already in place; adopted"
			plan.add(op)
		default:
			fileConflict("exists and was not placed by upkeep", "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("overlay of %s: %w", name, err)
	}
	for _, e := range own.Entries {
		if want[e.Path] {
			continue
		}
		st, err := h.root.Lstat(e.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			plan.add(Op{Action: "remove", Path: e.Path, Kind: e.Kind, Why: "already gone"})
		case err == nil && h.matches(e.Path, st, e):
			plan.add(Op{Action: "remove", Path: e.Path, Kind: e.Kind})
		default:
			plan.add(Op{Action: "leave", Path: e.Path, Kind: e.Kind, Why: "no longer in the release, but changed since upkeep placed it: left in place"})
		}
	}
	sort.SliceStable(plan.Ops, func(i, j int) bool { return plan.Ops[i].Path < plan.Ops[j].Path })
	return plan, nil
}

func (p *Plan) add(op Op) { p.Ops = append(p.Ops, op) }

// matches reports whether the file at rel (described by st) is what pl says
// was placed: the same symlink, or a copy with the same content.
func (h *Host) matches(rel string, st unix.Stat_t, pl Placed) bool {
	switch pl.Kind {
	case "link":
		if !isType(st, unix.S_IFLNK) {
			return false
		}
		got, err := h.root.Readlink(rel)
		return err == nil && got == pl.Target
	case "copy":
		if !isType(st, unix.S_IFREG) {
			return false
		}
		f, err := h.root.Open(rel)
		if err != nil {
			return false
		}
		defer f.Close()
		sum := sha256.New()
		if _, err := io.Copy(sum, f); err != nil {
			return false
		}
		return hex.EncodeToString(sum.Sum(nil)) == pl.SHA256
	}
	return false
}

func matchCopy(rel string, copies []string) bool {
	for _, c := range copies {
		if rel == c || strings.HasPrefix(rel, c+"/") {
			return true
		}
	}
	return false
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// Format writes the plan as `upkeep overlay --dry-run` prints it: paths as
// seen from inside the root, so a plan reads the same for any --root.
func (h *Host) Format(w io.Writer, p *Plan) {
	rel := "release " + p.Release
	if p.Release == "" {
		rel = "not a release: a directory"
	}
	fmt.Fprintf(w, "overlay of %s (%s):\n", p.Service, rel)
	changes, conflicts := 0, 0
	for _, op := range p.Ops {
		line := fmt.Sprintf("  %-8s %s", op.Action, show(op.Path))
		switch op.Action {
		case "link":
			line += " -> " + h.show(op.Target)
		case "copy":
			line += " (copy of " + op.Source + ")"
		case "update", "keep":
			if op.Kind == "link" {
				line += " -> " + h.show(op.Target)
			} else {
				line += " (copy of " + op.Source + ")"
			}
		case "conflict":
			line += ": " + op.Why
			if !op.Hard {
				line += " (--force replaces it)"
			}
		}
		if op.Why != "" && op.Action != "conflict" {
			line += ": " + op.Why
		}
		fmt.Fprintln(w, line)
		switch op.Action {
		case "conflict":
			conflicts++
		case "keep", "leave":
		default:
			changes++
		}
	}
	if len(p.Ops) == 0 {
		fmt.Fprintln(w, "  (no config/ directory: nothing to lay)")
	}
	fmt.Fprintf(w, "%d change(s), %d conflict(s)\n", changes, conflicts)
}

// show prints a host path beneath the root as seen from inside it.
func (h *Host) show(p string) string {
	if h.Root == "/" {
		return p
	}
	if r, ok := strings.CutPrefix(p, h.Root+"/"); ok {
		return "/" + r
	}
	return p
}

// ApplyOverlay carries out a plan. Conflicts stop it before anything is
// written unless force, which replaces files and symlinks in the way (taking
// them from the service that placed them) but never a directory or a
// symlinked path. The manifest is written even when a step fails, so that it
// always lists what is in place.
func (h *Host) ApplyOverlay(p *Plan, force bool) (err error) {
	if err := checkConflicts(p, force); err != nil {
		return err
	}
	m := &Manifest{Service: p.Service, Release: p.Release, Dirs: append(slices.Clone(p.own.Dirs), p.shared...)}
	keep := map[string]Placed{}
	for _, e := range p.own.Entries {
		keep[e.Path] = e
	}
	defer func() {
		for _, e := range keep {
			m.Entries = append(m.Entries, e)
		}
		sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
		if werr := h.writeJSON(manifestRel(p.Service), m); err == nil {
			err = werr
		}
	}()
	var stolen []Op
	for _, op := range p.Ops {
		switch op.Action {
		case "mkdir":
			made, err := h.root.MkdirAll(op.Path, 0o755)
			m.Dirs = append(m.Dirs, made...)
			if err != nil {
				return err
			}
		case "link", "copy", "update", "keep", "conflict":
			if op.Action == "conflict" {
				// forced: take it over
				if op.Owner != "" && op.Owner != p.Service {
					stolen = append(stolen, op)
				}
				h.say("replacing %s (%s; --force)", h.Path(op.Path), op.Why)
			}
			if op.Action == "keep" {
				keep[op.Path] = Placed{Path: op.Path, Kind: op.Kind, Target: op.Target, SHA256: op.sum}
				continue
			}
			made, err := h.root.MkdirAll(path.Dir(op.Path), 0o755)
			m.Dirs = append(m.Dirs, made...)
			if err != nil {
				return err
			}
			pl, err := h.place(p, op)
			if err != nil {
				return err
			}
			keep[op.Path] = pl
			crashAt("overlay-placed")
		case "remove":
			if op.Why == "" {
				err := h.root.Remove(op.Path)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				if err == nil {
					h.say("removed %s %s", placedWhat(op.Kind), h.Path(op.Path))
				}
			}
			delete(keep, op.Path)
		case "leave":
			h.say("left %s: %s", h.Path(op.Path), op.Why)
			delete(keep, op.Path)
		}
	}
	for _, op := range stolen {
		if om, err := h.readManifest(op.Owner); err == nil {
			om.Entries = slicesDelete(om.Entries, op.Path)
			if err := h.writeJSON(manifestRel(op.Owner), om); err != nil {
				return err
			}
		}
	}
	m.Dirs = h.pruneDirs(m.Dirs, keep)
	return nil
}

// place puts one file: a symlink swapped in by rename, or a copy written
// beside and renamed over.
func (h *Host) place(p *Plan, op Op) (Placed, error) {
	if op.Kind == "link" {
		target := h.linkTarget(p.Service, op.Path)
		return Placed{Path: op.Path, Kind: "link", Target: target}, h.root.Symlink(target, op.Path)
	}
	f, err := os.Open(op.src)
	if err != nil {
		return Placed{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Placed{}, err
	}
	sum := sha256.New()
	// A copy is fsynced before its rename: after a power cut the name holds
	// the new content or the old, never an empty file, which recovery
	// would take for a file changed by hand and stop at.
	if _, err := h.root.WriteFileData(op.Path, io.TeeReader(f, sum), fi.Mode().Perm()); err != nil {
		return Placed{}, err
	}
	return Placed{Path: op.Path, Kind: "copy", SHA256: hex.EncodeToString(sum.Sum(nil))}, nil
}

// pruneDirs removes the overlay's own directories that are empty and no
// longer hold a placed file, deepest first, and returns those that remain.
func (h *Host) pruneDirs(dirs []string, keep map[string]Placed) []string {
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		needed := false
		for p := range keep {
			if strings.HasPrefix(p, d+"/") {
				needed = true
				break
			}
		}
		if !needed {
			err := h.root.Remove(d)
			if err == nil {
				// Say it was empty and ours: "removed <root>/etc" alone
				// reads as if the overlay had removed what was in it.
				h.say("removed empty directory %s (the overlay made it)", h.Path(d))
			}
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				continue // gone: removed by the other service that shared it
			}
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// placedWhat names what the overlay placed at a path, for messages.
func placedWhat(kind string) string {
	if kind == "copy" {
		return "copy"
	}
	return "link"
}

func slicesDelete(es []Placed, p string) []Placed {
	out := es[:0]
	for _, e := range es {
		if e.Path != p {
			out = append(out, e)
		}
	}
	return out
}

// RemoveOverlay removes what the overlay placed for name, leaving anything
// changed since, then its manifest.
func (h *Host) RemoveOverlay(name string) error {
	m, err := h.readManifest(name)
	if err != nil {
		return err
	}
	for _, e := range m.Entries {
		st, err := h.root.Lstat(e.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			h.say("left %s: %v", h.Path(e.Path), err)
		case !h.matches(e.Path, st, e):
			h.say("left %s: changed since upkeep placed it", h.Path(e.Path))
		default:
			if err := h.root.Remove(e.Path); err != nil {
				return err
			}
			h.say("removed %s %s", placedWhat(e.Kind), h.Path(e.Path))
		}
	}
	h.pruneDirs(m.Dirs, nil)
	if err := h.root.Remove(manifestRel(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// checkOverlay is doctor's look at what the overlay of name placed.
func (h *Host) checkOverlay(name string, add func(Finding)) {
	m, err := h.readManifest(name)
	if err != nil {
		add(Finding{Path: h.Path(manifestRel(name)), What: err.Error(), Fix: "upkeep overlay " + name})
		return
	}
	for _, e := range m.Entries {
		p := h.Path(e.Path)
		st, err := h.root.Lstat(e.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add(Finding{Path: p, What: "placed by the overlay of " + name + ", now missing", Fix: "upkeep overlay " + name})
		case err != nil:
			add(Finding{Path: p, What: err.Error(), Fix: "upkeep overlay " + name})
		case !h.matches(e.Path, st, e):
			add(Finding{Path: p, What: "changed since the overlay of " + name + " placed it", Fix: "upkeep overlay --force " + name + "  # replaces it"})
		case e.Kind == "link":
			if _, err := os.Stat(e.Target); err != nil {
				add(Finding{Path: p, What: "dangling symlink (-> " + e.Target + ")", Fix: "upkeep overlay " + name})
			}
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func jsonIndent(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b) + "\n", err
}

// Overlay plans the overlay of name's current service directory and, unless
// dryRun, lays it. The plan is written to w either way.
func (h *Host) Overlay(name string, dryRun, force bool, w io.Writer) (*Plan, error) {
	dir := h.Path(serviceRel(name))
	if _, err := os.Stat(filepath.Join(dir, "service.toml")); err != nil {
		return nil, fmt.Errorf("%s is not deployed (%v)", name, err)
	}
	s, ps := h.loadService(name)
	if s == nil {
		return nil, fmt.Errorf("the definition of %s is not valid: %s", name, oneLine(ps.Errors().Error()))
	}
	release := ""
	if cur := h.current(name); cur.Kind == "release" {
		release = cur.Version
	}
	if err := h.checkReleasePolicy(name, release, dir, s); err != nil {
		return nil, err
	}
	if !dryRun {
		unlock, err := h.lock("host")
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	plan, err := h.PlanOverlay(name, release, dir, s.Copy)
	if err != nil {
		return nil, err
	}
	h.Format(w, plan)
	if dryRun {
		return plan, checkConflicts(plan, force)
	}
	if err := h.ApplyOverlay(plan, force); err != nil {
		return plan, err
	}
	// No journal here (an overlay is laid again by running it again), but
	// on disk before it says done, as a deploy's is.
	j := &Journal{}
	j.plan(h, plan)
	return plan, h.syncOp(j)
}
