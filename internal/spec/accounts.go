package spec

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
)

// Accounts are the users and groups a service may name: those of the
// root's etc/passwd and etc/group and, since the daemon resolves them on
// the host it runs on (os/user), the host's own when the root is not "/".
// validate checks user, group and groups against them before a start
// would fail.
type Accounts struct {
	root          string
	users, groups map[string]uint32
	uids, gids    map[uint32]bool
	host          bool // also ask the host's account database
	// Creatable says whether `upkeep provision` creates a missing account
	// (kind "user" or "group"): then a missing one is a warning, not an
	// error. The default is provision's rule today (useradd/groupadd
	// --system of a plain system-account name); the code that creates
	// accounts may set its own.
	Creatable func(kind, name string) bool
}

// systemName is what useradd and groupadd accept by default
// (NAME_REGEX of adduser.conf, 32 characters at most).
var systemName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)

// LoadAccounts reads root's etc/passwd and etc/group (missing files are
// empty).
func LoadAccounts(root string) (*Accounts, error) {
	a := &Accounts{root: root, host: filepath.Clean(root) != "/", uids: map[uint32]bool{}, gids: map[uint32]bool{},
		Creatable: func(_, name string) bool { return systemName.MatchString(name) }}
	var err error
	if a.users, err = readIDsIfAny(filepath.Join(root, "etc/passwd")); err != nil {
		return nil, err
	}
	if a.groups, err = readIDsIfAny(filepath.Join(root, "etc/group")); err != nil {
		return nil, err
	}
	for _, id := range a.users {
		a.uids[id] = true
	}
	for _, id := range a.groups {
		a.gids[id] = true
	}
	return a, nil
}

func readIDsIfAny(path string) (map[string]uint32, error) {
	ids, err := ReadIDs(path)
	if os.IsNotExist(err) {
		return map[string]uint32{}, nil
	}
	return ids, err
}

func (a *Accounts) hasUser(name string) bool {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if a.uids[uint32(n)] {
			return true
		}
		_, err := user.LookupId(name)
		return a.host && err == nil
	}
	if _, ok := a.users[name]; ok {
		return true
	}
	_, err := user.Lookup(name)
	return a.host && err == nil
}

func (a *Accounts) hasGroup(name string) bool {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if a.gids[uint32(n)] {
			return true
		}
		_, err := user.LookupGroupId(name)
		return a.host && err == nil
	}
	if _, ok := a.groups[name]; ok {
		return true
	}
	_, err := user.LookupGroup(name)
	return a.host && err == nil
}

// Check reports the accounts s names that do not exist, at their keys in
// s's file: a warning for a user or group that provision will create, an
// error otherwise (a supplementary group, which provision never creates,
// a numeric id, a name useradd refuses).
func (a *Accounts) Check(s *Service) Problems {
	data, _ := os.ReadFile(s.File)
	text := string(data)
	var ps Problems
	add := func(key string, warning bool, format string, args ...any) {
		line, col := locate(text, key)
		ps = append(ps, Problem{File: s.File, Line: line, Col: col, Key: key, Warning: warning, Msg: fmt.Sprintf(format, args...)})
	}
	where := filepath.Join(a.root, "etc")
	if a.host {
		where += " nor on this host"
	}
	missing := func(key, kind, name string, creatable bool) {
		_, numeric := strconv.ParseUint(name, 10, 32)
		if numeric == nil || !creatable {
			add(key, false, "%s %s does not exist (not in %s)", kind, name, where)
			return
		}
		add(key, true, "%s %s does not exist; `upkeep provision` will create it", kind, name)
	}
	if s.User != "" && !a.hasUser(s.User) {
		missing("user", "user", s.User, a.Creatable("user", s.User))
	}
	if s.Group != "" && !a.hasGroup(s.Group) {
		missing("group", "group", s.Group, a.Creatable("group", s.Group))
	}
	for _, g := range s.Groups {
		if !a.hasGroup(g) {
			missing("groups", "group", g, false)
		}
	}
	return ps
}
