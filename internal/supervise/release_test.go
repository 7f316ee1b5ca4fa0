package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/api"
)

// After a switch of var/www/NAME to another release (a deploy, a
// rollback), RESTARTS and LAST EXIT are the new release's: the old one's
// crashes are not shown against it. Within one release they add up.
func TestReleaseSwitchResetsCounters(t *testing.T) {
	h := newHost(t)
	rels := filepath.Join(h.root, "var/www/.releases/service-rel")
	for _, v := range []string{"1", "2"} {
		dir := filepath.Join(rels, v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := `command = ["/bin/sleep", "100` + v + `"]` + fast
		if err := os.WriteFile(filepath.Join(dir, "service.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(h.root, "var/www/service-rel")
	if err := os.Symlink(filepath.Join(rels, "1"), link); err != nil {
		t.Fatal(err)
	}
	h.start()
	crash := func(want int) {
		t.Helper()
		first := h.waitState("service-rel", api.Running)
		syscall.Kill(first.Pid, syscall.SIGKILL)
		h.eventually(5*time.Second, "restarted", func() bool {
			st := h.status("service-rel")
			return st.State == api.Running && st.Pid != first.Pid
		})
		if st := h.status("service-rel"); st.Restarts != want || st.LastExit != "signal KILL" {
			t.Errorf("after a crash: restarts %d, last exit %q; want %d and signal KILL", st.Restarts, st.LastExit, want)
		}
	}
	crash(1)
	crash(2)

	// Switch, as deploy does: a new symlink renamed over the old one.
	tmp := link + ".new"
	if err := os.Symlink(filepath.Join(rels, "2"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if res, err := h.d.Reload(context.Background()); err != nil || len(res.Changed) != 1 {
		t.Fatalf("reload: %+v %v", res, err)
	}
	h.eventually(5*time.Second, "release 2 running", func() bool {
		st := h.status("service-rel")
		return st.State == api.Running && st.Pid != 0 && cmdlineOf(st.Pid) == "/bin/sleep\x001002\x00"
	})
	if st := h.status("service-rel"); st.Restarts != 0 || st.LastExit != "" {
		t.Errorf("after the switch: restarts %d, last exit %q; want 0 and none", st.Restarts, st.LastExit)
	}
	crash(1)
	// A restart within the same release keeps them.
	if err := h.d.Restart(context.Background(), []string{"service-rel"}, true); err != nil {
		t.Fatal(err)
	}
	if st := h.status("service-rel"); st.Restarts != 1 {
		t.Errorf("after a manual restart in the same release: restarts %d, want 1", st.Restarts)
	}
}

func cmdlineOf(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return string(b)
}
