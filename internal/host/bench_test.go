package host

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeImage writes a gzip-compressed image of files files of size bytes
// each (plus service.toml) to path. text makes the content compress like
// source code (about 3:1); else it is random and does not compress.
func writeImage(tb testing.TB, path, version string, files, size int, text bool) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	toml := fmt.Sprintf("version = %q\ncommand = [\"/bin/sleep\", \"1000\"]\n", version)
	tw.WriteHeader(&tar.Header{Name: "service.toml", Mode: 0o644, Size: int64(len(toml)), Typeflag: tar.TypeReg})
	tw.Write([]byte(toml))
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"func ", "return ", "if err != nil {", "}\n", "\t", "x := ", "fmt.Println(", ")", "\n", "range ", "for ", "0x", "// comment about it\n"}
	buf := make([]byte, size)
	for i := range files {
		if text {
			b := buf[:0]
			for len(b) < size {
				b = append(b, words[rng.IntN(len(words))]...)
				b = append(b, byte('a'+rng.IntN(26)), byte('a'+rng.IntN(26)))
			}
			copy(buf, b)
		} else {
			for j := 0; j+8 <= size; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
		}
		name := fmt.Sprintf("app/d%02d/f%04d.dat", i%50, i)
		if i%10 == 0 {
			name = fmt.Sprintf("config/etc/bench/f%04d.conf", i)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write(buf)
	}
	tw.Close()
	zw.Close()
}

// BenchmarkUnpack measures unpacking a large image (256 MiB in 1,024
// files) into a staging directory: hostile-input checks, gzip and writes.
// MB/s counts unpacked bytes. The syncfs(2) deploy does after unpacking
// is timed apart (ms/syncfs), outside MB/s: it depends on what else the
// file system has to write.
func BenchmarkUnpack(b *testing.B) {
	for _, kind := range []struct {
		name string
		text bool
	}{{"text", true}, {"random", false}} {
		b.Run(kind.name, func(b *testing.B) {
			dir := b.TempDir()
			img := filepath.Join(dir, "big.tar.gz")
			const files, size = 1024, 256 << 10
			writeImage(b, img, "1", files, size, kind.text)
			h, _ := New(b.TempDir(), b.TempDir(), nil)
			lim := Limits{MaxSize: 1 << 40, MaxFiles: 1 << 20}
			b.SetBytes(files * size)
			var synced, cpu time.Duration
			n := 0
			b.ResetTimer()
			for b.Loop() {
				c0 := cpuTime()
				f, _ := os.Open(img)
				u, err := h.unpack(f, lim, dir)
				f.Close()
				cpu += cpuTime() - c0
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				t := time.Now()
				if err := syncFS(u.Staging); err != nil {
					b.Fatal(err)
				}
				synced += time.Since(t)
				n++
				removeAll(u.Staging)
				b.StartTimer()
			}
			b.ReportMetric(float64(synced.Milliseconds())/float64(n), "ms/syncfs")
			// CPU time (user and system, both goroutines) tells what the
			// unpack costs whatever else the machine runs: with two cores
			// to itself, the wall time is at least half of it.
			b.ReportMetric(float64(cpu.Milliseconds())/float64(n), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeploy measures a deploy of an image of 1,000 files / 50 MB
// (every tenth file in config/, so 100 overlay symlinks), without a
// daemon: unpack (syncfs included), overlay, switch — what deploy does
// before the service's own start. It alternates two versions, keeping one release, so each
// deploy unpacks.
func BenchmarkDeploy(b *testing.B) {
	h, _ := New(b.TempDir(), b.TempDir(), nil)
	h.pol = lenientPolicy(b) // its service runs as root, its config/ is etc/bench/
	src := b.TempDir()
	for _, v := range []string{"1", "2"} {
		p := filepath.Join(src, "www-bench-"+v+".tar.gz")
		writeImage(b, p, v, 1000, 50<<20/1000, true)
		if _, err := h.AddImage(p, AddOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var unpack, synced, overlay, sw, total time.Duration
	i := 0
	for b.Loop() {
		v := []string{"1", "2"}[i%2]
		i++
		tm, err := h.Deploy(context.Background(), nil, "www-bench", v, DeployOptions{Keep: 1})
		if err != nil {
			b.Fatal(err)
		}
		unpack += tm.Unpack
		synced += tm.Sync
		overlay += tm.Overlay
		sw += tm.Switch
		total += tm.Total
	}
	n := float64(i)
	b.ReportMetric(float64(total.Milliseconds())/n, "ms/deploy")
	b.ReportMetric(float64(unpack.Milliseconds())/n, "ms/unpack")
	b.ReportMetric(float64(synced.Milliseconds())/n, "ms/syncfs")
	b.ReportMetric(float64(overlay.Microseconds())/n, "µs/overlay")
	b.ReportMetric(float64(sw.Microseconds())/n, "µs/switch")
}

// The switch never leaves a moment without var/www/<name>: a reader
// looking all the time never finds it missing.
func TestSwitchNeverMissing(t *testing.T) {
	h := testHost(t)
	for _, v := range []string{"1", "2"} {
		writeFiles(t, h.Path(releaseRel("www-x", v)), map[string]string{"service.toml": "command = [\"/bin/true\"]\n"})
	}
	hs := &History{Service: "www-x"}
	if err := h.switchTo("www-x", "1", false, hs); err != nil {
		t.Fatal(err)
	}
	var missing, looks atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := filepath.Join(h.Path(serviceRel("www-x")), "service.toml")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := os.Stat(p); err != nil {
				missing.Add(1)
			}
			looks.Add(1)
		}
	}()
	for i := range 2000 {
		if err := h.switchTo("www-x", []string{"1", "2"}[i%2], false, hs); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if missing.Load() != 0 {
		t.Errorf("var/www/www-x was missing %d times in %d looks", missing.Load(), looks.Load())
	}
	if looks.Load() == 0 {
		t.Error("the reader never looked")
	}
	// The manual-directory case: exchanged, never missing either.
	entries, _ := os.ReadDir(h.Path(WWWDir))
	for _, e := range entries {
		if e.Name() != "www-x" && e.Name() != ".releases" {
			t.Errorf("left in var/www: %s", e.Name())
		}
	}
}

// BenchmarkRedeploy is a deploy between two releases already unpacked
// (Keep 2: neither is removed), of a small image with 20 overlay symlinks:
// what is left of a deploy without the unpack — the journal, the switch,
// the overlay, the history, and the syncs that make them durable. It is
// where the cost of durability shows, which BenchmarkDeploy's unpack hides.
func BenchmarkRedeploy(b *testing.B) {
	h, _ := New(b.TempDir(), b.TempDir(), nil)
	h.pol = lenientPolicy(b)
	src := b.TempDir()
	for _, v := range []string{"1", "2"} {
		p := filepath.Join(src, "www-bench-"+v+".tar.gz")
		writeImage(b, p, v, 200, 1<<10, true)
		if _, err := h.AddImage(p, AddOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := h.Deploy(context.Background(), nil, "www-bench", v, DeployOptions{Keep: 2}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		v := []string{"1", "2"}[i%2]
		i++
		if _, err := h.Deploy(context.Background(), nil, "www-bench", v, DeployOptions{Keep: 2}); err != nil {
			b.Fatal(err)
		}
	}
}
