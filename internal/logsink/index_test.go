package logsink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// TestIndexTimesAcrossRotations writes lines at known (fake) times through
// rotations, compression and retention, and reads every line back with the
// time it was written at; the log files themselves stay plain lines, and
// the indexes of files retention removed go with them.
func TestIndexTimesAcrossRotations(t *testing.T) {
	for _, cfg := range []spec.Log{
		{When: spec.Untimed, Rotate: 3, Compress: true, DelayCompress: true},
		{When: spec.Untimed, Rotate: 3, Compress: true, DateExt: true, DateFormat: "-%s"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		var clock fakeClock
		base := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
		clock.set(base)
		s := openTest(t, path, cfg, clock.tweak())
		const batches, per = 6, 20
		want := map[string]time.Time{}
		var buf []byte
		i := 0
		for b := range batches {
			for range per {
				at := base.Add(time.Duration(i) * 100 * time.Millisecond) // batches 2 s apart: distinct dateext names
				clock.set(at)
				buf = appendLine(buf[:0], int64(i))
				s.Write(buf)
				want[strings.TrimSuffix(string(buf), "\n")] = at
				i++
			}
			if b < batches-1 {
				if _, err := s.Rotate(); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Wait()
		var got []Line
		fl, err := TailLines(path, cfg, -1, time.Time{}, nil, func(l Line) {
			l.Text = bytes.Clone(l.Text)
			got = append(got, l)
		})
		if err != nil {
			t.Fatal(err)
		}
		fl.Close()
		// rotate 3: the live file and three rotated ones.
		if len(got) != 4*per {
			t.Fatalf("dateext %v: %d lines, want %d", cfg.DateExt, len(got), 4*per)
		}
		for _, l := range got {
			w, ok := want[string(l.Text)]
			if !ok || !l.Exact || !l.Time.Equal(w) {
				t.Fatalf("dateext %v: line %q at %v (exact %v), want %v", cfg.DateExt, l.Text, l.Time, l.Exact, w)
			}
		}
		// The files are what logrotate and zcat expect: plain lines.
		var gz int
		ents, _ := os.ReadDir(dir)
		logs := 0
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "app.log") {
				continue
			}
			logs++
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(e.Name(), ".gz") {
				gz++
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if _, err := out.ReadFrom(zr); err != nil {
					t.Fatal(err)
				}
				b = out.Bytes()
			}
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if !lineRE.MatchString(l) {
					t.Fatalf("%s: line %q is not the line written", e.Name(), l)
				}
			}
		}
		if gz == 0 {
			t.Fatalf("dateext %v: nothing was compressed", cfg.DateExt)
		}
		idx, _ := os.ReadDir(indexDir(dir))
		if len(idx) != logs {
			t.Fatalf("dateext %v: %d indexes for %d log files", cfg.DateExt, len(idx), logs)
		}
	}
}

// TestIndexOneMarkPerBatch: writes within markEvery of the last mark add
// none, so a chatty service's index grows with time, not with its lines.
func TestIndexOneMarkPerBatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var clock fakeClock
	clock.set(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	s := openTest(t, path, spec.Log{When: spec.Untimed}, clock.tweak())
	var buf []byte
	for i := range 1000 {
		if i%100 == 0 {
			clock.add(markEvery)
		}
		s.Write(appendLine(buf[:0], int64(i)))
	}
	ents, err := os.ReadDir(indexDir(dir))
	if err != nil || len(ents) != 1 {
		t.Fatalf("indexes %v, %v", ents, err)
	}
	ms := readMarks(filepath.Join(indexDir(dir), ents[0].Name()))
	if len(ms) != 10 {
		t.Fatalf("%d marks for 10 batches: %v", len(ms), ms)
	}
}

// TestIndexRealCapture captures a real process through a pipe and reads
// it back, stdout's lines each with an exact time inside the run, while a
// Follower gets the same times as the lines arrive.
func TestIndexRealCapture(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	s, err := OpenWith(path, spec.Log{When: spec.Untimed})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A Follower started before anything is written.
	fl, err := TailLines(path, spec.Log{When: spec.Untimed}, 10, time.Time{}, nil, func(Line) {})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	fl.Poll = 10 * time.Millisecond
	var mu sync.Mutex
	var followed []Line
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fl.FollowLines(ctx, func(l Line) {
			mu.Lock()
			l.Text = bytes.Clone(l.Text)
			followed = append(followed, l)
			mu.Unlock()
		})
	}()
	start := time.Now()
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done; sleep 0.05; echo last`)
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Drain(r)
	cmd.Wait()
	end := time.Now()
	var got []Line
	tl, err := TailLines(path, spec.Log{When: spec.Untimed}, -1, time.Time{}, nil, func(l Line) {
		l.Text = bytes.Clone(l.Text)
		got = append(got, l)
	})
	if err != nil {
		t.Fatal(err)
	}
	tl.Close()
	if len(got) != 201 {
		t.Fatalf("%d lines, want 201", len(got))
	}
	for k, l := range got {
		if !l.Exact || l.Time.Before(start) || l.Time.After(end) || k > 0 && l.Time.Before(got[k-1].Time) {
			t.Fatalf("line %d %q at %v (exact %v), run %v..%v", k, l.Text, l.Time, l.Exact, start, end)
		}
	}
	// The last line came 50 ms after the others: a batch of its own.
	if d := got[200].Time.Sub(got[199].Time); d < 40*time.Millisecond {
		t.Fatalf("last line %v after the one before it, want ≥ 50ms", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(followed)
		mu.Unlock()
		if n >= 201 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling for the condition, with a deadline
	}
	cancel()
	<-done
	if len(followed) != 201 {
		t.Fatalf("followed %d lines, want 201", len(followed))
	}
	for k, l := range followed {
		if string(l.Text) != string(got[k].Text) || !l.Exact || !l.Time.Equal(got[k].Time) {
			t.Fatalf("followed line %d %q at %v (exact %v), read back %q at %v", k, l.Text, l.Time, l.Exact, got[k].Text, got[k].Time)
		}
	}
}

// TestIndexMissingOrForeign: a log without an index reads back with the
// lines' own times or the file's; a .gz whose header names a path outside
// the index directory is not followed there.
func TestIndexMissingOrForeign(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte("2026-12-03T10:00:00Z hello\nplain\n"), 0o644)
	mod := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	os.Chtimes(path, mod, mod)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Comment = gzComment + "../../etc/passwd"
	zw.Write([]byte("old\n"))
	zw.Close()
	os.WriteFile(path+".1.gz", gz.Bytes(), 0o644)
	var got []Line
	fl, err := TailLines(path, spec.DefaultLog(), -1, time.Time{}, nil, func(l Line) {
		l.Text = bytes.Clone(l.Text)
		got = append(got, l)
	})
	if err != nil {
		t.Fatal(err)
	}
	fl.Close()
	if len(got) != 3 || got[0].Exact || string(got[0].Text) != "old" {
		t.Fatalf("got %+v", got)
	}
	if !got[1].Time.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)) || !got[2].Time.Equal(mod) {
		t.Fatalf("times %v %v", got[1].Time, got[2].Time)
	}
}

// FuzzMarks: any bytes as an index read as ascending marks, never a panic,
// and timeAt finds the mark at or before an offset.
func FuzzMarks(f *testing.F) {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], 1)
	binary.LittleEndian.PutUint64(b[8:], 0)
	binary.LittleEndian.PutUint64(b[16:], 2)
	binary.LittleEndian.PutUint64(b[24:], 100)
	f.Add(b[:], int64(50))
	f.Add([]byte{1, 2, 3}, int64(0))
	f.Add(bytes.Repeat([]byte{0xff}, 48), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		ms := appendMarks(nil, bytes.NewReader(data))
		if len(ms) > len(data)/markSize {
			t.Fatalf("%d marks from %d bytes", len(ms), len(data))
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].Off < ms[i-1].Off {
				t.Fatalf("marks out of order: %v", ms)
			}
		}
		tm, ok := timeAt(ms, off)
		if ok {
			found := false
			for _, m := range ms {
				if m.Off <= off && m.Time.Equal(tm) {
					found = true
				}
			}
			if !found {
				t.Fatalf("timeAt(%d) = %v, no mark at or before it", off, tm)
			}
		} else if len(ms) > 0 && ms[0].Off <= off {
			t.Fatalf("timeAt(%d) found nothing in %v", off, ms)
		}
	})
}

// BenchmarkWriteLine is a chatty service's path: one line a write, each
// deciding whether it needs a mark (one a millisecond).
func BenchmarkWriteLine(b *testing.B) {
	s, err := OpenWith(filepath.Join(b.TempDir(), "app.log"), spec.Log{When: spec.Untimed, Size: 64 << 20, Rotate: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	line := appendLine(nil, 42)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		s.Write(line)
	}
}
