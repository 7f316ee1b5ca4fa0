package logsink

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// TestListDirSeesEarlierChanges: a shared listing must never be one that
// began before the caller's own change. Each goroutine creates its file and
// then lists; it must find its file, however the listings were shared.
func TestListDirSeesEarlierChanges(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			name := "svc-" + strconv.Itoa(i) + ".log"
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				errs <- err.Error()
				return
			}
			ents, err := listDir(dir)
			if err != nil {
				errs <- err.Error()
				return
			}
			for _, e := range withPrefix(ents, name) {
				if e.Name() == name {
					return
				}
			}
			errs <- name + " created before the listing but not in it"
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestWithPrefix(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".a.log.1.gz.tmp", "a.log", "a.log.1", "a.log.2.gz", "a.logx", "b.log", "a.lo"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range withPrefix(ents, "a.log") {
		got = append(got, e.Name())
	}
	want := []string{"a.log", "a.log.1", "a.log.2.gz", "a.logx"}
	if len(got) != len(want) {
		t.Fatalf("withPrefix(a.log) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("withPrefix(a.log) = %v, want %v", got, want)
		}
	}
	if h := withPrefix(ents, ".a.log."); len(h) != 1 || h[0].Name() != ".a.log.1.gz.tmp" {
		t.Fatalf("withPrefix(.a.log.) = %v", h)
	}
	if z := withPrefix(ents, "zz"); len(z) != 0 {
		t.Fatalf("withPrefix(zz) = %v", z)
	}
}
