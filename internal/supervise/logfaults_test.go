package supervise

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"upkeep/internal/api"
)

// TestUnwritableLogIsCountedAndReported: a service whose log cannot be
// opened (a directory stands at its path) runs all the same; what it
// writes is counted per file (LogCounters, the metrics' source) and in
// status, the condition is one event, and once the file can be made the
// output is written again and an event says what the condition cost.
// Needs no root: TestLogDiskFull (test/) does the same with a full disk.
func TestUnwritableLogIsCountedAndReported(t *testing.T) {
	h := newHost(t)
	block := filepath.Join(h.root, "var/log/service-talker.log")
	if err := os.MkdirAll(block, 0o755); err != nil {
		t.Fatal(err)
	}
	h.write("service-talker", `script = "while :; do echo talking; sleep 0.02; done"
`+fast)
	h.start()
	h.waitState("service-talker", api.Running)
	counter := func() api.LogCounter {
		for _, c := range h.d.LogCounters() {
			if c.Service == "service-talker" && c.File == "service-talker.log" {
				return c
			}
		}
		return api.LogCounter{}
	}
	h.eventually(5*time.Second, "dropped output to be counted", func() bool { return counter().Dropped > 0 })
	if c := counter(); !strings.Contains(c.Err, "is a directory") {
		t.Errorf("counter %+v", c)
	}
	if st := h.status("service-talker"); st.DroppedBytes == 0 || !strings.Contains(st.LogError, "is a directory") {
		t.Errorf("status: %d bytes dropped, %q", st.DroppedBytes, st.LogError)
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	h.eventually(5*time.Second, "output written again", func() bool { return strings.HasPrefix(h.log("service-talker.log"), "talking\n") })
	ended := regexp.MustCompile(`^var/log/service-talker\.log: dropped (\d+) bytes while it could not be written \(.*is a directory\); writing again$`)
	h.eventually(5*time.Second, "the end of the condition reported", func() bool {
		for _, e := range h.d.Events("service-talker") {
			if e.Kind == "log" && e.OK && ended.MatchString(e.Message) {
				return true
			}
		}
		return false
	})
	began := 0
	for _, e := range h.d.Events("service-talker") {
		if e.Kind == "log" && !e.OK {
			began++
			if !strings.HasPrefix(e.Message, "var/log/service-talker.log: ") || !strings.Contains(e.Message, "dropping output") {
				t.Errorf("event %q", e.Message)
			}
		}
	}
	if began != 1 {
		t.Errorf("%d events for the start of the condition, want 1", began)
	}
	if c := counter(); c.Err != "" || c.Dropped == 0 {
		t.Errorf("after: counter %+v", c)
	}
}
