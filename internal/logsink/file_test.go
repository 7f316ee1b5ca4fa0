package logsink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// fileWriter is a service that writes its own log, as nginx does: LINES
// numbered lines to LOG (O_APPEND), in writes of whole lines of about BUF
// bytes, at RATE_MB MB/s when set; on SIGUSR1 it opens LOG again. It
// prints "ready" once the signal is handled. With PAUSES=K it stops K
// times at even intervals, after a whole write: it prints "paused" and
// goes on when it reads a line.
func fileWriter() int {
	path := os.Getenv("LOG")
	n, _ := strconv.ParseInt(os.Getenv("LINES"), 10, 64)
	size, _ := strconv.Atoi(os.Getenv("BUF"))
	size = max(size, lineLen)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return f
	}
	f := open()
	fmt.Println("ready")
	var pace *paced
	if rate, _ := strconv.ParseInt(os.Getenv("RATE_MB"), 10, 64); rate > 0 {
		pace = &paced{w: io.Discard, rate: float64(rate) * 1e6, start: time.Now()}
	}
	pauses, _ := strconv.ParseInt(os.Getenv("PAUSES"), 10, 64)
	stdin := bufio.NewReader(os.Stdin)
	buf := make([]byte, 0, size+lineLen)
	flush := func() {
		if pace != nil {
			pace.Write(buf)
		}
		if _, err := f.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf = buf[:0]
		select {
		case <-usr1:
			f.Close()
			f = open()
		default:
		}
	}
	for i := range n {
		if buf = appendLine(buf, i); len(buf) >= size {
			flush()
		}
		if pauses > 0 && (i+1)%(n/(pauses+1)) == 0 && (i+1)/(n/(pauses+1)) <= pauses {
			flush()
			fmt.Println("paused")
			if _, err := stdin.ReadString('\n'); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	flush()
	f.Close()
	return 0
}

// startFileWriter starts fileWriter on path and waits for its "ready".
func startFileWriter(t *testing.T, path string, lines int64, rate int) *exec.Cmd {
	t.Helper()
	return startPausingWriter(t, path, lines, rate, 0).cmd
}

// pausingWriter is a fileWriter that stops at its pauses until resumed.
type pausingWriter struct {
	cmd    *exec.Cmd
	paused chan struct{} // one value per pause
	stdin  io.WriteCloser
}

// resume lets the writer go on after a pause.
func (w *pausingWriter) resume() error {
	_, err := io.WriteString(w.stdin, "go\n")
	return err
}

// startPausingWriter starts fileWriter with PAUSES=pauses and waits for
// its "ready"; the writer is killed when the test ends, should it still
// wait at a pause.
func startPausingWriter(t *testing.T, path string, lines int64, rate, pauses int) *pausingWriter {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOGSINK_HELPER=filewriter", "LOG="+path, "LINES="+strconv.FormatInt(lines, 10), "BUF=4096",
		"RATE_MB="+strconv.Itoa(rate), "PAUSES="+strconv.Itoa(pauses))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	r := bufio.NewReader(out)
	if l, err := r.ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("writer: %q %v", l, err)
	}
	w := &pausingWriter{cmd: cmd, paused: make(chan struct{}, pauses), stdin: stdin}
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if l == "paused\n" {
				w.paused <- struct{}{}
			}
		}
	}()
	return w
}

// reopenSignal tells the writer to reopen its file. A writer that has
// just finished has nothing to reopen: the rotation that raced with its
// exit is not a failure.
func reopenSignal(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// writerPauses is how many rotations the File tests drive at the writer's
// pauses, whatever the speed of the machine.
const writerPauses = 5

// rotateWhile forces a rotation of f every interval until w exits, and one
// at each of its pauses, with the writer stopped after a whole write; it
// returns how many happened. The timed ones land anywhere in a write, the
// paused ones make sure that there are rotations however slow the run: a
// writer that is not done within a deadline that holds on a loaded
// machine fails the test.
func rotateWhile(t *testing.T, f *File, w *pausingWriter, every time.Duration) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	n, paused := 0, 0
	rotate := func() {
		r, err := f.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if r.Rotated {
			n++
		}
	}
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatal(err)
			}
			if paused != writerPauses {
				t.Fatalf("the writer paused %d times, want %d", paused, writerPauses)
			}
			return n
		case <-w.paused:
			paused++
			before := n
			rotate()
			if n == before {
				t.Fatalf("pause %d: nothing rotated", paused)
			}
			if err := w.resume(); err != nil {
				t.Fatal(err)
			}
		case <-tick.C:
			rotate()
		case <-deadline.C:
			t.Fatalf("the writer is not done after 2m (%d rotations, %d pauses)", n, paused)
		}
	}
}

// TestFileRenameReopen: a service writing its own file at 20 MB/s, renamed
// every 20 ms and told to reopen with SIGUSR1: every line is in exactly
// one file.
func TestFileRenameReopen(t *testing.T) {
	const n = 200_000 // 12 MB: about 0.6 s
	dir := filepath.Join(t.TempDir(), "app")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "access.log")
	w := startPausingWriter(t, path, n, 20, writerPauses)
	f := NewFile(path, spec.Log{When: spec.Untimed, Rotate: -1, Compress: true, DelayCompress: true}, Declared{
		Reopen: func() error { return reopenSignal(w.cmd) },
		Within: filepath.Dir(dir),
	})
	f.Start()
	rotations := rotateWhile(t, f, w, 20*time.Millisecond)
	f.Close()
	f.Wait()
	files := readLog(t, dir, "access.log")
	t.Logf("%d lines, %d rotations, %d files", n, rotations, len(files))
	if rotations < writerPauses {
		t.Errorf("%d rotations, want at least %d", rotations, writerPauses)
	}
	checkNumbered(t, files, n)
}

// TestFileCopyTruncate: the same service, its file copied and truncated
// every 20 ms. copytruncate loses what is written between the copy and
// the truncate: the loss is measured and reported, not asserted away.
func TestFileCopyTruncate(t *testing.T) {
	const n = 200_000
	dir := filepath.Join(t.TempDir(), "app")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "access.log")
	w := startPausingWriter(t, path, n, 20, writerPauses)
	f := NewFile(path, spec.Log{When: spec.Untimed, Rotate: -1}, Declared{CopyTruncate: true, Within: filepath.Dir(dir)})
	f.Start()
	rotations := rotateWhile(t, f, w, 20*time.Millisecond)
	f.Close()
	f.Wait()
	files := readLogLoose(t, dir, "access.log")
	lost, torn, dup := countLines(files, n)
	t.Logf("copytruncate: %d lines at 20 MB/s, %d rotations: lost %d (%.3f %%), duplicated %d, torn %d",
		n, rotations, lost, 100*float64(lost)/n, dup, torn)
	if rotations < writerPauses {
		t.Errorf("%d rotations, want at least %d", rotations, writerPauses)
	}
	if dup > 0 {
		t.Errorf("%d lines duplicated", dup)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > 10<<20 {
		t.Errorf("live file not truncated: %v %v", st, err)
	}
}

// TestFileRefuses: what logrotate refuses to rotate (a symbolic link, a
// file with another hard link), and a directory that leads outside
// Within, are left alone and reported.
func TestFileRefuses(t *testing.T) {
	root := t.TempDir()
	within := filepath.Join(root, "var", "log")
	secret := filepath.Join(root, "etc", "shadow")
	os.MkdirAll(filepath.Join(within, "app"), 0o755)
	os.MkdirAll(filepath.Dir(secret), 0o755)
	os.WriteFile(secret, []byte("root:x\n"), 0o600)
	passwd := filepath.Join(root, "etc", "passwd")
	os.WriteFile(passwd, []byte("root:x\n"), 0o644)
	os.Symlink(filepath.Join(root, "etc"), filepath.Join(within, "evil"))
	link := filepath.Join(within, "app", "link.log")
	os.Symlink(secret, link)
	hard := filepath.Join(within, "app", "hard.log")
	os.Link(secret, hard)
	for _, path := range []string{link, hard, filepath.Join(within, "evil", "passwd")} {
		for _, copy := range []bool{false, true} {
			f := NewFile(path, spec.Log{When: spec.Untimed, Rotate: 3}, Declared{CopyTruncate: copy, Within: within})
			if _, err := f.Rotate(); !errors.Is(err, ErrUnsafe) {
				t.Errorf("%s (copytruncate %v): %v, want ErrUnsafe", path, copy, err)
			}
		}
	}
	for _, p := range []string{secret, passwd} {
		if b, _ := os.ReadFile(p); string(b) != "root:x\n" {
			t.Errorf("%s now holds %q", p, b)
		}
	}
	if got := names(t, filepath.Join(root, "etc")); !reflect.DeepEqual(got, []string{"passwd", "shadow"}) {
		t.Errorf("etc holds %q", got)
	}
	if got := names(t, filepath.Join(within, "app")); !reflect.DeepEqual(got, []string{"hard.log", "link.log"}) {
		t.Errorf("files %q", got)
	}
}

// TestFileRenameCreates: after the rename, a new file with the old one's
// mode is in place, for a service that reopens without O_CREAT; notifempty
// and missingok hold as for a Sink.
func TestFileRenameCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	os.WriteFile(path, []byte("one\n"), 0o604)
	reopened := 0
	f := NewFile(path, spec.Log{When: spec.Untimed, Rotate: 2, NotIfEmpty: true, MissingOK: true}, Declared{Reopen: func() error { reopened++; return nil }})
	if r, err := f.Rotate(); err != nil || !r.Rotated || r.To != path+".1" {
		t.Fatalf("Rotate: %+v %v", r, err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 || st.Mode().Perm() != 0o604 {
		t.Errorf("new file: %v %v", st, err)
	}
	if r, err := f.Rotate(); err != nil || r.Rotated || reopened != 1 {
		t.Errorf("an empty file rotated: %+v %v, %d reopens", r, err, reopened)
	}
	os.Remove(path)
	if r, err := f.Rotate(); err != nil || r.Rotated {
		t.Errorf("a missing file: %+v %v", r, err)
	}
}

// TestFileBySize: with a size criterion the file is looked at every
// pollEvery and rotated once it has reached the size.
func TestFileBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	f := NewFile(path, spec.Log{When: spec.Untimed, Size: 1000, Rotate: 2}, Declared{CopyTruncate: true})
	os.WriteFile(path, make([]byte, 999), 0o644)
	f.bySize()
	if exists(path + ".1") {
		t.Fatal("rotated below the size")
	}
	f.pollEvery = 5 * time.Millisecond
	f.Start()
	defer f.Close()
	os.WriteFile(path, make([]byte, 1000), 0o644)
	eventually(t, 5*time.Second, "not rotated by size", func() bool { return exists(path + ".1") })
}

// A pattern stands for the logs it matches, never for their rotated
// files, hidden files, symlinks or directories.
func TestMatches(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"access.log", "error.log", "access.log.1", "access.log.2.gz", "old.log.3",
		".access.log.1.gz.tmp", "notes.txt", "app.log-20261124", "app.log-20261123.gz"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub.log"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link.log"))
	cfg := spec.DefaultLog()
	for _, tc := range []struct {
		pattern string
		dateext bool
		want    []string
	}{
		{"*.log", false, []string{"access.log", "error.log"}},
		{"*", false, []string{"access.log", "app.log-20261123.gz", "app.log-20261124", "error.log", "notes.txt"}},
		{"*", true, []string{"access.log", "access.log.1", "access.log.2.gz", "error.log", "notes.txt", "old.log.3"}},
		{"access.log*", false, []string{"access.log"}},
		{"[ae]*.log", false, []string{"access.log", "error.log"}},
	} {
		c := cfg
		c.DateExt = tc.dateext
		got, err := Matches(filepath.Join(dir, tc.pattern), c)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got {
			names = append(names, filepath.Base(p))
		}
		if strings.Join(names, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s (dateext %v): %v, want %v", tc.pattern, tc.dateext, names, tc.want)
		}
	}
}

// Lookup names only declared files, or files a pattern stands for.
func TestLookup(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/log/web")
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"a.log", "a.log.1", "b.log"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	files := []spec.LogFile{
		{Path: "/var/log/web/*.log", Abs: filepath.Join(dir, "*.log"), Pattern: true, Log: spec.DefaultLog()},
		{Path: "var/log/app/own.txt", Abs: filepath.Join(root, "var/log/app/own.txt"), Log: spec.DefaultLog()},
	}
	for _, p := range []string{"/var/log/web/b.log", "var/log/web/b.log", filepath.Join(dir, "b.log")} {
		if f, err := Lookup(root, files, p); err != nil || f.Abs != filepath.Join(dir, "b.log") {
			t.Errorf("%s: %v %v", p, f.Abs, err)
		}
	}
	if f, err := Lookup(root, files, "/var/log/app/own.txt"); err != nil || f.Path != "var/log/app/own.txt" {
		t.Errorf("own.txt: %+v %v", f, err)
	}
	for p, want := range map[string]string{
		"/var/log/web/*.log":   "is a pattern; name one of its files: /var/log/web/a.log, /var/log/web/b.log",
		"/var/log/web/a.log.1": "is not one of its files",
		"/etc/passwd":          "is not one of its files: /var/log/web/*.log, var/log/app/own.txt",
		"../../etc/shadow":     "is not one of its files",
	} {
		if _, err := Lookup(root, files, p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want …%s", p, err, want)
		}
	}
}
