package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A journal whose service lock is held belongs to a live deploy: Recover
// leaves it. Once the lock is free, Recover undoes it (here: the release the
// deploy was unpacking goes) and removes the journal.
func TestRecoverLeavesALiveDeploy(t *testing.T) {
	h := testHost(t)
	ctx := context.Background()
	addImage(t, h, "www-j", map[string]string{"service.toml": "version = \"1\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"})
	hs, _ := h.history("www-j")
	j, err := h.beginJournal("deploy", "www-j", h.current("www-j"), "2", hs)
	if err != nil {
		t.Fatal(err)
	}
	j.Fresh = true
	if err := h.step(j, "unpack", undo); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, h.Path(releaseRel("www-j", "2")), map[string]string{"service.toml": "version = \"2\"\n"})
	writeFiles(t, h.Path(releasesRel("www-j")), map[string]string{".staging-x/half": "x"})

	unlock, err := h.lock("www-j")
	if err != nil {
		t.Fatal(err)
	}
	done, err := h.Recover(ctx, nil)
	if err != nil || len(done) != 0 {
		t.Fatalf("Recover with the lock held: %v, %v; want nothing done", done, err)
	}
	if !h.exists(journalRel("www-j")) || !h.exists(releaseRel("www-j", "2")) {
		t.Fatal("Recover touched a live deploy")
	}
	if n := journalFindings(t, h); n != 0 {
		t.Errorf("doctor reports a live deploy's journal")
	}
	unlock()
	if n := journalFindings(t, h); n != 1 {
		t.Errorf("doctor reports %d dead journals, want 1", n)
	}

	done, err = h.Recover(ctx, nil)
	if err != nil || len(done) != 1 || !strings.Contains(done[0], "died at unpack: undo") {
		t.Fatalf("Recover: %q, %v", done, err)
	}
	for _, rel := range []string{journalRel("www-j"), releaseRel("www-j", "2"), releasesRel("www-j") + "/.staging-x"} {
		if h.exists(rel) {
			t.Errorf("%s is left after recovery", rel)
		}
	}
}

func journalFindings(t *testing.T, h *Host) int {
	t.Helper()
	fs, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if strings.Contains(f.Path, "journal") {
			n++
		}
	}
	return n
}

// The journal is written whole (no temp file beside it) and reads back as
// it was written.
func TestJournalRoundTrip(t *testing.T) {
	h := testHost(t)
	hs := &History{Service: "www-j", Releases: []Release{{Version: "1", Status: "ok"}}}
	j, err := h.beginJournal("deploy", "www-j", Current{Kind: "release", Version: "1"}, "2", hs)
	if err != nil {
		t.Fatal(err)
	}
	j.Entries = []Placed{{Path: "etc/j.conf", Kind: "link", Target: h.linkTarget("www-j", "etc/j.conf")}}
	for _, s := range []struct{ step, then string }{{"switch", undo}, {"restart", redo}} {
		if err := h.step(j, s.step, s.then); err != nil {
			t.Fatal(err)
		}
		got, err := h.readJournal("www-j")
		if err != nil || got == nil || got.Step != s.step || got.Then != s.then || got.From != "1" || got.To != "2" ||
			len(got.Entries) != 1 || len(got.History.Releases) != 1 {
			t.Fatalf("read back %+v, %v", got, err)
		}
	}
	entries, _ := os.ReadDir(h.Path(JournalDir))
	if len(entries) != 1 {
		t.Errorf("journal dir holds %v, want the journal only", entries)
	}
	h.endJournal(j)
	if got, err := h.readJournal("www-j"); got != nil || err != nil {
		t.Errorf("after the end: %+v, %v", got, err)
	}
}

// A journal recovery would act on wrongly is refused whole, with its path.
func TestJournalRefused(t *testing.T) {
	h := testHost(t)
	good := `{"op":"deploy","service":"www-j","step":"switch","then":"undo","from":"1","to":"2","history":{"service":"www-j"},` +
		`"prior":{"service":"www-j","entries":[]},"entries":[{"path":"etc/j.conf","kind":"link"}]}`
	if err := os.MkdirAll(h.Path(JournalDir), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(h.Path(journalRel("www-j")), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	if _, err := h.readJournal("www-j"); err != nil {
		t.Fatalf("the good journal: %v", err)
	}
	for _, c := range []struct{ from, to, why string }{
		{`"service":"www-j","step"`, `"service":"www-k","step"`, "not a journal of www-j"},
		{`"then":"undo"`, `"then":"maybe"`, "then"},
		{`"to":"2"`, `"to":"../../../etc"`, "to: version"},
		{`"from":"1"`, `"from":"a/b"`, "from: version"},
		{`"path":"etc/j.conf"`, `"path":"etc/../var/www/x"`, "not a clean path"},
		{`"path":"etc/j.conf"`, `"path":"var/lib/upkeep/overlay/x.json"`, "upkeep's own"},
		{`"kind":"link"`, `"kind":"dir"`, "kind"},
		{`"history":{"service":"www-j"}`, `"history":null`, "history"},
		{`{"op"`, `{"op`, "invalid character"},
	} {
		write(strings.Replace(good, c.from, c.to, 1))
		_, err := h.readJournal("www-j")
		if err == nil || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), filepath.Join("journal", "www-j.json")) {
			t.Errorf("%s -> %s: %v, want an error with %q and the path", c.from, c.to, err, c.why)
		}
	}
}

// A remove's journal only goes forward, and carries nothing a deploy's
// does; a deploy's carries none of a remove's fields.
func TestRemoveJournalRefused(t *testing.T) {
	h := testHost(t)
	good := `{"op":"remove","service":"www-j","step":"remove","then":"redo","purge":true,"home":"/home/op"}`
	if err := os.MkdirAll(h.Path(JournalDir), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(h.Path(journalRel("www-j")), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	if j, err := h.readJournal("www-j"); err != nil || !j.Purge || j.Home != "/home/op" {
		t.Fatalf("the good journal: %+v %v", j, err)
	}
	for _, c := range []struct{ from, to, why string }{
		{`"then":"redo"`, `"then":"undo"`, "only goes forward"},
		{`"purge":true`, `"to":"2"`, "only goes forward"},
		{`"purge":true`, `"history":{"service":"www-j"}`, "only goes forward"},
		{`"purge":true`, `"entries":[{"path":"etc/j.conf","kind":"link"}]`, "only goes forward"},
		{`"home":"/home/op"`, `"home":"op"`, "not a clean absolute path"},
		{`"home":"/home/op"`, `"home":"/home/../op"`, "not a clean absolute path"},
		{`"op":"remove"`, `"op":"deploy"`, "are a remove's"},
	} {
		write(strings.Replace(good, c.from, c.to, 1))
		_, err := h.readJournal("www-j")
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s -> %s: %v, want an error with %q", c.from, c.to, err, c.why)
		}
	}
}

// FuzzReadJournal feeds readJournal arbitrary files: it never panics, and
// what it accepts names releases by versions and lists only paths beneath
// the root outside upkeep's own trees, so recovery cannot be led elsewhere.
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(`{"op":"deploy","service":"www-j","step":"switch","then":"undo","from":"1","to":"2","history":{"service":"www-j"},"entries":[{"path":"etc/j.conf","kind":"link"}]}`))
	f.Add([]byte(`{"op":"rollback","service":"www-j","step":"restart","then":"redo","to":"manual-20260101T000000Z","history":{"service":"www-j","releases":[{"version":"1"}]},"prior":{"service":"www-j","dirs":["etc/x"]}}`))
	f.Add([]byte(`{"service":"www-j","then":"undo","to":"..","history":{"service":"www-j"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"op":"remove","service":"www-j","step":"remove","then":"redo","force":true,"home":"/root"}`))
	h := testHost(f)
	if err := os.MkdirAll(h.Path(JournalDir), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(h.Path(journalRel("www-j")), data, 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := h.readJournal("www-j")
		if err != nil || j == nil {
			return
		}
		for _, v := range []string{j.To, j.From} {
			if v != "" && (CheckVersion(v) != nil || strings.Contains(releaseRel("www-j", v), "..")) {
				t.Fatalf("accepted version %q", v)
			}
		}
		for _, e := range j.Entries {
			if checkOverlayPath(e.Path) != nil || filepath.IsAbs(e.Path) || strings.Contains(e.Path, "..") {
				t.Fatalf("accepted path %q", e.Path)
			}
		}
		if j.Op == "remove" && (j.Then != redo || j.To != "" || len(j.Entries) > 0 || j.Home != "" && !filepath.IsAbs(j.Home)) {
			t.Fatalf("accepted a remove journal that is not forward-only: %+v", j)
		}
		_ = h.inPlace(j) // reads only
	})
}

// BenchmarkJournalStep is the cost a deploy pays per step for its journal:
// the durable write (two fsyncs). A deploy writes it four times.
func BenchmarkJournalStep(b *testing.B) {
	h := testHost(b)
	hs := &History{Service: "www-j", Releases: []Release{{Version: "1", Status: "ok"}}}
	j, err := h.beginJournal("deploy", "www-j", Current{Kind: "release", Version: "1"}, "2", hs)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		j.Entries = append(j.Entries, Placed{Path: "etc/app/f" + string(rune('a'+i)), Kind: "link", Target: h.linkTarget("www-j", "etc/app/f")})
	}
	for b.Loop() {
		if err := h.step(j, "switch", undo); err != nil {
			b.Fatal(err)
		}
	}
}
