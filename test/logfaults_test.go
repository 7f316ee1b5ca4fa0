package test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The faults of docs/reliability.md ("Logs under faults"), set up for real against the
// built daemon: a full var/log, the daemon at its descriptor limit, a
// service flooding its pipe. Each test logs its figures as "figure: …".

// mountTmpfs mounts a tmpfs of size at dir. Call it before h.daemon: the
// cleanups run in reverse, so the daemon stops before the unmount.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a tmpfs as root: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
}

// fill takes every free byte of the file system dir is on, with a file
// that it returns.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := topUp(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// topUp appends to f until the file system has no byte left.
func topUp(f *os.File) error {
	for _, chunk := range []int{1 << 20, 64 << 10, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	return nil
}

// fillAndHold is fill, and keeps the file system full until the returned
// function is called, which gives all of it back: the archive frees room
// now and then (a compression that ends removes its plain file), and a
// disk that other writers keep full takes it back at once.
func fillAndHold(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := fill(t, dir)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
				if err := topUp(f); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	var once bool
	free = func() {
		if once {
			return
		}
		once = true
		close(stop)
		if err := <-done; err != nil {
			t.Error(err)
		}
		f.Close()
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(free)
	return free
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// metric reads one series from the daemon's /metrics; -1 when absent.
func metric(t *testing.T, port, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// logStatus is what status --json says of a service's logs.
type logStatus struct {
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Dropped  int64  `json:"log_dropped_bytes"`
	LogError string `json:"log_error"`
}

func (h *host) logStatus(name string) logStatus {
	h.t.Helper()
	out, errOut, code := h.cli("status", "--json", name)
	if !answeredCode(code) {
		h.t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var list []logStatus
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		h.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return list[0]
}

// logFile is one file of a log, oldest first by its place in the history.
type logFile struct {
	name  string
	lines []string
	age   int // 0 the live file; N for base.N(.gz)
}

// readHistory reads every file of the log base in dir, compressed ones
// too, oldest first; hidden files (the archive's temp and discarded files)
// are returned apart. The archive works on meanwhile: a plain file whose
// compressed twin is there already is left out (the archive removes it
// next), and a file gone between the listing and its reading makes ok
// false, to read again.
func readHistory(t *testing.T, dir, base string) (files []logFile, hidden []string, ok bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.Name()] = true
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "."+base) {
			hidden = append(hidden, name)
			continue
		}
		rest, ok := strings.CutPrefix(name, base)
		if !ok {
			continue
		}
		lf := logFile{name: name}
		if rest != "" && listed[name+".gz"] {
			continue
		}
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rest, "."), ".gz"))
			if err != nil {
				continue
			}
			lf.age = n
		}
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(name, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) > 0 {
			if b[len(b)-1] != '\n' {
				t.Errorf("%s ends inside a line: %q", name, b[max(0, len(b)-40):])
			}
			lf.lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		}
		files = append(files, lf)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].age == 0 || files[j].age == 0 {
			return files[j].age == 0 && files[i].age != 0
		}
		return files[i].age > files[j].age
	})
	return files, hidden, true
}

// checkHistory checks that every line of the history is whole and that
// their numbers rise from the oldest file to the live one (nothing
// duplicated, no file out of its place), and returns how many there are.
func checkHistory(t *testing.T, files []logFile, line *regexp.Regexp) int {
	t.Helper()
	last, n := -1, 0
	for _, f := range files {
		for _, l := range f.lines {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: torn line %q", f.name, l)
			}
			i, _ := strconv.Atoi(m[1])
			if i <= last {
				t.Fatalf("%s: line %d after line %d", f.name, i, last)
			}
			last = i
			n++
		}
	}
	return n
}

const (
	writerPad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	// writerLine is the length of the writer's lines: "line %08d PAD\n".
	writerLine = int64(5 + 8 + 1 + len(writerPad) + 1)
)

var writerRE = regexp.MustCompile(`^line (\d{8}) ` + writerPad + `$`)

// writerTOML is a service that writes numbered lines steadily, a few
// thousand a second in bursts, and counts them outside var/log: every
// 100 lines in count, and, when stopped, the lines written in final (that
// number or one more: the trap runs between two commands).
const writerTOML = `script = '''
pad=` + writerPad + `
i=0
trap 'echo "$i" > "$HOME/final"; exit 0' TERM
while :; do
  printf 'line %08d %s\n' "$i" "$pad"
  i=$((i+1))
  case $i in
  *000) echo "$i" > "$HOME/count"; sleep 0.01;;
  *00) echo "$i" > "$HOME/count";;
  esac
done
'''
[log]
size = "256k"
rotate = -1
compress = true
[stop]
timeout = "5s"
`

// TestLogDiskFull: var/log is a tmpfs that a filler file fills while a
// service writes. The service is never blocked (it writes on, many times a
// pipe's worth), every line that cannot be written is counted (metric,
// status, event), no line is torn, forced and size rotations with
// compression leave a history `upkeep logs` reads back whole, writing
// resumes as soon as there is room, and what was written plus what was
// counted as dropped is exactly what the service wrote.
func TestLogDiskFull(t *testing.T) {
	h := newHost(t)
	// The build users run: this test needs the archive to keep up with a
	// service writing as fast as it can, and compress/flate under the race
	// detector is several times slower (the archive then never catches up
	// on a loaded machine). The other daemons of this package are
	// race-checked.
	h.daemonBin = plainBin
	logDir := filepath.Join(h.root, "var/log")
	mountTmpfs(t, logDir, "32m")
	h.write("service-writer", writerTOML)
	port := freePort(t)
	h.daemon("--metrics", "127.0.0.1:"+port)
	home := filepath.Join(h.root, "var/www/service-writer")
	// The count file is rewritten in place (truncated, then written): a
	// read may find it empty. The count only rises; keep the last one.
	seen := 0
	progress := func() int {
		b, _ := os.ReadFile(filepath.Join(home, "count"))
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > seen {
			seen = n
		}
		return seen
	}
	h.eventually(20*time.Second, "two size rotations", func() bool {
		_, err1 := os.Stat(filepath.Join(logDir, "service-writer.log.2"))
		_, err2 := os.Stat(filepath.Join(logDir, "service-writer.log.2.gz"))
		return err1 == nil || err2 == nil
	})
	h.eventually(10*time.Second, "service-writer running", h.allRunning("service-writer"))
	pid := h.logStatus("service-writer").Pid
	// The fill must come when the archive has no backlog: each plain file
	// it compresses afterwards would free most of its size again, and the
	// disk would not stay full.
	h.eventually(20*time.Second, "compression to be up to date", func() bool {
		files, hidden, ok := readHistory(t, logDir, "service-writer.log")
		for _, f := range files {
			if f.age > 1 && !strings.HasSuffix(f.name, ".gz") {
				return false
			}
		}
		return ok && len(hidden) == 0
	})

	free := fillAndHold(t, logDir)
	h.eventually(10*time.Second, "the sink to report the full disk", func() bool {
		return strings.Contains(h.logStatus("service-writer").LogError, "no space left on device")
	})
	h.eventually(5*time.Second, "a count from the writer", func() bool { return progress() > 0 })
	atFault := progress()
	// Forced rotations while full: renaming needs no room; compression
	// does, fails, and leaves the plain file.
	for range 2 {
		if out, errOut, code := h.cli("rotate", "service-writer"); code != 0 {
			t.Fatalf("rotate while full: exit %d\n%s%s", code, out, errOut)
		}
	}
	// Many pipefuls (a pipe holds at most 1 MiB here) written while
	// nothing can be: the service was never blocked on its pipe.
	h.eventually(60*time.Second, "the writer to write 8 MiB while var/log is full", func() bool {
		return int64(progress()-atFault)*writerLine > 8<<20
	})
	writtenInFault := int64(progress()-atFault) * writerLine
	st := h.logStatus("service-writer")
	if st.State != "running" || st.Pid != pid {
		t.Fatalf("the writer is %s, pid %d (was %d)", st.State, st.Pid, pid)
	}
	series := `upkeep_log_dropped_bytes_total{file="service-writer.log",service="service-writer"}`
	// Not all of it: up to a pipeful may still be in the pipe, and a
	// nearly full disk takes a few writes whenever the archive frees a
	// file (a compression that ends, a temp file removed). The exact
	// account is taken at the end.
	if got := metric(t, port, series); got < float64(writtenInFault-4<<20) {
		t.Errorf("%s = %v after %d bytes written while full", series, got, writtenInFault)
	}
	if got := metric(t, port, `upkeep_log_writable{file="service-writer.log",service="service-writer"}`); got != 0 {
		t.Errorf("upkeep_log_writable = %v while full", got)
	}

	live := filepath.Join(logDir, "service-writer.log")
	before, err := os.Stat(live)
	if err != nil {
		t.Fatal(err)
	}
	free()
	freed := time.Now()
	h.eventually(5*time.Second, "a new line on disk", func() bool {
		fi, err := os.Stat(live)
		return err == nil && (fi.Size() > before.Size() || !os.SameFile(fi, before) && fi.Size() > 0)
	})
	resumed := time.Since(freed)
	t.Logf("figure: first new line on disk %v after space came back (%d bytes written by the service while full)", resumed, writtenInFault)
	h.eventually(5*time.Second, "the recovery event", func() bool {
		out, _, _ := h.cli("events")
		return regexp.MustCompile(`var/log/service-writer\.log: dropped \d+ bytes while var/log was full`).MatchString(out)
	})
	events, _, _ := h.cli("events", "service-writer")
	if !strings.Contains(events, "var/log/service-writer.log: no space left on device; dropping output") {
		t.Errorf("no event for the start of the fault:\n%s", events)
	}
	// A nearly full disk flaps (the archive frees a file, a few writes
	// fit): one condition all the same, reported once.
	began, ended := strings.Count(events, "service-writer.log: no space left on device; dropping output"), strings.Count(events, "while var/log was full; writing again")
	if began != 1 || ended != 1 {
		t.Errorf("the fault was reported %d times, its end %d times:\n%s", began, ended, events)
	}
	t.Logf("figure: log events for the fault: %d start, %d end, %d from the archive (compression failing)", began, ended, strings.Count(events, "service-writer.log: compress "))
	if got := metric(t, port, `upkeep_log_writable{file="service-writer.log",service="service-writer"}`); got != 1 {
		t.Errorf("upkeep_log_writable = %v after the fault", got)
	}
	// A rotation with room again: compression catches up on the files
	// the fault left plain.
	if out, errOut, code := h.cli("rotate", "service-writer"); code != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := h.cli("stop", "service-writer"); code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errOut)
	}
	var final int
	h.eventually(10*time.Second, "the writer's final count", func() bool {
		b, err := os.ReadFile(filepath.Join(home, "final"))
		final, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && final > 0
	})

	// Every byte the service wrote is on disk or counted as dropped.
	var files []logFile
	var hidden []string
	var kept int
	var dropped float64
	h.eventually(10*time.Second, "kept and dropped to add up to what was written", func() bool {
		var ok bool
		if files, hidden, ok = readHistory(t, logDir, "service-writer.log"); !ok {
			return false
		}
		kept = checkHistory(t, files, writerRE)
		dropped = metric(t, port, series)
		got := int64(kept)*writerLine + int64(dropped)
		return got == int64(final)*writerLine || got == int64(final+1)*writerLine
	})
	t.Logf("figure: %d lines written, %d kept in %d files, %.0f bytes dropped", final, kept, len(files), dropped)
	if st := h.logStatus("service-writer"); st.Dropped != int64(dropped) {
		t.Errorf("status says %d bytes dropped, the metric %v", st.Dropped, dropped)
	}
	h.eventually(10*time.Second, "compression to catch up and no temp files", func() bool {
		var ok bool
		if files, hidden, ok = readHistory(t, logDir, "service-writer.log"); !ok {
			return false
		}
		for _, f := range files {
			if f.age > 1 && !strings.HasSuffix(f.name, ".gz") {
				return false
			}
		}
		return len(hidden) == 0
	})
	// The daemon's own event log shares the full disk: its lines are
	// whole too (what did not fit is missing, not cut).
	if b, err := os.ReadFile(filepath.Join(logDir, "upkeep.log")); err != nil {
		t.Error(err)
	} else {
		for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if !json.Valid([]byte(l)) {
				t.Errorf("upkeep.log:%d: torn line %q", i+1, l)
			}
		}
	}
	out, errOut, code := h.cli("logs", "service-writer", "--stdout", "-n", "-1")
	if code != 0 {
		t.Fatalf("logs: exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != kept {
		t.Errorf("upkeep logs read %d lines back, the files hold %d", n, kept)
	}
}

// openFDs counts the descriptors pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// setNofile sets pid's soft RLIMIT_NOFILE (prlimit(2), as prlimit(1)
// --pid does); the first call arranges for the old limit to come back at
// cleanup.
func setNofile(t *testing.T, pid int, soft uint64, restore *unix.Rlimit) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	if restore.Max == 0 {
		*restore = old
		t.Cleanup(func() { unix.Prlimit(pid, unix.RLIMIT_NOFILE, restore, nil) })
	}
	lim := unix.Rlimit{Cur: soft, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
}

// TestDaemonAtDescriptorLimit: the daemon's RLIMIT_NOFILE is lowered to a
// few more than it has open, and a service is started. Its start cannot
// get its pipes: it goes to backoff with the error in status and events;
// the running service keeps its pid and its log; status answers. With no
// descriptor free at all, accept(2) itself fails; Go's server retries
// (5 ms doubling to 1 s) and the waiting status is answered once one is
// free. With the limit back, the service starts on its next backoff.
func TestDaemonAtDescriptorLimit(t *testing.T) {
	h := newHost(t)
	h.write("service-steady", `script = "while :; do echo tick; sleep 0.05; done"
`)
	h.write("service-late", `command = ["/bin/sleep", "1000"]
autostart = false
[restart]
policy = "always"
backoff = "100ms"
max_backoff = "500ms"
limit = 1000
`)
	pid := h.daemon().Process.Pid
	h.eventually(10*time.Second, "service-steady running", h.allRunning("service-steady"))
	steady := h.logStatus("service-steady").Pid
	steadyLog := filepath.Join(h.root, "var/log/service-steady.log")
	size := func() int64 {
		fi, err := os.Stat(steadyLog)
		if err != nil {
			return 0
		}
		return fi.Size()
	}

	var restore unix.Rlimit
	open := openFDs(t, pid)
	setNofile(t, pid, uint64(open+3), &restore)
	if out, errOut, code := h.cli("start", "--no-wait", "service-late"); code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	var st logStatus
	h.eventually(10*time.Second, "service-late in backoff for want of descriptors", func() bool {
		st = h.logStatus("service-late")
		return st.State == "backoff" && strings.Contains(st.LastExit, "too many open files")
	})
	t.Logf("service-late: %s, %s", st.State, st.LastExit)
	if out, _, _ := h.cli("events", "service-late"); !strings.Contains(out, "-> backoff") || !strings.Contains(out, "too many open files") {
		t.Errorf("events do not show the failed start:\n%s", out)
	}
	grown := size()
	h.eventually(5*time.Second, "service-steady's log to grow at the limit", func() bool { return size() > grown })
	if got := h.logStatus("service-steady"); got.State != "running" || got.Pid != steady {
		t.Fatalf("service-steady is %s, pid %d (was %d)", got.State, got.Pid, steady)
	}

	// No descriptor free at all, not even one for a connection: a soft
	// limit of 3 leaves the daemon what it holds (a new descriptor takes
	// the lowest free number, which may be a hole below any count) and
	// nothing more.
	setNofile(t, pid, 3, &restore)
	type answer struct {
		at  time.Time
		out []byte
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		out, err := exec.Command(bin, "--root", h.root, "status").CombinedOutput()
		answered <- answer{time.Now(), out, err}
	}()
	pending := time.NewTimer(500 * time.Millisecond)
	select {
	case a := <-answered:
		t.Fatalf("status at the limit: %v\n%s", a.err, a.out)
	case <-pending.C:
	}
	grown = size()
	h.eventually(5*time.Second, "service-steady's log to grow with no descriptor free", func() bool { return size() > grown })
	setNofile(t, pid, uint64(open+64), &restore)
	freed := time.Now()
	select {
	case a := <-answered:
		if ee, ok := a.err.(*exec.ExitError); (a.err != nil && !(ok && answeredCode(ee.ExitCode()))) || !strings.Contains(string(a.out), "service-late") {
			t.Fatalf("status after the limit: %v\n%s", a.err, a.out)
		}
		t.Logf("figure: a status waiting at the descriptor limit answered %v after descriptors came free", max(a.at.Sub(freed), 0))
	case <-time.After(10 * time.Second):
		t.Fatal("status not answered 10s after descriptors came free")
	}

	// The limit back: the next backoff starts it.
	setNofile(t, pid, restore.Cur, &restore)
	h.eventually(10*time.Second, "service-late running", h.allRunning("service-late"))
	if got := h.logStatus("service-steady"); got.Pid != steady {
		t.Errorf("service-steady's pid changed: %d, was %d", got.Pid, steady)
	}
	if r := h.logStatus("service-late").Restarts; r < 1 {
		t.Errorf("service-late started without going through backoff (restarts %d)", r)
	}
	// The failed starts leaked nothing: stopped, service-late holds only
	// its two log files.
	if out, errOut, code := h.cli("stop", "service-late"); code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errOut)
	}
	var now int
	h.eventually(5*time.Second, "the daemon's descriptors back to what it had, plus two log files", func() bool {
		now = openFDs(t, pid)
		return now <= open+2
	})
	t.Logf("descriptors: %d before, %d after", open, now)
}

// vm reads a field (VmHWM, VmRSS) of /proc/pid/status, in bytes.
func vm(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// floodBound is what the daemon's peak resident memory may grow by while a
// service floods its pipe, from the design: the drain's buffer is at most
// 256 KiB a stream (two streams), the pipe's own pages are the kernel's,
// and the archive compresses at most two files at once, each with a gzip
// writer (about 1 MiB) and a 256 KiB buffer; the rest is the Go runtime's
// headroom (GOGC=50) over that and a few status calls. Unbounded buffering
// of a 512 MiB flood would be far beyond it.
const floodBound = 16 << 20

// TestFloodMemoryBounded: a service writes 512 MiB as fast as it can,
// once to a log directory with room (spliced to the file, rotated by size
// and compressed as it goes; nothing dropped) and once to a full one (read
// and dropped).
// The daemon's peak RSS (VmHWM, reset before the flood) stays within
// floodBound of what it was.
func TestFloodMemoryBounded(t *testing.T) {
	for _, full := range []bool{false, true} {
		name := "room"
		if full {
			name = "full"
		}
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			// The build users run: the race detector's shadow memory
			// would be most of what this measures.
			h.daemonBin = plainBin
			logDir := filepath.Join(h.root, "var/log")
			// Room for the whole flood: the archive's cleanup runs at idle
			// priority, which a flood on two cores leaves it little of.
			mountTmpfs(t, logDir, "640m")
			const total = 512 << 20
			h.write("service-flood", fmt.Sprintf(`script = "yes 'flood %s' | head -c %d"
autostart = false
[restart]
policy = "never"
[log]
size = "64M"
rotate = 2
compress = true
`, writerPad, total))
			cmd := h.daemon()
			pid := cmd.Process.Pid
			h.eventually(10*time.Second, "the control socket", func() bool { return h.status() != nil })
			if full {
				fill(t, logDir)
			}
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
				t.Fatalf("reset VmHWM (clear_refs 5): %v", err)
			}
			base := vm(t, pid, "VmRSS")
			began := time.Now()
			if out, errOut, code := h.cli("start", "--no-wait", "service-flood"); code != 0 {
				t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
			}
			h.eventually(120*time.Second, "the flood to end", func() bool {
				st := h.logStatus("service-flood")
				return st.State == "exited"
			})
			took := time.Since(began)
			peak := vm(t, pid, "VmHWM")
			st := h.logStatus("service-flood")
			t.Logf("figure: %s: %d MiB in %v (%.0f MiB/s), %d bytes dropped; daemon RSS %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
				name, total>>20, took.Round(time.Millisecond), float64(total>>20)/took.Seconds(), st.Dropped,
				float64(base)/(1<<20), float64(peak)/(1<<20), float64(peak-base)/(1<<20))
			if full && st.Dropped < total/2 {
				t.Errorf("only %d bytes dropped of %d written to a full disk", st.Dropped, total)
			}
			if !full && st.Dropped != 0 {
				t.Errorf("%d bytes dropped with room for all", st.Dropped)
			}
			if peak-base > floodBound {
				t.Errorf("the daemon's peak RSS grew by %d bytes during the flood, more than %d", peak-base, floodBound)
			}
		})
	}
}
