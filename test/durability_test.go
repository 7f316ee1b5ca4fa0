package test

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Durability against a power cut, audited from the system calls: the
// kernel here has no device-mapper (no dm-flakey or dm-log-writes to drop
// the unsynced writes for real), so each host command runs under strace
// and the order of its renames, links, unlinks and syncs is checked
// against the two rules a power cut needs:
//
//   - data before name: a file renamed into place was fsynced first (or
//     its file system syncfs'd), so the name never points at lost data;
//   - name before done: every rename, symlink, unlink and mkdir is
//     followed by an fsync of its directory or a syncfs, before the process
//     exits, and before the journal of the op is removed: after a power cut
//     the journal is still there (and recovery settles the op) or all of
//     the op is on disk.
//
// Lock files are exempt: they hold nothing.
func TestDurableSyscallOrder(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("needs strace (apt-get install strace)")
	}
	h := newHostHome(t)
	img := func(v string) string {
		dir := filepath.Join(t.TempDir(), "www-dur")
		writeTree(t, dir, map[string]string{
			"service.toml":               "version = \"" + v + "\"\ncommand = [\"/bin/sleep\", \"1000\"]\ncopy = [\"etc/app/copied.conf\"]\n",
			"config/etc/app/linked.conf": "v" + v,
			"config/etc/app/copied.conf": "copy v" + v,
			"config/etc/app/v" + v:       v,
		})
		return dir
	}
	procfile := filepath.Join(t.TempDir(), "Procfile")
	writeTree(t, filepath.Dir(procfile), map[string]string{"Procfile": "web: /bin/sleep 1000\nworker: /bin/sleep 2000\n"})
	for _, args := range [][]string{
		{"provision"},
		{"image", "add", img("1.0.0")},
		{"image", "add", img("2.0.0")},
		{"deploy", "www-dur@1.0.0"},
		{"deploy", "www-dur@2.0.0"},
		{"rollback", "www-dur"},
		{"overlay", "www-dur"},
		{"remove", "www-dur", "--purge"},
		{"import", procfile, "--to", filepath.Join(h.root, "var/www")},
	} {
		t.Run(strings.Join(args[:1+min(1, len(args)-1)], " "), func(t *testing.T) {
			evs := h.traced(t, args...)
			if os.Getenv("UPKEEP_TRACE_DUMP") != "" {
				for _, e := range evs {
					t.Log(e.line)
				}
			}
			audit(t, evs)
		})
	}
}

// sysEvent is one successful system call of a traced run.
type sysEvent struct {
	call string
	dir  string // the directory it changed (mutations) or the path synced
	name string // mutations: the path made, replaced or removed; renames: the new name
	src  string // renames: the old name
	line string
}

func (e sysEvent) mutation() bool {
	return e.call != "fsync" && e.call != "fdatasync" && e.call != "syncfs" && e.call != "create"
}

var (
	callRE   = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)`)
	unfinRE  = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$`)
	resumeRE = regexp.MustCompile(`^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+)`)
	argRE    = regexp.MustCompile(`AT_FDCWD|-?\d+<([^>]*)>|"((?:[^"\\]|\\.)*)"|[A-Z_|]+|0[0-7]*|\d+`)
)

// traced runs upkeep with args under strace and returns its successful
// renames, symlinks, unlinks, mkdirs and syncs, in order.
func (h *hostHome) traced(t *testing.T, args ...string) []sysEvent {
	t.Helper()
	out := filepath.Join(t.TempDir(), "strace")
	cmd := exec.Command("strace", append([]string{"-f", "-qq", "-y", "-e", "signal=none", "-o", out,
		"-e", "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2,symlinkat,unlinkat,mkdirat,openat",
		plainBin, "--root", h.root, "--home", h.home}, args...)...)
	cmd.Dir = "/"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upkeep %s under strace: %v\n%s", strings.Join(args, " "), err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pending := map[string]string{} // pid -> the unfinished call's name and args
	var evs []sysEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		var call, rest, ret string
		if m := unfinRE.FindStringSubmatch(l); m != nil {
			pending[m[1]] = m[2] + "\x00" + m[3]
			continue
		} else if m := resumeRE.FindStringSubmatch(l); m != nil {
			p := strings.SplitN(pending[m[1]], "\x00", 2)
			delete(pending, m[1])
			if len(p) != 2 || p[0] != m[2] {
				t.Fatalf("strace: a resumed call without its start: %s", l)
			}
			call, rest, ret = m[2], p[1]+m[3], m[4]
		} else if m := callRE.FindStringSubmatch(l); m != nil {
			call, rest, ret = m[2], m[3], m[4]
		} else {
			continue
		}
		if ret != "0" && !(call == "openat" && !strings.HasPrefix(ret, "-")) {
			continue
		}
		var a []string // fds as their paths, strings unquoted
		for _, m := range argRE.FindAllStringSubmatch(rest, -1) {
			switch {
			case m[0] == "AT_FDCWD":
				a = append(a, "/")
			case m[1] != "":
				a = append(a, m[1])
			case strings.HasPrefix(m[0], `"`):
				s, err := strconv.Unquote(m[0])
				if err != nil {
					s = m[2]
				}
				a = append(a, s)
			default:
				a = append(a, m[0])
			}
		}
		at := func(dir, name string) string {
			if path.IsAbs(name) {
				return path.Clean(name)
			}
			return path.Join(dir, name)
		}
		e := sysEvent{call: call, line: l}
		switch call {
		case "fsync", "fdatasync", "syncfs":
			e.dir = a[0]
		case "rename":
			e.src, e.name = path.Clean(a[0]), path.Clean(a[1])
		case "renameat", "renameat2":
			e.src, e.name = at(a[0], a[1]), at(a[2], a[3])
			if call == "renameat2" && len(a) > 4 && strings.Contains(a[4], "RENAME_EXCHANGE") {
				e.call = "exchange"
			}
		case "symlinkat":
			e.name = at(a[1], a[2])
		case "unlinkat", "mkdirat":
			e.name = at(a[0], a[1])
		case "openat":
			if !strings.Contains(rest, "O_CREAT") {
				continue
			}
			e.call, e.name = "create", at(a[0], a[1])
		}
		if e.mutation() {
			e.dir = path.Dir(e.name)
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		t.Fatal("strace recorded nothing")
	}
	return evs
}

// renamedLater reports whether name is renamed by one of evs: a temporary
// file, whose new name is the change audited.
func renamedLater(evs []sysEvent, name string) bool {
	for _, e := range evs {
		if e.src == name {
			return true
		}
	}
	return false
}

// audit checks the two rules (see TestDurableSyscallOrder) on one run.
func audit(t *testing.T, evs []sysEvent) {
	t.Helper()
	symlinks := map[string]bool{}
	journalEnd := -1
	for i, e := range evs {
		if e.call == "unlinkat" && strings.Contains(e.name, "/var/lib/upkeep/journal/") {
			journalEnd = i
		}
	}
	mutations := 0
	for i, e := range evs {
		switch e.call {
		case "symlinkat":
			symlinks[e.name] = true
		}
		if e.call == "create" && !renamedLater(evs[i+1:], e.name) && !strings.HasPrefix(e.name, "/dev/") && !strings.HasPrefix(e.name, "/proc/") {
			e.call, e.dir = "created", path.Dir(e.name) // a new name of its own: audited as a change
		}
		if !e.mutation() || strings.HasSuffix(e.name, ".lock") {
			continue
		}
		mutations++
		if (e.call == "rename" || e.call == "renameat" || e.call == "renameat2") && !symlinks[e.src] {
			// Since the source was made (a file: opened with O_CREAT; a
			// directory: mkdir), an fsync of it or a syncfs.
			made := -1
			for j, p := range evs[:i] {
				if (p.call == "create" || p.call == "mkdirat") && p.name == e.src {
					made = j
				}
			}
			synced := false
			for _, p := range evs[made+1 : i] {
				if (p.call == "fsync" || p.call == "fdatasync") && p.dir == e.src || p.call == "syncfs" {
					synced = true
				}
			}
			if !synced {
				t.Errorf("renamed before its data was synced: %s", e.line)
			}
		}
		end := len(evs)
		if journalEnd > i {
			end = journalEnd
		}
		synced := false
		for _, n := range evs[i+1 : end] {
			// A change in a directory removed later is covered by that
			// removal, which is audited in its own right.
			if n.call == "syncfs" || n.call == "fsync" && n.dir == e.dir || n.call == "unlinkat" && n.name == e.dir {
				synced = true
				break
			}
		}
		if !synced {
			when := "before the process exits"
			if end == journalEnd {
				when = "before the journal is removed"
			}
			t.Errorf("not synced %s: %s", when, e.line)
		}
	}
	if mutations == 0 {
		t.Errorf("the command changed nothing on disk: nothing was audited")
	}
	t.Logf("%d changes, %d system calls audited", mutations, len(evs))
}
