package host

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"upkeep/internal/spec"
)

// The guide puts service data in /var/db, which "can be a separate mount".
// A service that says db_mount = true in its service.toml wants its data
// there: var/db/<name> must lie on another mount than var (a volume mounted
// on var/db/<name> or on var/db, or var/db a symlink into one). A data
// directory on the root's disk would fill it, and a volume mounted later
// would hide what was written meanwhile.

// mountsFile is where the mounts are read; tests replace it.
var mountsFile = "/proc/self/mountinfo"

// mount is one line of /proc/self/mountinfo.
type mount struct {
	ID     int
	Dir    string // the mount point, as this process sees it
	FSType string
	Source string
}

func (m mount) String() string {
	return fmt.Sprintf("the mount at %s (%s %s)", m.Dir, m.FSType, m.Source)
}

// readMounts parses mountinfo(5): "36 35 98:0 /mnt1 /mnt2 rw,noatime
// master:1 - ext3 /dev/root rw", with octal escapes (\040) in paths.
func readMounts() ([]mount, error) {
	f, err := os.Open(mountsFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+3 {
			continue
		}
		id, err := strconv.Atoi(fields[0])
		if err != nil {
			continue
		}
		out = append(out, mount{ID: id, Dir: unescapeMount(fields[4]), FSType: fields[sep+1], Source: unescapeMount(fields[sep+2])})
	}
	return out, sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf finds the mount that holds the host path p (symlinks followed,
// as the service will follow them). A p that does not exist yet is
// placed by its nearest existing parent. The kernel names the mount
// (statx STATX_MNT_ID); on kernels before 5.8 the deepest mount point
// that is p or a parent of it is taken.
func mountOf(mounts []mount, p string) (mount, error) {
	for {
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) || p == "/" {
			break
		}
		p = filepath.Dir(p)
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return mount{}, &fs.PathError{Op: "statx", Path: p, Err: err}
	}
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		for _, m := range mounts {
			if uint64(m.ID) == stx.Mnt_id {
				return m, nil
			}
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return mount{}, err
	}
	best := mount{ID: -1}
	for _, m := range mounts { // later lines mount over earlier ones
		if (real == m.Dir || strings.HasPrefix(real, strings.TrimSuffix(m.Dir, "/")+"/")) && len(m.Dir) >= len(best.Dir) {
			best = m
		}
	}
	if best.ID < 0 {
		return mount{}, fmt.Errorf("%s: not beneath any mount of %s", real, mountsFile)
	}
	return best, nil
}

// MountError is a service's data that is not on a mount of its own,
// though its service.toml asks for one.
type MountError struct {
	Service string
	Data    string // var/db/<name>, a host path
	VarDB   string
	On      mount
}

func (e *MountError) Error() string {
	return fmt.Sprintf("%s asks for its data on a mount of its own (db_mount = true in its service.toml), but %s is on %s, like the rest of var: mount a volume on %s or on %s first",
		e.Service, e.Data, e.On, e.Data, e.VarDB)
}

// DataMountGuard is the daemon's start guard for root (supervise's
// SetStartGuard): a service with db_mount = true starts only while its
// data lies on a mount of its own, as systemd's RequiresMountsFor= keeps a
// unit from starting without its mounts.
func DataMountGuard(root string) func(*spec.Service) error {
	h := &Host{Root: root, root: tree{root}}
	return func(s *spec.Service) error {
		if !s.DBMount {
			return nil
		}
		return h.checkDataMount(s.Name)
	}
}

// checkDataMount returns a *MountError when var/db/<name> lies on the same
// mount as var.
func (h *Host) checkDataMount(name string) error {
	mounts, err := readMounts()
	if err != nil {
		return fmt.Errorf("db_mount of %s: %w", name, err)
	}
	data, err := mountOf(mounts, h.Path(dbRel(name)))
	if err != nil {
		return fmt.Errorf("db_mount of %s: %w", name, err)
	}
	parent, err := mountOf(mounts, h.Path("var"))
	if err != nil {
		return fmt.Errorf("db_mount of %s: %w", name, err)
	}
	if data.ID != parent.ID {
		return nil
	}
	return &MountError{Service: name, Data: h.Path(dbRel(name)), VarDB: h.Path(DBDir), On: data}
}
