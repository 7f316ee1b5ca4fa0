package supervise

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"upkeep/internal/api"
)

// ownWriter is a service that writes numbered lines to its own file
// (var/log/app/own.log) as fast as a shell can, until the file "stop"
// appears in the root; with reopen, it opens the file again on SIGUSR1, as
// nginx does. It writes how many lines it wrote to "count".
func ownWriter(root, reopen, file string) string {
	log := filepath.Join(root, "var/log/app/own.log")
	trap := ""
	if reopen != "" {
		trap = "trap 'exec 3>>" + log + "' USR1\n"
	}
	return `script = '''
exec 3>>` + log + `
` + trap + `i=0
while :; do
  echo "$i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" >&3
  i=$((i+1))
  if [ $((i % 100)) -eq 0 ] && [ -e ` + filepath.Join(root, "stop") + ` ]; then break; fi
done
echo $i > ` + filepath.Join(root, "count") + `
'''
ready_after = "0s"
[restart]
policy = "never"
[log]
when = "never"
rotate = -1
compress = false
[[log.file]]
path = "var/log/app/own.log"
` + file
}

// ownLines counts, over own.log and its rotated files, how often each
// number below the count the service wrote appears, and the lines that are
// not whole.
func ownLines(t *testing.T, h *host) (lost, dup, torn, total int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, "count"))
	if err != nil {
		t.Fatal(err)
	}
	total, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	seen := make([]int, total)
	dir := filepath.Join(h.root, "var/log/app")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			num, rest, ok := strings.Cut(l, " ")
			i, err := strconv.Atoi(num)
			if l == "" {
				continue
			}
			if !ok || err != nil || i < 0 || i >= total || len(rest) != 48 {
				torn++
				continue
			}
			seen[i]++
		}
	}
	for _, c := range seen {
		if c == 0 {
			lost++
		} else if c > 1 {
			dup++
		}
	}
	return lost, dup, torn, total
}

// rotateOwn forces n rotations of the service's logs (Daemon.Rotate, what
// `upkeep rotate` asks for), each once the service has written to the new
// own.log, then stops the writer.
func rotateOwn(t *testing.T, h *host, name string, n int) {
	t.Helper()
	own := filepath.Join(h.root, "var/log/app/own.log")
	written := func() bool { st, err := os.Stat(own); return err == nil && st.Size() > 0 }
	h.eventually(10*time.Second, "the service writing", written)
	for i := range n {
		res, err := h.d.Rotate([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range res {
			if r.File == own {
				found = true
				if r.Error != "" || !r.Rotated || r.To != own+".1" {
					t.Fatalf("rotation %d: %+v", i, r)
				}
			}
		}
		if !found {
			t.Fatalf("rotation %d did not cover own.log: %+v", i, res)
		}
		h.eventually(10*time.Second, "the service writing to the new file", written)
	}
	os.WriteFile(filepath.Join(h.root, "stop"), nil, 0o644)
	h.waitState(name, api.Exited)
}

// TestOwnFileRenameSignal: a service writing its own file as fast as it
// can, renamed 20 times and sent SIGUSR1 each time through the service's
// loop: no line lost, none twice, none torn.
func TestOwnFileRenameSignal(t *testing.T) {
	h := newHost(t)
	os.MkdirAll(filepath.Join(h.root, "var/log/app"), 0o755)
	h.write("app", ownWriter(h.root, "USR1", `signal = "USR1"`))
	h.start()
	rotateOwn(t, h, "app", 20)
	lost, dup, torn, total := ownLines(t, h)
	t.Logf("rename + USR1: %d lines, 20 rotations: lost %d, duplicated %d, torn %d", total, lost, dup, torn)
	if lost+dup+torn > 0 {
		t.Errorf("lost %d, duplicated %d, torn %d of %d", lost, dup, torn, total)
	}
	if !exists(filepath.Join(h.root, "var/log/app/own.log.20")) {
		t.Error("no own.log.20")
	}
}

// TestOwnFilePostRotate: the same with a postrotate command that signals
// the service itself, as `kill -USR1 $(cat nginx.pid)` would.
func TestOwnFilePostRotate(t *testing.T) {
	h := newHost(t)
	os.MkdirAll(filepath.Join(h.root, "var/log/app"), 0o755)
	pidfile := filepath.Join(h.root, RunDir, "app.pid")
	h.write("app", ownWriter(h.root, "USR1", `postrotate = 'test "$1" = `+filepath.Join(h.root, "var/log/app/own.log")+` && kill -USR1 "$(cat `+pidfile+`)"'`))
	h.start()
	rotateOwn(t, h, "app", 5)
	lost, dup, torn, total := ownLines(t, h)
	if lost+dup+torn > 0 {
		t.Errorf("lost %d, duplicated %d, torn %d of %d", lost, dup, torn, total)
	}
}

// TestOwnFileCopyTruncate: the same service without a way to reopen,
// copied and truncated 20 times. copytruncate loses the lines written
// between the copy and the truncate: measured and reported here, not
// asserted to be zero.
func TestOwnFileCopyTruncate(t *testing.T) {
	h := newHost(t)
	os.MkdirAll(filepath.Join(h.root, "var/log/app"), 0o755)
	h.write("app", ownWriter(h.root, "", `method = "copytruncate"`))
	h.start()
	rotateOwn(t, h, "app", 20)
	lost, dup, torn, total := ownLines(t, h)
	t.Logf("copytruncate: %d lines, 20 rotations: lost %d (%.3f %%), duplicated %d, torn %d",
		total, lost, 100*float64(lost)/float64(max(total, 1)), dup, torn)
	if dup > 0 {
		t.Errorf("%d lines twice", dup)
	}
}

// TestRotateCapturedOutput: Daemon.Rotate (`upkeep rotate`) rotates a
// running service's NAME.log, leaves its empty NAME.error.log
// (notifempty), and rotates the files of a service that has not started
// since the daemon did.
func TestRotateCapturedOutput(t *testing.T) {
	h := newHost(t)
	h.write("talker", `script = "echo hello; exec sleep 1000"`+fast)
	h.write("idle", "command = [\"/bin/sleep\", \"1000\"]\nautostart = false\n")
	os.MkdirAll(filepath.Join(h.root, LogDir), 0o755)
	os.WriteFile(filepath.Join(h.root, LogDir, "idle.log"), []byte("from before\n"), 0o640)
	h.start()
	h.waitState("talker", api.Running)
	h.eventually(5*time.Second, "talker's line", func() bool { return h.log("talker.log") == "hello\n" })
	res, err := h.d.Rotate(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Rotated{}
	for _, r := range res {
		got[filepath.Base(r.File)] = r
	}
	if r := got["talker.log"]; !r.Rotated || filepath.Base(r.To) != "talker.log.1" || r.Error != "" {
		t.Errorf("talker.log: %+v", r)
	}
	if r := got["talker.error.log"]; r.Rotated || r.Error != "" {
		t.Errorf("talker.error.log: %+v", r)
	}
	if r := got["idle.log"]; !r.Rotated || r.Error != "" {
		t.Errorf("idle.log: %+v", r)
	}
	if h.log("talker.log.1") != "hello\n" || h.log("idle.log.1") != "from before\n" {
		t.Errorf("rotated files hold %q and %q", h.log("talker.log.1"), h.log("idle.log.1"))
	}
	if _, err := h.d.Rotate([]string{"nobody"}); err == nil {
		t.Error("rotating an unknown service")
	}
	// The running service goes on writing to the new file.
	if err := h.d.Restart(context.Background(), []string{"talker"}, true); err != nil {
		t.Fatal(err)
	}
	h.eventually(5*time.Second, "a line in the new file", func() bool { return h.log("talker.log") == "hello\n" })
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestPatternFiles: a [[log.file]] whose name is a pattern rotates every
// file that matches, a file that appears later included (found by the
// next look, or by a forced rotation), and never a rotated file; the
// postrotate command gets the file it is about as $1.
func TestPatternFiles(t *testing.T) {
	h := newHost(t)
	h.glob = 50 * time.Millisecond
	dir := filepath.Join(h.root, "var/log/web")
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"access.log", "error.log", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, name), []byte(name+" 1\n"), 0o644)
	}
	h.write("web", `command = ["/bin/sleep", "1000"]`+fast+`
[log]
compress = false
[[log.file]]
path = "/var/log/web/*.log"
postrotate = 'echo "$1" >> `+filepath.Join(h.root, "reopened")+`'
`)
	h.start()
	h.waitState("web", api.Running)
	sv, _ := h.d.lookup([]string{"web"})
	h.eventually(5*time.Second, "both logs rotated", func() bool {
		sv[0].mu.Lock()
		dc := sv[0].files
		sv[0].mu.Unlock()
		return dc != nil && len(dc.list()) == 2
	})
	os.WriteFile(filepath.Join(dir, "slow.log"), []byte("slow.log 1\n"), 0o644)
	h.eventually(5*time.Second, "the new file found", func() bool {
		sv[0].mu.Lock()
		dc := sv[0].files
		sv[0].mu.Unlock()
		return len(dc.list()) == 3
	})
	res, err := h.d.Rotate([]string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range res {
		if strings.HasPrefix(r.File, dir+"/") {
			if !r.Rotated || r.Error != "" {
				t.Errorf("%s: %+v", r.File, r)
			}
			files = append(files, filepath.Base(r.File))
		}
	}
	if strings.Join(files, " ") != "access.log error.log slow.log" {
		t.Errorf("rotated %v, want access.log error.log slow.log", files)
	}
	for _, name := range []string{"access.log", "error.log", "slow.log"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name+".1")); string(b) != name+" 1\n" {
			t.Errorf("%s.1 holds %q", name, b)
		}
	}
	if exists(filepath.Join(dir, "notes.txt.1")) || exists(filepath.Join(dir, "access.log.1.1")) {
		t.Error("rotated what the pattern does not stand for")
	}
	b, _ := os.ReadFile(filepath.Join(h.root, "reopened"))
	got := strings.Fields(string(b))
	sort.Strings(got)
	if strings.Join(got, " ") != filepath.Join(dir, "access.log")+" "+filepath.Join(dir, "error.log")+" "+filepath.Join(dir, "slow.log") {
		t.Errorf("postrotate was told %v", got)
	}
	// A second look finds the same three, not their rotated files.
	time.Sleep(3 * h.glob)
	sv[0].mu.Lock()
	dc := sv[0].files
	sv[0].mu.Unlock()
	if n := len(dc.list()); n != 3 {
		t.Errorf("%d files rotated after the rotation, want 3", n)
	}
}
