package host

import (
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"

	"upkeep/internal/accounts"
	"upkeep/internal/spec"
)

// Where a root's accounts live. On "/" they are the host's own, made with
// useradd and groupadd. Under another root that has account files of its
// own (an image, a chroot: etc/passwd beneath it), they are those files,
// extended by internal/accounts, and they are what its services will run
// as once it boots. Under a root without them (a temp root beside the
// host's services), the daemon looks users up on the host, so they are
// the host's again.
func (h *Host) ownAccounts() bool { return h.Root != "/" && accounts.Has(h.Root) }

// accountDB reads the root's account files once per Check (nil: the
// host's accounts, or files that do not parse, reported by checkUser).
func (h *Host) accountDB() (*accounts.DB, error) {
	if !h.ownAccounts() {
		return nil, nil
	}
	if h.acct == nil {
		db, err := accounts.Read(h.Root)
		if err != nil {
			return nil, err
		}
		h.acct = db
	}
	return h.acct, nil
}

func lookupUser(db *accounts.DB, name string) (uid, gid int, ok bool) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, -1, true
	}
	if db != nil {
		e, ok := db.User(name)
		return e.ID, e.GID, ok
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, -1, false
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, true
}

func lookupGroup(db *accounts.DB, name string) (int, bool) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, true
	}
	if db != nil {
		e, ok := db.GroupByName(name)
		return e.ID, ok
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, false
	}
	n, _ := strconv.Atoi(g.Gid)
	return n, true
}

// checkUser looks up a service's user and group and, when missing, finds
// how to create them: useradd --system on the host, lines appended to the
// root's own account files otherwise (ownAccounts).
func (h *Host) checkUser(name, uname, gname string, seen map[string]bool, add func(Finding)) (int, int) {
	db, err := h.accountDB()
	if err != nil {
		if !seen["accounts"] {
			seen["accounts"] = true
			add(Finding{Path: h.Path(accounts.Passwd), What: err.Error(), Fix: "repair the file (vipw -R " + quote(h.Root) + ")"})
		}
		return -1, -1
	}
	uid, gid, uok := lookupUser(db, uname)
	if gname != "" {
		if g, ok := lookupGroup(db, gname); ok {
			gid = g
		} else {
			h.createGroup(db, name, gname, seen, add)
		}
	}
	if uok || seen["user:"+uname] {
		return uid, gid
	}
	seen["user:"+uname] = true
	if db != nil {
		a := accounts.Account{Kind: "user", Name: uname, Group: gname, Home: "/" + dbRel(name), Shell: h.nologin()}
		if gname == "" {
			if _, ok := db.GroupByName(uname); ok {
				a.Group = uname // useradd's -g when a group of the name exists
			}
		}
		h.addAccount(db, name, a, add)
		return -1, -1
	}
	argv := []string{"useradd", "--system", "--no-create-home", "--home-dir", h.Path(dbRel(name)), "--shell", nologin()}
	switch {
	case gname != "":
		argv = append(argv, "--gid", gname)
	default:
		if _, err := user.LookupGroup(uname); err == nil {
			argv = append(argv, "--gid", uname)
		} else {
			argv = append(argv, "--user-group")
		}
	}
	argv = append(argv, uname)
	add(Finding{Path: "user " + uname, What: "does not exist (user of " + name + ")", Fix: strings.Join(argv, " "), root: true, fix: func() error { return runCommand(argv) }})
	return uid, gid
}

// checkGroups finds the supplementary groups (groups =) that are missing;
// a group without a user too (the process keeps the daemon's uid).
func (h *Host) checkGroups(name string, s *spec.Service, seen map[string]bool, add func(Finding)) {
	db, err := h.accountDB()
	if err != nil {
		return // reported by checkUser, or below for a service without a user
	}
	gs := append([]string(nil), s.Groups...)
	if s.User == "" && s.Group != "" {
		gs = append(gs, s.Group)
	}
	for _, g := range gs {
		if _, ok := lookupGroup(db, g); !ok {
			h.createGroup(db, name, g, seen, add)
		}
	}
}

func (h *Host) createGroup(db *accounts.DB, name, gname string, seen map[string]bool, add func(Finding)) {
	if seen["group:"+gname] {
		return
	}
	seen["group:"+gname] = true
	if db != nil {
		h.addAccount(db, name, accounts.Account{Kind: "group", Name: gname}, add)
		return
	}
	argv := []string{"groupadd", "--system", gname}
	add(Finding{Path: "group " + gname, What: "does not exist (group of " + name + ")", Fix: strings.Join(argv, " "), root: true, fix: func() error { return runCommand(argv) }})
}

// addAccount is the finding that appends a's lines to the root's files;
// its Fix shows the lines with the ids they would get now (the fix takes
// the lock and allocates again).
func (h *Host) addAccount(db *accounts.DB, name string, a accounts.Account, add func(Finding)) {
	lines, err := db.Lines(a)
	if err != nil {
		add(Finding{Path: a.Kind + " " + a.Name, What: err.Error() + " (" + a.Kind + " of " + name + ")", Fix: "edit " + quote(h.Path(accounts.Passwd)) + " and " + quote(h.Path(accounts.Group))})
		return
	}
	files := make([]string, 0, len(lines))
	for f := range lines {
		files = append(files, f)
	}
	sort.Strings(files)
	var fix []string
	for _, f := range files {
		fix = append(fix, "echo '"+lines[f]+"' >> "+quote(h.Path(f)))
	}
	root := h.Root
	add(Finding{Path: a.Kind + " " + a.Name, What: "does not exist in " + h.Path("etc") + " (" + a.Kind + " of " + name + ")", Fix: strings.Join(fix, " && "),
		fix: func() error { _, err := accounts.Add(root, a); return err }})
}

// nologin is the root's own nologin shell, as the accounts of the root
// will see it.
func (h *Host) nologin() string {
	for _, p := range []string{"usr/sbin/nologin", "sbin/nologin"} {
		if _, err := h.root.Lstat(p); err == nil {
			return "/" + p
		}
	}
	return "/usr/sbin/nologin"
}

// AccountsToCreate lists the system users and groups that provision would
// create for svcs under root (a user = / group = / groups = the accounts
// lack), as "user nodejs (of www-app)", sorted; validate warns with it.
// Accounts are looked up where provision would create them (see
// ownAccounts): the root's etc/passwd and etc/group when the root is not
// "/" and has them, the host's otherwise.
func AccountsToCreate(root string, svcs []*spec.Service) ([]string, error) {
	h := &Host{Root: root, root: tree{root}}
	db, err := h.accountDB()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	want := func(kind, name, svc string) {
		if name == "" || seen[kind+":"+name] {
			return
		}
		var ok bool
		if kind == "user" {
			_, _, ok = lookupUser(db, name)
		} else {
			_, ok = lookupGroup(db, name)
		}
		if !ok {
			seen[kind+":"+name] = true
			out = append(out, fmt.Sprintf("%s %s (of %s)", kind, name, svc))
		}
	}
	for _, s := range svcs {
		want("group", s.Group, s.Name)
		for _, g := range s.Groups {
			want("group", g, s.Name)
		}
		want("user", s.User, s.Name)
	}
	sort.Strings(out)
	return out, nil
}
