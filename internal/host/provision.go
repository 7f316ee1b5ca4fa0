package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"upkeep/internal/paths"

	"golang.org/x/sys/unix"
)

// A Finding is one way the host differs from its layout: what is wrong,
// the shell command that fixes it, and, when provision may fix it by
// itself, how.
type Finding struct {
	Path string // the host path concerned
	What string
	Fix  string
	fix  func() error // nil: a person decides (doctor only)
	root bool         // fix needs root (useradd, chown)
}

func (f Finding) String() string { return f.Path + ": " + f.What }

// layoutDirs are the directories beneath the root, with their modes.
var layoutDirs = []struct {
	rel  string
	mode os.FileMode
}{
	{WWWDir, 0o755}, {ReleasesDir, 0o755}, {LogDir, 0o755}, {DBDir, 0o755}, {RunDir, 0o755},
	{StateDir, 0o755}, {OverlayDir, 0o755}, {HistoryDir, 0o755}, {LockDir, 0o755},
}

var homeDirs = []string{homeService, homeLog, homeDB, homeImage, homeScript}

// Check compares the host with its layout. Nothing is changed.
func (h *Host) Check() ([]Finding, error) {
	cfg, err := h.Config()
	if err != nil {
		return nil, err
	}
	h.acct = nil // the account files are read afresh: a pass may have added to them
	var out []Finding
	add := func(f Finding) { out = append(out, f) }
	for _, d := range layoutDirs {
		h.checkDir(h.root, d.rel, d.mode, d.rel == DBDir, -1, -1, add)
	}
	if cfg.DBMount {
		h.checkMount(add)
	}
	h.checkJournals(add)
	homeUID, homeGID := -1, -1
	if h.Home != "" {
		if fi, err := os.Stat(h.Home); err != nil {
			add(Finding{Path: h.Home, What: "the operator's home (--home) does not exist; provision does not create it", Fix: "mkdir -p " + quote(h.Home)})
			return out, nil
		} else if st, ok := fi.Sys().(*syscall.Stat_t); ok && h.IsRoot {
			homeUID, homeGID = int(st.Uid), int(st.Gid)
		}
		for _, d := range homeDirs {
			h.checkDir(h.home, d, 0o755, false, homeUID, homeGID, add)
		}
	}
	names, err := h.serviceNames()
	if err != nil {
		return nil, err
	}
	users := map[string]bool{}
	for _, name := range names {
		h.checkService(name, users, homeUID, homeGID, add)
	}
	if h.Home != "" {
		h.checkStale(names, add)
	}
	for _, name := range names {
		h.checkOverlay(name, add)
	}
	h.checkPolicy(names, add)
	return out, nil
}

// checkDir checks one directory of the layout; a symlink is accepted where
// the layout allows one (var/db may live on another mount).
func (h *Host) checkDir(t tree, rel string, mode os.FileMode, symlinkOK bool, uid, gid int, add func(Finding)) {
	p := t.abs(rel)
	st, err := t.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add(Finding{Path: p, What: "missing directory", Fix: fmt.Sprintf("mkdir -p -m %04o %s", mode, quote(p)), fix: func() error {
			made, err := t.MkdirAll(rel, mode)
			if err == nil && uid >= 0 {
				for _, m := range made {
					_ = t.Chown(m, uid, gid)
				}
			}
			return err
		}})
		return
	case err != nil:
		add(Finding{Path: p, What: err.Error(), Fix: "remove the symlink and run: upkeep provision"})
		return
	case isType(st, unix.S_IFLNK) && symlinkOK:
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			target, _ := t.Readlink(rel)
			add(Finding{Path: p, What: fmt.Sprintf("dangling symlink (-> %s)", target), Fix: "mount or create its target " + quote(target)})
			return
		}
		st.Mode = uint32(fi.Mode().Perm())
	case !isType(st, unix.S_IFDIR):
		add(Finding{Path: p, What: "not a directory", Fix: "mv " + quote(p) + " " + quote(p+".old") + " && upkeep provision"})
		return
	}
	if perm := os.FileMode(st.Mode).Perm(); perm&0o022 != 0 {
		add(Finding{Path: p, What: fmt.Sprintf("group- or world-writable (%04o)", perm), Fix: "chmod go-w " + quote(p), fix: func() error {
			return os.Chmod(p, perm&^0o022)
		}})
	}
}

// checkMount: with db_mount in the host config, var/db must be on a mount
// of its own (a mount point, or a symlink into another mount).
func (h *Host) checkMount(add func(Finding)) {
	p := h.Path(DBDir)
	if _, err := os.Stat(p); err != nil {
		return // reported as missing
	}
	mounts, err := readMounts()
	if err != nil {
		add(Finding{Path: p, What: "db_mount: " + err.Error(), Fix: "see " + mountsFile})
		return
	}
	db, err := mountOf(mounts, p)
	if err == nil {
		var parent mount
		if parent, err = mountOf(mounts, h.Path("var")); err == nil && db.ID != parent.ID {
			return
		}
	}
	what := "not a mount point (db_mount = true in " + ConfigFile + ")"
	if err != nil {
		what += ": " + err.Error()
	} else {
		what += ": on " + db.String()
	}
	add(Finding{Path: p, What: what, Fix: "mount DEVICE " + quote(p) + "  # the data volume; then add it to /etc/fstab"})
}

// checkService checks what one service needs: its data directory, its log
// files, its user, and the operator's symlinks.
func (h *Host) checkService(name string, users map[string]bool, homeUID, homeGID int, add func(Finding)) {
	svc := h.Path(serviceRel(name))
	if st, err := h.root.Lstat(serviceRel(name)); err == nil && isType(st, unix.S_IFLNK) {
		if _, err := os.Stat(svc); err != nil {
			target, _ := h.root.Readlink(serviceRel(name))
			add(Finding{Path: svc, What: fmt.Sprintf("dangling symlink (-> %s)", target), Fix: "upkeep rollback " + name})
		}
	}
	s, _ := h.loadService(name)
	uid, gid := -1, -1
	if s != nil && s.User != "" {
		uid, gid = h.checkUser(name, s.User, s.Group, users, add)
	}
	if s != nil {
		h.checkGroups(name, s, users, add)
	}
	db := tree{h.Path(DBDir)}
	dbPath := h.Path(dbRel(name))
	if s != nil && s.DBMount {
		var me *MountError
		switch err := h.checkDataMount(name); {
		case errors.As(err, &me):
			add(Finding{Path: dbPath, What: fmt.Sprintf("not on a mount of its own (db_mount = true in the service.toml of %s): on %s", name, me.On),
				Fix: "mount DEVICE " + quote(dbPath) + "  # or one volume on " + quote(h.Path(DBDir)) + "; then add it to /etc/fstab" +
					"; or, with a volume mounted elsewhere: mkdir /mnt/DISK/" + name + " && upkeep provision --db " + name + "=/mnt/DISK/" + name})
		case err != nil:
			add(Finding{Path: dbPath, What: err.Error(), Fix: "see " + mountsFile})
		}
	}
	st, err := db.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add(Finding{Path: dbPath, What: "missing data directory of " + name, Fix: "install -d -m 0750" + owner(uid, gid) + " " + quote(dbPath), fix: func() error {
			if _, err := h.root.Lstat(DBDir); errors.Is(err, fs.ErrNotExist) {
				if _, err := h.root.MkdirAll(DBDir, 0o755); err != nil {
					return err
				}
			}
			if _, err := db.MkdirAll(name, 0o750); err != nil {
				return err
			}
			if uid >= 0 && h.IsRoot {
				return db.Chown(name, uid, gid)
			}
			return nil
		}})
	case err != nil:
		add(Finding{Path: dbPath, What: err.Error(), Fix: "see " + quote(dbPath)})
	case isType(st, unix.S_IFLNK):
		// A link to a data volume (provision --db): its target is the
		// data directory, owned by the service's user like any other.
		target, _ := db.Readlink(name)
		fi, err := os.Stat(dbPath)
		if err != nil || !fi.IsDir() {
			add(Finding{Path: dbPath, What: fmt.Sprintf("dangling symlink (-> %s)", target), Fix: "mount the volume of " + quote(target) + " (and mkdir " + quote(target) + ")"})
			break
		}
		if t, ok := fi.Sys().(*syscall.Stat_t); ok && uid >= 0 && (int(t.Uid) != uid || (gid >= 0 && int(t.Gid) != gid)) {
			add(Finding{Path: dbPath, What: fmt.Sprintf("data volume %s owned by %d:%d, want %d:%d (user of %s)", target, t.Uid, t.Gid, uid, gid, name),
				Fix: fmt.Sprintf("chown %d:%d %s", uid, gid, quote(target)), root: true, fix: func() error { return os.Chown(target, uid, gid) }})
		}
	case !isType(st, unix.S_IFDIR):
		add(Finding{Path: dbPath, What: "not a directory", Fix: "mv " + quote(dbPath) + " " + quote(dbPath+".old") + " && upkeep provision"})
	default:
		if uid >= 0 && (int(st.Uid) != uid || (gid >= 0 && int(st.Gid) != gid)) {
			add(Finding{Path: dbPath, What: fmt.Sprintf("owned by %d:%d, want %d:%d (user of %s)", st.Uid, st.Gid, uid, gid, name),
				Fix: fmt.Sprintf("chown %d:%d %s", uid, gid, quote(dbPath)), root: true, fix: func() error { return db.Chown(name, uid, gid) }})
		}
		if perm := os.FileMode(st.Mode).Perm(); perm&0o002 != 0 {
			add(Finding{Path: dbPath, What: fmt.Sprintf("world-writable (%04o)", perm), Fix: "chmod o-w " + quote(dbPath), fix: func() error {
				return db.Chmod(name, perm&^0o002)
			}})
		}
	}
	for _, rel := range []string{logRel(name), errLogRel(name)} {
		p := h.Path(rel)
		if _, err := h.root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
			add(Finding{Path: p, What: "missing log file of " + name, Fix: "install -m 0640 /dev/null " + quote(p), fix: func() error {
				// O_EXCL, never a rename over: the daemon may have just
				// opened the file, and would go on writing to a lost inode.
				if err := h.root.Create(rel, 0o640); err != nil {
					return err
				}
				// The service's user may read its own logs. Only a file
				// provision makes is chowned: the daemon's rotation
				// decides for the files it makes.
				if uid >= 0 && h.IsRoot {
					return h.root.Chown(rel, uid, gid)
				}
				if h.madeLogs != nil {
					h.madeLogs[rel] = true // its user is made in this run: chowned in the next pass
				}
				return nil
			}})
		} else if h.madeLogs[rel] && uid >= 0 && h.IsRoot {
			add(Finding{Path: p, What: "log file of " + name + " not yet owned by its user", Fix: fmt.Sprintf("chown %d:%d %s", uid, gid, quote(p)), root: true, fix: func() error {
				delete(h.madeLogs, rel)
				return h.root.Chown(rel, uid, gid)
			}})
		}
	}
	if h.Home == "" {
		return
	}
	for _, l := range h.homeLinks(name) {
		h.checkLink(l.rel, l.target, homeUID, homeGID, add)
	}
}

type homeLink struct{ rel, target string }

// homeLinks are the operator's symlinks of one service.
func (h *Host) homeLinks(name string) []homeLink {
	return []homeLink{
		{path.Join(homeService, name), h.Path(serviceRel(name))},
		{path.Join(homeLog, paths.LogBase(name)), h.Path(logRel(name))},
		{path.Join(homeLog, paths.ErrorLogBase(name)), h.Path(errLogRel(name))},
		{path.Join(homeDB, name), h.Path(dbRel(name))},
	}
}

func (h *Host) checkLink(rel, target string, uid, gid int, add func(Finding)) {
	p := h.home.abs(rel)
	fix := "ln -sfn " + quote(target) + " " + quote(p)
	relink := func() error {
		if err := h.home.Symlink(target, rel); err != nil {
			return err
		}
		if uid >= 0 {
			_ = h.home.Chown(rel, uid, gid)
		}
		return nil
	}
	st, err := h.home.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, perr := h.home.Lstat(path.Dir(rel)); perr != nil {
			return // the home directory itself is reported missing
		}
		add(Finding{Path: p, What: "missing symlink (-> " + target + ")", Fix: fix, fix: relink})
	case err != nil:
		add(Finding{Path: p, What: err.Error(), Fix: fix})
	case !isType(st, unix.S_IFLNK):
		add(Finding{Path: p, What: "not a symlink (want -> " + target + ")", Fix: "mv " + quote(p) + " " + quote(p+".old") + " && " + fix})
	default:
		got, _ := h.home.Readlink(rel)
		if got != target {
			add(Finding{Path: p, What: fmt.Sprintf("points to %s, want %s", got, target), Fix: fix, fix: relink})
		}
	}
}

// checkStale finds symlinks in ~/service ~/log ~/db that point into the
// root's var/www, var/log or var/db for a service that is not deployed
// (provision removes them), and dangling symlinks of others (doctor only).
func (h *Host) checkStale(names []string, add func(Finding)) {
	want := map[string]bool{}
	for _, n := range names {
		for _, l := range h.homeLinks(n) {
			want[l.rel] = true
		}
	}
	ours := []string{h.Path(WWWDir) + "/", h.Path(LogDir) + "/", h.Path(DBDir) + "/"}
	for _, d := range []string{homeService, homeLog, homeDB} {
		entries, err := os.ReadDir(h.home.abs(d))
		if err != nil {
			continue
		}
		for _, e := range entries {
			rel := path.Join(d, e.Name())
			if e.Type()&os.ModeSymlink == 0 || want[rel] {
				continue
			}
			target, err := h.home.Readlink(rel)
			if err != nil {
				continue
			}
			p := h.home.abs(rel)
			mine := false
			for _, o := range ours {
				if strings.HasPrefix(target, o) {
					mine = true
				}
			}
			_, serr := os.Stat(p)
			switch {
			case mine:
				add(Finding{Path: p, What: fmt.Sprintf("stale symlink (-> %s): no such service is deployed", target), Fix: "rm " + quote(p), fix: func() error {
					return h.home.Remove(rel)
				}})
			case serr != nil:
				add(Finding{Path: p, What: fmt.Sprintf("dangling symlink (-> %s)", target), Fix: "rm " + quote(p)})
			}
		}
	}
}

// runCommand runs a provisioning command (useradd, groupadd); tests replace it.
var runCommand = func(argv []string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", argv[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func nologin() string {
	for _, p := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/bin/false"
}

func owner(uid, gid int) string {
	if uid < 0 {
		return ""
	}
	if gid < 0 {
		return fmt.Sprintf(" -o %d", uid)
	}
	return fmt.Sprintf(" -o %d -g %d", uid, gid)
}

// ProvisionResult says what provision did.
type ProvisionResult struct {
	Done    []Finding // fixed (or, with dry-run, would be)
	Left    []Finding // for a person (see doctor)
	Skipped []Finding // need root
}

// Provision makes the host match its layout: the directories, each
// service's data directory and log files, its user (when root), and the
// operator's symlinks. Running it again changes nothing. With dryRun it
// only says what it would do.
func (h *Host) Provision(dryRun bool) (*ProvisionResult, error) {
	if !dryRun {
		unlock, err := h.lock("host")
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	res := &ProvisionResult{}
	h.madeLogs = map[string]bool{}
	defer func() { h.madeLogs = nil }()
	// Two passes: the directories made in the first (var/db, ~/log) let
	// the second see what belongs inside them.
	for pass := 0; pass < 2; pass++ {
		fs, err := h.Check()
		if err != nil {
			return res, err
		}
		res.Left, res.Skipped = nil, nil
		progress := false
		for _, f := range fs {
			switch {
			case f.fix == nil:
				res.Left = append(res.Left, f)
			case f.root && !h.IsRoot && !dryRun:
				res.Skipped = append(res.Skipped, f)
			case dryRun:
				if !contains(res.Done, f) {
					res.Done = append(res.Done, f)
				}
			default:
				if err := f.fix(); err != nil {
					return res, fmt.Errorf("%s: %w", f.Path, err)
				}
				res.Done = append(res.Done, f)
				progress = true
			}
		}
		if dryRun || !progress {
			break
		}
	}
	if !dryRun && len(res.Done) > 0 {
		// The directories, users' files and links it made, on disk before
		// it says done: one syncfs(2) a tree rather than an fsync each.
		if err := syncFS(h.Root); err != nil {
			return res, fmt.Errorf("provision: %w", err)
		}
		// A home that is not there (a sandbox's) has nothing to sync.
		if h.Home != "" {
			if err := syncFS(h.Home); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("provision: %w", err)
			}
		}
	}
	return res, nil
}

func contains(fs []Finding, f Finding) bool {
	for _, g := range fs {
		if g.Path == f.Path && g.What == f.What {
			return true
		}
	}
	return false
}

// Format writes what provision did (or, with dryRun, would do) to out, one
// command a line, and what it left to stderr-worthy err.
func (r *ProvisionResult) Format(out, errw io.Writer, dryRun bool) {
	verb := ""
	if dryRun {
		verb = "would run: "
	}
	for _, f := range r.Done {
		fmt.Fprintf(out, "%s%s\n", verb, f.Fix)
	}
	for _, f := range r.Skipped {
		fmt.Fprintf(errw, "needs root: %s  # %s\n", f.Fix, f)
	}
	for _, f := range r.Left {
		fmt.Fprintf(errw, "left for you: %s\n  fix: %s\n", f, f.Fix)
	}
	if len(r.Done) == 0 && len(r.Skipped) == 0 && len(r.Left) == 0 {
		fmt.Fprintln(out, "nothing to do: the layout is in place")
	}
}

// SyncService brings one service's part of the layout in line (data
// directory, log files, the operator's symlinks), as deploy and rollback
// do after a switch. It never creates the home layout itself: links are
// kept only in ~/service ~/log ~/db that exist.
func (h *Host) SyncService(name string) error {
	var errs []error
	h.checkService(name, map[string]bool{}, -1, -1, func(f Finding) {
		if f.fix == nil || f.root {
			return
		}
		if err := f.fix(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Path, err))
		}
	})
	return errors.Join(errs...)
}

// unlinkHome removes the operator's symlinks of name, when they are ours.
func (h *Host) unlinkHome(name string) {
	if h.Home == "" {
		return
	}
	for _, l := range h.homeLinks(name) {
		if got, err := h.home.Readlink(l.rel); err == nil && got == l.target {
			if h.home.Remove(l.rel) == nil {
				h.say("removed %s", h.home.abs(l.rel))
			}
		}
	}
}

// quote quotes a path for a shell command line when it needs it.
func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@,%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
