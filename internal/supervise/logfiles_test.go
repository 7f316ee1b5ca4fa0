package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
	h.waitState(name, Exited)
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
	h.waitState("talker", Running)
	h.eventually(5*time.Second, "talker's line", func() bool { return h.log("talker.log") == "hello\n" })
	res, err := h.d.Rotate(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Rotated{}
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
