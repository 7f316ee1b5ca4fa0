package supervise

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"upkeep/internal/api"
)

// serviceLoops counts the goroutines running a service's loop, across every
// daemon of the test binary (tests here run one host at a time).
func serviceLoops() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "upkeep/internal/supervise.(*service).run(")
}

// processesOf lists the live processes whose environment holds tag=value:
// a test's services, told apart from everything else on a shared machine.
func processesOf(tag, value string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == tag+"="+value {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Reloads from everywhere at once (SIGHUP, /v1/reload, deploy) go through
// one owner: a new service is added once, a changed one restarted once.
func TestConcurrentReloadsMakeOneInstance(t *testing.T) {
	h := newHost(t)
	def := func(name, arg string) string {
		return `script = "echo start >> ` + filepath.Join(h.root, name+".starts") + `; exec /bin/sleep ` + arg + `"
env = { UPKEEP_TEST = "` + h.root + "/" + name + `" }
` + fast
	}
	h.write("service-changed", def("service-changed", "1000"))
	h.start()
	h.waitState("service-changed", api.Running)
	h.write("service-changed", def("service-changed", "1001"))
	h.write("service-new", def("service-new", "1000"))

	const reloaders = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, reloaders)
	for range reloaders {
		wg.Go(func() {
			<-start
			if _, err := h.d.Reload(context.Background()); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h.eventually(10*time.Second, "both running", func() bool {
		a, b := h.status("service-changed"), h.status("service-new")
		return a.State == api.Running && b.State == api.Running && strings.Contains(string(must(os.ReadFile(filepath.Join(h.root, "service-changed.starts")))), "start\nstart\n")
	})
	// Whatever a second add or restart would do has had its time to show.
	if n := serviceLoops(); n != 2 {
		t.Errorf("%d service loops, want 2 (one per service)", n)
	}
	for _, name := range []string{"service-changed", "service-new"} {
		h.eventually(5*time.Second, "one process of "+name, func() bool {
			return len(processesOf("UPKEEP_TEST", h.root+"/"+name)) == 1
		})
		if h.d.cgroups != nil {
			cg, err := h.d.cgroups.Service(name)
			if err == nil && len(cg.Procs()) != 1 {
				t.Errorf("%s: cgroup holds %v, want one process", name, cg.Procs())
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(h.root, "service-changed.starts"))
	if got := strings.Count(string(b), "start"); got != 2 {
		t.Errorf("service-changed started %d times, want 2 (first start, one restart for the change)", got)
	}
	b, _ = os.ReadFile(filepath.Join(h.root, "service-new.starts"))
	if got := strings.Count(string(b), "start"); got != 1 {
		t.Errorf("service-new started %d times, want 1", got)
	}
}

func must[T any](v T, _ error) T { return v }
