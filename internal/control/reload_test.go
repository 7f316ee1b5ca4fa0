package control

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"upkeep/internal/api"
)

// reloadHost is credHost with the groups read from the root's policy
// file, as the daemon serves them: the server re-reads them at reload.
func reloadHost(t *testing.T, pol string) *host {
	needRoot(t)
	h := newHost(t)
	h.write("etc/passwd", passwd)
	h.write("etc/group", group)
	h.write("etc/upkeep/policy.toml", pol)
	acc, warn, err := LoadAccess(h.root)
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	h.service("www-a", `command = ["/bin/sleep", "1000"]`+"\nautostart = true\n")
	h.start(Options{Access: acc, PolicyRoot: h.root})
	eventually(t, 5*time.Second, "www-a running", func() bool { return h.status("www-a").State.String() == "running" })
	return h
}

var reload = call{Method: "POST", Path: "/v1/reload", Body: `{}`}

func reloadResult(t *testing.T, c call) api.ReloadResult {
	t.Helper()
	var res api.ReloadResult
	if c.Code != http.StatusOK || json.Unmarshal([]byte(c.Answer), &res) != nil {
		t.Fatalf("reload: %d %s", c.Code, c.Answer)
	}
	return res
}

// TestAccessFollowsReload: the [control] groups and etc/group are read
// again at `upkeep reload`, by real clients of other uids; a policy file
// that does not parse keeps the access of before and the reload says where
// the file is wrong.
func TestAccessFollowsReload(t *testing.T) {
	h := reloadHost(t, "[control]\ngroup = \"upkeep\"\nread_group = \"upkeep-ro\"\n")
	if got := asUser(t, h.sock, bob, getStatus, restartA); got[0].Code != http.StatusOK || got[1].Code != http.StatusForbidden {
		t.Fatalf("bob before the reload: %+v", got)
	}
	if got := asUser(t, h.sock, alice, restartA); got[0].Code != http.StatusOK {
		t.Fatalf("alice before the reload: %+v", got)
	}

	// The groups swap roles.
	h.write("etc/upkeep/policy.toml", "[control]\ngroup = \"upkeep-ro\"\nread_group = \"upkeep\"\n")
	if res := reloadResult(t, asUser(t, h.sock, nil, reload)[0]); res.Policy != "" {
		t.Fatalf("reload of a good policy reports %q", res.Policy)
	}
	pid := h.status("www-a").Pid
	if got := asUser(t, h.sock, bob, restartA); got[0].Code != http.StatusOK {
		t.Errorf("bob, now in the admin group, restart: %d %s", got[0].Code, got[0].Answer)
	}
	if h.status("www-a").Pid == pid {
		t.Error("bob's restart did not restart www-a")
	}
	want := `permission denied: uid 1000 (alice) may only read (group "upkeep"); restart needs root or group "upkeep-ro"`
	if got := asUser(t, h.sock, alice, getStatus, restartA); got[0].Code != http.StatusOK || got[1].Code != http.StatusForbidden || errorOf(got[1]) != want {
		t.Errorf("alice, now a reader: %+v, want 200 then 403 %q", got, want)
	}

	// A broken file: the reload answers, names the place, and changes
	// nothing about who may do what.
	h.write("etc/upkeep/policy.toml", "[control]\ngroup = \"upkeep\nread_group = 5\n")
	res := reloadResult(t, asUser(t, h.sock, nil, reload)[0])
	if !strings.Contains(res.Policy, h.root+"/etc/upkeep/policy.toml:2:") || !strings.HasSuffix(res.Policy, "; the control socket keeps its previous access") || strings.Contains(res.Policy, "\n") {
		t.Errorf("reload of a broken policy reports %q", res.Policy)
	}
	if got := asUser(t, h.sock, bob, restartA); got[0].Code != http.StatusOK {
		t.Errorf("bob after the broken reload: %d %s, want the old access", got[0].Code, got[0].Answer)
	}
	if got := asUser(t, h.sock, alice, restartA); got[0].Code != http.StatusForbidden || errorOf(got[0]) != want {
		t.Errorf("alice after the broken reload: %d %q, want the old refusal", got[0].Code, errorOf(got[0]))
	}

	// A group that is gone from etc/group grants nothing, as at the start.
	h.write("etc/upkeep/policy.toml", "[control]\ngroup = \"gone\"\n")
	if res := reloadResult(t, asUser(t, h.sock, nil, reload)[0]); res.Policy != "" {
		t.Errorf("reload with a missing group reports %q: it is logged, not a broken file", res.Policy)
	}
	if got := asUser(t, h.sock, bob, getStatus); got[0].Code != http.StatusForbidden || errorOf(got[0]) != `permission denied: uid 1001 (bob) is not root` {
		t.Errorf("bob once no group exists: %d %q", got[0].Code, errorOf(got[0]))
	}
	if got := asUser(t, h.sock, nil, getStatus); got[0].Code != http.StatusOK {
		t.Errorf("root: %+v", got[0])
	}
}

// TestAccessSwapIsWhole: while the access flips between two policies, a
// client's every answer is what one of them gives, whole: its level and
// its message from the same policy. (Under -race, a swap that is not one
// pointer store is a reported race.)
func TestAccessSwapIsWhole(t *testing.T) {
	a := "[control]\ngroup = \"upkeep\"\nread_group = \"upkeep-ro\"\n" // bob reads
	b := "[control]\ngroup = \"upkeep\"\n"                             // bob is refused
	h := reloadHost(t, a)
	refusedB := `permission denied: uid 1001 (bob) is not root or in group "upkeep"`
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flips := 0
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pol := a
			if i%2 == 0 {
				pol = b
			}
			h.write("etc/upkeep/policy.toml", pol)
			if err := h.srv.ReloadAccess(); err != nil {
				t.Error(err)
				return
			}
			flips++
		}
	})
	calls := make([]call, 300)
	for i := range calls {
		calls[i] = getStatus
	}
	got := asUser(t, h.sock, bob, calls...)
	close(stop)
	wg.Wait()
	seen := map[int]int{}
	for _, c := range got {
		seen[c.Code]++
		switch {
		case c.Code == http.StatusOK && strings.Contains(c.Answer, `"www-a"`):
		case c.Code == http.StatusForbidden && errorOf(c) == refusedB:
		default:
			t.Errorf("an answer of neither policy: %d %s", c.Code, c.Answer)
		}
	}
	t.Logf("%d flips, answers %v", flips, seen)
	if flips < 2 {
		t.Errorf("only %d flips during the requests", flips)
	}
}
