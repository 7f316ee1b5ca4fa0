package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The files, relative to the root.
const (
	Passwd    = "etc/passwd"
	Group     = "etc/group"
	Shadow    = "etc/shadow"
	GShadow   = "etc/gshadow"
	LoginDefs = "etc/login.defs"
	// LockFile is lckpwdf(3)'s lock: shadow's useradd, passwd and vipw
	// take a POSIX write lock on it, and so do we.
	LockFile = "etc/.pwd.lock"
)

// DB is one root's account files as read.
type DB struct {
	Users, Groups      []Entry
	raw                map[string]string // file → content, for those that exist
	uidRange, gidRange Range
}

// Has reports whether root has account files of its own (etc/passwd).
func Has(root string) bool {
	fi, err := os.Lstat(path.Join(root, Passwd))
	return err == nil && fi.Mode().IsRegular()
}

// Read reads the account files beneath root. passwd and group must
// exist; shadow and gshadow are extended only when they do.
func Read(root string) (*DB, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return read(r)
}

func read(r *os.Root) (*DB, error) {
	db := &DB{raw: map[string]string{}}
	for _, f := range []string{Passwd, Group, Shadow, GShadow, LoginDefs} {
		b, err := r.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) && f != Passwd && f != Group {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		db.raw[f] = string(b)
	}
	var err error
	if db.Users, err = Parse(Passwd, db.raw[Passwd], 7); err != nil {
		return nil, err
	}
	if db.Groups, err = Parse(Group, db.raw[Group], 4); err != nil {
		return nil, err
	}
	db.uidRange, db.gidRange = ParseLoginDefs(db.raw[LoginDefs])
	return db, nil
}

// User finds a user by name.
func (db *DB) User(name string) (Entry, bool) { return find(db.Users, name) }

// GroupByName finds a group by name.
func (db *DB) GroupByName(name string) (Entry, bool) { return find(db.Groups, name) }

func find(es []Entry, name string) (Entry, bool) {
	for _, e := range es {
		if e.Name == name && name != "" {
			return e, true
		}
	}
	return Entry{}, false
}

// Account is one account to create.
type Account struct {
	Kind  string // "user" or "group"
	Name  string
	Group string // a user's primary group; "": a group of its own name, made with it
	Home  string // a user's home, as seen inside the root
	Shell string
}

func (a Account) String() string { return a.Kind + " " + a.Name }

// Lines are the lines that creating a adds to each file, with the ids it
// would get now; the account is then counted in db, so that a plan of
// several accounts gives each its own id. Nothing for one that exists.
func (db *DB) Lines(a Account) (map[string]string, error) {
	out := map[string]string{}
	switch a.Kind {
	case "group":
		if _, ok := db.GroupByName(a.Name); ok {
			return out, nil
		}
		gid, ok := free(db.gidRange, db.Groups, nil)
		if !ok {
			return nil, fmt.Errorf("group %s: no free system gid in %d..%d", a.Name, db.gidRange.Min, db.gidRange.Max)
		}
		db.groupLines(out, a.Name, gid)
		db.Groups = append(db.Groups, Entry{Name: a.Name, ID: gid, GID: -1, Line: out[Group]})
	case "user":
		if _, ok := db.User(a.Name); ok {
			return out, nil
		}
		var uid, gid int
		if a.Group != "" {
			g, ok := db.GroupByName(a.Group)
			if !ok {
				return nil, fmt.Errorf("user %s: no group %s", a.Name, a.Group)
			}
			gid = g.ID
			if uid, ok = free(db.uidRange, db.Users, nil); !ok {
				return nil, fmt.Errorf("user %s: no free system uid in %d..%d", a.Name, db.uidRange.Min, db.uidRange.Max)
			}
		} else {
			if _, ok := db.GroupByName(a.Name); ok {
				return nil, fmt.Errorf("user %s: a group %s exists; name it as the group", a.Name, a.Name)
			}
			// One id for the user and its group, as useradd gives when
			// it can: both free, searched from the top of the range.
			var ok bool
			if uid, ok = free(db.uidRange, db.Users, db.Groups); !ok {
				return nil, fmt.Errorf("user %s: no system id free as both uid and gid in %d..%d", a.Name, db.uidRange.Min, db.uidRange.Max)
			}
			gid = uid
			db.groupLines(out, a.Name, gid)
			db.Groups = append(db.Groups, Entry{Name: a.Name, ID: gid, GID: -1, Line: out[Group]})
		}
		out[Passwd] = fmt.Sprintf("%s:x:%d:%d::%s:%s", a.Name, uid, gid, a.Home, a.Shell)
		db.Users = append(db.Users, Entry{Name: a.Name, ID: uid, GID: gid, Line: out[Passwd]})
		if _, ok := db.raw[Shadow]; ok {
			// "!": no password can log in, as useradd --system leaves it.
			out[Shadow] = fmt.Sprintf("%s:!:%d::::::", a.Name, time.Now().Unix()/86400)
		}
	default:
		return nil, fmt.Errorf("account kind %q", a.Kind)
	}
	return out, nil
}

func (db *DB) groupLines(out map[string]string, name string, gid int) {
	out[Group] = fmt.Sprintf("%s:x:%d:", name, gid)
	if _, ok := db.raw[GShadow]; ok {
		out[GShadow] = name + ":!::"
	}
}

// free is the highest id of r used by no entry of a (nor of b): useradd
// --system allocates from the top, leaving the bottom to the distribution.
func free(r Range, a, b []Entry) (int, bool) {
	used := map[int]bool{}
	for _, es := range [][]Entry{a, b} {
		for _, e := range es {
			used[e.ID] = true
		}
	}
	for id := r.Max; id >= r.Min; id-- {
		if !used[id] {
			return id, true
		}
	}
	return 0, false
}

// Add creates a beneath root, unless it exists: under the lock, the files
// are read again, the lines appended, and each file replaced atomically
// (a temp file with the same mode and owner, fsynced, renamed over, the
// directory fsynced). It returns the lines it added, by file.
func Add(root string, a Account) (map[string]string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	unlock, err := lock(r)
	if err != nil {
		return nil, err
	}
	defer unlock()
	db, err := read(r)
	if err != nil {
		return nil, err
	}
	lines, err := db.Lines(a)
	if err != nil {
		return nil, err
	}
	// group before passwd: a user line never names a gid that is not there.
	for _, f := range []string{Group, GShadow, Passwd, Shadow} {
		l, ok := lines[f]
		if !ok {
			continue
		}
		old := db.raw[f]
		if old != "" && !strings.HasSuffix(old, "\n") {
			old += "\n"
		}
		if err := writeAtomic(r, f, old+l+"\n"); err != nil {
			return nil, fmt.Errorf("add %s: %w", a, err)
		}
	}
	return lines, nil
}

// LockWait is how long Add waits for the lock, as lckpwdf does.
var LockWait = 15 * time.Second

func lock(r *os.Root) (func(), error) {
	f, err := r.OpenFile(LockFile, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", LockFile, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	deadline := time.Now().Add(LockWait)
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if err == nil {
			return func() { f.Close() }, nil // closing drops a POSIX lock
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w (another useradd or vipw?)", LockFile, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeAtomic(r *os.Root, rel, data string) error {
	fi, err := r.Lstat(rel)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", rel)
	}
	st := fi.Sys().(*syscall.Stat_t)
	tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+".upkeep-"+strconv.Itoa(os.Getpid()))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			r.Remove(tmp)
		}
	}()
	if _, err := f.WriteString(data); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := f.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := r.Rename(tmp, rel); err != nil {
		return err
	}
	ok = true
	d, err := r.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
