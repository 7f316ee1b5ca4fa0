package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"upkeep/internal/policy"
	"upkeep/internal/spec"
)

// Access says who may use the control socket: root, the daemon's own user
// and the members of an admin group may do everything, the members of a
// read group may only read (GET). Everyone else is refused with a message
// that says who they are and which group they would need.
type Access struct {
	AdminGroup string   // the admin group's name ("" for none), for messages
	ReadGroup  string   // the read group's name ("" for none)
	Admin      []uint32 // gids whose members may do everything
	Read       []uint32 // gids whose members may read
	// Self is the daemon's own uid, which may do everything: a daemon an
	// unprivileged user runs on a root of their own (the demo, tests)
	// answers that user, as the 0600 socket of old did. ResolveAccess
	// sets it; zero means root, who may anyway.
	Self  uint32
	users map[uint32]string
}

// level is what a peer may do.
type level int

const (
	denied level = iota
	reader
	admin
)

// ResolveAccess looks the two groups up in the root's etc/group (and the
// users, for messages, in its etc/passwd). A group named but not found
// grants nothing, so only root is let in: the returned Access is usable in
// every case, and the error says what was not found, for the daemon to log.
func ResolveAccess(root, group, readGroup string) (Access, error) {
	a := Access{AdminGroup: group, ReadGroup: readGroup, Self: uint32(os.Geteuid())}
	groups, gerr := spec.ReadIDs(filepath.Join(root, "etc/group"))
	if users, err := spec.ReadIDs(filepath.Join(root, "etc/passwd")); err == nil {
		a.users = make(map[uint32]string, len(users))
		for name, id := range users {
			if old, ok := a.users[id]; !ok || name < old {
				a.users[id] = name // several names for one uid: the same one each time
			}
		}
	}
	var errs []error
	for _, g := range []struct {
		name string
		to   *[]uint32
	}{{group, &a.Admin}, {readGroup, &a.Read}} {
		if g.name == "" {
			continue
		}
		if gerr != nil {
			errs = append(errs, fmt.Errorf("control group %q: %w", g.name, gerr))
			continue
		}
		gid, ok := groups[g.name]
		if !ok {
			errs = append(errs, fmt.Errorf("control group %q: not in %s", g.name, filepath.Join(root, "etc/group")))
			continue
		}
		*g.to = []uint32{gid}
	}
	return a, errors.Join(errs...)
}

// LoadAccess reads the [control] groups of the root's host policy and
// resolves them. err is a policy file that does not parse (with its
// file:line:col): there is no new access then, and the caller keeps what
// it had, or at the start grants root and itself only. warn is a group not
// found, which grants nothing; the Access is usable.
func LoadAccess(root string) (a Access, warn, err error) {
	p, err := policy.Load(root)
	if err != nil {
		return Access{}, nil, err
	}
	a, warn = ResolveAccess(root, p.Control.Group, p.Control.ReadGroup)
	return a, warn, nil
}

// level says what p may do.
func (a Access) level(p Peer) level {
	if p.Uid == 0 || p.Uid == a.Self {
		return admin
	}
	for _, g := range p.Groups {
		if slices.Contains(a.Admin, g) {
			return admin
		}
	}
	for _, g := range p.Groups {
		if slices.Contains(a.Read, g) {
			return reader
		}
	}
	return denied
}

// who names a peer for messages: "uid 1000 (alice)".
func (a Access) who(p Peer) string {
	if name, ok := a.users[p.Uid]; ok {
		return fmt.Sprintf("uid %d (%s)", p.Uid, name)
	}
	return fmt.Sprintf("uid %d", p.Uid)
}

// refusal is the message for a peer that may do has but needed need to do
// what (an action's name).
func (a Access) refusal(p Peer, has, need level, what string) string {
	admins := "root"
	if a.Self != 0 {
		admins += fmt.Sprintf(" or uid %d (the daemon's)", a.Self)
	}
	if len(a.Admin) > 0 {
		admins += fmt.Sprintf(" or group %q", a.AdminGroup)
	}
	if has == reader {
		return fmt.Sprintf("permission denied: %s may only read (group %q); %s needs %s", a.who(p), a.ReadGroup, what, admins)
	}
	s := fmt.Sprintf("permission denied: %s is not root", a.who(p))
	if a.Self != 0 {
		s += fmt.Sprintf(" or uid %d (the daemon's)", a.Self)
	}
	switch {
	case len(a.Admin) > 0 && need == reader && len(a.Read) > 0:
		s += fmt.Sprintf(" or in group %q or %q", a.AdminGroup, a.ReadGroup)
	case len(a.Admin) > 0:
		s += fmt.Sprintf(" or in group %q", a.AdminGroup)
	case need == reader && len(a.Read) > 0:
		s += fmt.Sprintf(" or in group %q", a.ReadGroup)
	}
	return s
}
