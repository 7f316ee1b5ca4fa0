package proc

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Credential resolves a service's user, group and supplementary groups
// to the ids a process switches to.
//
// With a user, the process gets the user's uid and gid (group overrides
// the gid) and the user's groups from /etc/group, as initgroups gives
// them, plus groups. Without a user it keeps the daemon's uid (and gid,
// unless group is set) and gets exactly groups as its supplementary
// groups, as systemd's SupplementaryGroups= without User= does: the
// daemon's own groups are never passed on. A daemon that is not root
// cannot call setgroups, so with nothing to switch it returns nil and the
// process keeps the daemon's ids and groups.
//
// Names are looked up with os/user: upkeep is built without cgo, so that
// reads the host's /etc/passwd and /etc/group (not NSS, and not the
// files under --root). A number that is no name is taken as an id.
func Credential(userName, groupName string, groups []string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" && (len(groups) == 0 && (os.Geteuid() != 0 || setgroupsDenied())) {
		return nil, nil
	}
	uid, gid := os.Getuid(), os.Getgid()
	ids := []uint32{}
	if userName != "" {
		u, err := lookupUser(userName)
		if err != nil {
			return nil, err
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		gs, _ := u.GroupIds()
		for _, g := range gs {
			if n, err := strconv.Atoi(g); err == nil {
				ids = append(ids, uint32(n))
			}
		}
		if len(ids) == 0 {
			ids = append(ids, uint32(gid))
		}
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	for _, name := range groups {
		g, err := lookupGroup(name)
		if err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		ids = appendNew(ids, uint32(g))
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: ids}, nil
}

func appendNew(ids []uint32, id uint32) []uint32 {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(ids, id)
}

func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if u, err := user.LookupId(name); err == nil {
		return u, nil
	}
	return nil, fmt.Errorf("user %q: no such user", name)
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if g, err = user.LookupGroupId(name); err != nil {
			return 0, fmt.Errorf("group %q: no such group", name)
		}
	}
	return strconv.Atoi(g.Gid)
}

// setgroupsDenied says whether this process is root of a user namespace
// that may not call setgroups (an unprivileged one, as `upkeep test` makes
// for a user who is not root): there, root too keeps its groups.
var setgroupsDenied = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
})
