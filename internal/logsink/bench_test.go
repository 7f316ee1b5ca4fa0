package logsink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"upkeep/internal/spec"
)

// The whole-process benchmark of docs/benchmarks.md ("Logs"), run by
// bench/logs.sh: a child writes BYTES of 61-byte numbered lines to its
// stdout, either redirected straight into a file (what the shell's > does:
// the baseline) or through a pipe into a second child, the "daemon", that
// drains it into a Sink the way upkeep captures a service. It is a test
// that skips itself unless UPKEEP_LOGS_BENCH=1, not a testing.B: one run
// moves a gigabyte.

// captureResult is what the capturing child reports on its stdout.
type captureResult struct {
	Seconds   float64 `json:"seconds"`
	PeakRSSKB int64   `json:"peak_rss_kb"`
	Dropped   int64   `json:"dropped"`
	Rotations int     `json:"rotations"`
	Spliced   int64   `json:"spliced"` // bytes moved by splice(2), not read and written
	CPU       float64 `json:"cpu"`     // the capturing process's own user+system seconds
}

// captureMain is the capturing child: LOG (path), LINES, BUF, CFG (none,
// size64, forced), FORCE_MS.
func captureMain() int {
	path := os.Getenv("LOG")
	cfg := spec.Log{When: spec.Untimed}
	switch os.Getenv("CFG") {
	case "size64": // the defaults, plus size rotation every 64 MiB
		cfg = spec.DefaultLog()
		cfg.Size = 64 << 20
	case "size64plain": // the same without compression: what rotation alone costs
		cfg = spec.DefaultLog()
		cfg.Size, cfg.Compress = 64<<20, false
	case "forced": // keep every file, to count the lines
		cfg = spec.Log{When: spec.Untimed, Rotate: -1, Compress: true, DelayCompress: true}
	}
	s, err := OpenWith(path, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if n, err := strconv.Atoi(os.Getenv("PIPE_SZ")); err == nil && n > 0 {
		pipeSize = n
	}
	if os.Getenv("NOSPLICE") == "1" { // to measure what splice brings: read and write only
		s.mu.Lock()
		s.noSplice = true
		s.mu.Unlock()
	}
	rotations := 0
	s.Notify(func(e Event) {
		if e.Kind == "rotated" {
			rotations++ // from the writing goroutine or the forcing one: serialised by the sink's lock
		}
	})
	r, w, err := os.Pipe()
	if err != nil {
		return 1
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOGSINK_HELPER=writer")
	cmd.Stdout = w
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w.Close()
	done := make(chan struct{})
	if ms, _ := strconv.Atoi(os.Getenv("FORCE_MS")); ms > 0 {
		go func() {
			t := time.NewTicker(time.Duration(ms) * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					s.Rotate()
				}
			}
		}()
	}
	s.Drain(r)
	close(done)
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	elapsed := time.Since(start)
	s.Close()
	s.Wait()
	s.mu.Lock()
	spliced := s.spliced
	s.mu.Unlock()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	json.NewEncoder(os.Stdout).Encode(captureResult{Seconds: elapsed.Seconds(), PeakRSSKB: vmHWM(), Dropped: s.Dropped(), Rotations: rotations, Spliced: spliced, CPU: cpu})
	return 0
}

// vmHWM is this process's peak resident set, in KiB.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

func TestLogsBench(t *testing.T) {
	if os.Getenv("UPKEEP_LOGS_BENCH") != "1" {
		t.Skip("the logs benchmark: UPKEEP_LOGS_BENCH=1 (bench/logs.sh)")
	}
	bytes := envInt("BYTES", 1<<30)
	lines := bytes / lineLen
	rounds := int(envInt("ROUNDS", 3))
	buf := strconv.FormatInt(envInt("BUF", 64<<10), 10)
	lostLines := envInt("LOST_LINES", 20_000_000)
	dir := os.Getenv("DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	env := func(extra ...string) []string {
		return append(os.Environ(), append([]string{"LINES=" + strconv.FormatInt(lines, 10), "BUF=" + buf}, extra...)...)
	}
	// Each run starts from a clean disk: the files of the run before
	// removed and everything written back.
	clean := func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		syscall.Sync()
	}
	// The baseline: the writer's stdout is the file itself.
	redirect := func(flag int) (float64, error) {
		clean()
		f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_WRONLY|os.O_CREATE|flag, 0o644)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env("LOGSINK_HELPER=writer")
		cmd.Stdout = f
		start := time.Now()
		err = cmd.Run()
		return time.Since(start).Seconds(), err
	}
	capture := func(cfg string, forceMS int, n int64, extra ...string) (captureResult, error) {
		clean()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env(append(extra, "LOGSINK_HELPER=capture", "LOG="+filepath.Join(dir, "app.log"), "CFG="+cfg, "FORCE_MS="+strconv.Itoa(forceMS))...)
		if n > 0 {
			cmd.Env = append(cmd.Env, "LINES="+strconv.FormatInt(n, 10))
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		var r captureResult
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		return r, err
	}
	var base, plain, sized, sizedPlain []float64
	var cpuPlain, cpuSized, cpuSizedPlain []float64 // the capturing process's own CPU seconds
	var spliced, moved int64
	var rss []int64
	for round := range rounds {
		b, err := redirect(os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		p, err := capture("none", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		s, err := capture("size64", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := capture("size64plain", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		base, plain, sized, sizedPlain = append(base, b), append(plain, p.Seconds), append(sized, s.Seconds), append(sizedPlain, sp.Seconds)
		rss = append(rss, p.PeakRSSKB, s.PeakRSSKB, sp.PeakRSSKB)
		cpuPlain, cpuSized, cpuSizedPlain = append(cpuPlain, p.CPU), append(cpuSized, s.CPU), append(cpuSizedPlain, sp.CPU)
		spliced += p.Spliced + s.Spliced + sp.Spliced
		moved += 3 * lines * lineLen
		t.Logf("round %d: redirect %.2fs, captured %.2fs (rss %d KiB), size rotation %.2fs (%d rotations, rss %d KiB), without compression %.2fs, dropped %d",
			round+1, b, p.Seconds, p.PeakRSSKB, s.Seconds, s.Rotations, s.PeakRSSKB, sp.Seconds, s.Dropped+p.Dropped+sp.Dropped)
	}
	mb := float64(lines*lineLen) / 1e6
	med := func(v []float64) float64 { v = append([]float64(nil), v...); sort.Float64s(v); return v[len(v)/2] }
	// Each round's runs follow each other within seconds: the ratio of
	// a round is less moved by a busy neighbour than medians apart.
	ratio := func(v []float64) float64 {
		r := make([]float64, len(v))
		for i := range v {
			r[i] = base[i] / v[i]
		}
		return 100 * med(r)
	}
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	fmt.Printf("\n%d lines of %d bytes (%.0f MB), writes of %s bytes, %d rounds; MB/s: median; of redirect: median of the rounds' ratios\n", lines, lineLen, mb, buf, rounds)
	fmt.Printf("| run | MB/s | of redirect | capturing process CPU |\n| --- | ---: | ---: | ---: |\n")
	fmt.Printf("| shell redirect into a file | %.0f | 100 %% | |\n", mb/med(base))
	fmt.Printf("| captured through Drain, no rotation | %.0f | %.0f %% | %.2f s |\n", mb/med(plain), ratio(plain), med(cpuPlain))
	fmt.Printf("| captured, size rotation every 64 MiB (compress, delaycompress, rotate 7) | %.0f | %.0f %% | %.2f s |\n", mb/med(sized), ratio(sized), med(cpuSized))
	fmt.Printf("| captured, size rotation every 64 MiB, nocompress | %.0f | %.0f %% | %.2f s |\n", mb/med(sizedPlain), ratio(sizedPlain), med(cpuSizedPlain))
	fmt.Printf("moved by splice(2): %.1f %% of the captured bytes\n", 100*float64(spliced)/float64(moved))
	fmt.Printf("peak RSS of the capturing process: %d KiB (max over runs)\n", rss[len(rss)-1])

	// Lines lost under rotation: upkeep with a rotation forced every
	// FORCE_MS, then logrotate copytruncate three times, on the same
	// writer: at full speed, and paced at RATE_MB MB/s, a busy service
	// rather than a disk benchmark. At full speed on a fast disk
	// logrotate's copy chases the writer to its end and the truncate
	// comes after the last line; at a service's pace it does not.
	lr, lrErr := exec.LookPath("logrotate")
	forceMS := envInt("FORCE_MS", 20)
	rate := envInt("RATE_MB", 50)
	for _, w := range []struct {
		lines, rate int64
	}{{lostLines, 0}, {envInt("PACED_LINES", 3_000_000), rate}} {
		pace := "full speed"
		if w.rate > 0 {
			pace = fmt.Sprintf("%d MB/s", w.rate)
		}
		r, err := capture("forced", int(forceMS), w.lines, "RATE_MB="+strconv.FormatInt(w.rate, 10))
		if err != nil {
			t.Fatal(err)
		}
		files := readLog(t, dir, "app.log")
		lost, torn, dup := countLines(files, w.lines)
		fmt.Printf("\n%d lines at %s, upkeep, a rotation forced every %d ms: %d rotations, lost %d, duplicated %d, torn %d (%.2fs)\n",
			w.lines, pace, forceMS, r.Rotations, lost, dup, torn, r.Seconds)
		if lost+dup+torn > 0 {
			t.Errorf("lost %d, duplicated %d, torn %d", lost, dup, torn)
		}
		est := time.Duration(float64(w.lines*lineLen) / (mb / med(base) * 1e6) * float64(time.Second))
		if w.rate > 0 {
			est = time.Duration(float64(w.lines*lineLen) / (float64(w.rate) * 1e6) * float64(time.Second))
		}
		// A file the writer writes itself (O_APPEND), rotated by upkeep
		// three times, at the moments logrotate's runs get below.
		for _, copy := range []bool{false, true} {
			how := "rename + SIGUSR1"
			if copy {
				how = "copytruncate"
			}
			n, lost, dup, torn := ownFile(t, dir, w.lines, w.rate, est, copy)
			fmt.Printf("%d lines at %s, a file the writer writes itself, upkeep %s %d times: lost %d (%.3f %%), duplicated %d, torn %d\n",
				w.lines, pace, how, n, lost, 100*float64(lost)/float64(w.lines), dup, torn)
			if !copy && lost+dup+torn > 0 {
				t.Errorf("rename + reopen: lost %d, duplicated %d, torn %d", lost, dup, torn)
			}
		}
		if lrErr != nil {
			fmt.Println("logrotate not installed: no copytruncate comparison")
			continue
		}
		n, lost, dup, torn := copytruncate(t, lr, dir, w.lines, w.rate, buf, est)
		fmt.Printf("%d lines at %s, logrotate -f copytruncate %d times: lost %d (%.2f %%), duplicated %d, torn %d\n",
			w.lines, pace, n, lost, 100*float64(lost)/float64(w.lines), dup, torn)
	}
}

// copytruncate runs the writer appending (>>) to dir/app.log and
// `logrotate -f` with copytruncate at 1/5, 2/5 and 3/5 of est, the
// writer's expected time; it counts the lines over all files afterwards.
func copytruncate(t *testing.T, lr, dir string, lines, rate int64, buf string, est time.Duration) (runs int, lost, dup, torn int64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	log := filepath.Join(dir, "app.log")
	conf := filepath.Join(t.TempDir(), "app.conf")
	os.WriteFile(conf, []byte(log+" {\n  rotate 100\n  copytruncate\n  missingok\n  nocompress\n}\n"), 0o644)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOGSINK_HELPER=writer", "LINES="+strconv.FormatInt(lines, 10), "BUF="+buf, "RATE_MB="+strconv.FormatInt(rate, 10))
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	state := filepath.Join(t.TempDir(), "state")
	start := time.Now()
	for n := 1; n <= 3; n++ {
		select {
		case err := <-exited:
			exited <- err
			t.Logf("the writer ended before logrotate run %d", n)
			n = 4
			continue
		case <-time.After(time.Until(start.Add(est * time.Duration(n) / 5))):
		}
		if out, err := exec.Command(lr, "-f", "-s", state, conf).CombinedOutput(); err != nil || len(out) > 0 {
			t.Logf("logrotate: %v %s", err, out)
		}
		runs++
	}
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
	files := readLogLoose(t, dir, "app.log")
	for name, l := range files {
		t.Logf("%s: %d lines", name, len(l))
	}
	lost, torn, dup = countLines(files, lines)
	return runs, lost, dup, torn
}

// ownFile runs fileWriter on dir/app.log (writes of 4 KiB, whole lines) and
// has a File rotate it at 1/5, 2/5 and 3/5 of est, the writer's expected
// time, by rename and SIGUSR1 or by copytruncate; it counts the lines over
// all files afterwards.
func ownFile(t *testing.T, dir string, lines, rate int64, est time.Duration, copy bool) (runs int, lost, dup, torn int64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	path := filepath.Join(dir, "app.log")
	cmd := startFileWriter(t, path, lines, int(rate))
	f := NewFile(path, spec.Log{When: spec.Untimed, Rotate: -1}, Declared{
		CopyTruncate: copy,
		Reopen:       func() error { return reopenSignal(cmd) },
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	start := time.Now()
	for n := 1; n <= 3; n++ {
		select {
		case err := <-exited:
			exited <- err
			n = 4
			continue
		case <-time.After(time.Until(start.Add(est * time.Duration(n) / 5))):
		}
		if _, err := f.Rotate(); err != nil {
			t.Fatal(err)
		}
		runs++
	}
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
	f.Close()
	lost, torn, dup = countLines(readLogLoose(t, dir, "app.log"), lines)
	return runs, lost, dup, torn
}

// countLines counts, over all files, the numbers below n never seen, seen
// more than once, and the lines that are not whole.
func countLines(files map[string][]string, n int64) (lost, torn, dup int64) {
	seen := make([]uint8, n)
	for _, lines := range files {
		for _, l := range lines {
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				torn++
				continue
			}
			i, _ := strconv.ParseInt(m[1], 10, 64)
			if i < n && seen[i] < 255 {
				seen[i]++
			}
		}
	}
	for _, c := range seen {
		if c == 0 {
			lost++
		} else if c > 1 {
			dup++
		}
	}
	return
}

// readLogLoose reads like readLog, for files that copytruncate may have
// left with NUL bytes or a missing last newline.
func readLogLoose(t *testing.T, dir, base string) map[string][]string {
	out := map[string][]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSuffix(string(b), "\n")
		if s != "" {
			out[e.Name()] = strings.Split(s, "\n")
		}
	}
	return out
}

// BenchmarkWrite is the hot path: one 64 KiB chunk of whole lines appended.
func BenchmarkWrite(b *testing.B) {
	s, err := OpenWith(filepath.Join(b.TempDir(), "app.log"), spec.Log{When: spec.Untimed, Size: 64 << 20, Rotate: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	chunk := make([]byte, 0, 64<<10)
	for i := int64(0); len(chunk)+lineLen <= cap(chunk); i++ {
		chunk = appendLine(chunk, i)
	}
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		s.Write(chunk)
	}
}

// BenchmarkDrain moves lines through a real pipe into a sink.
func BenchmarkDrain(b *testing.B) {
	s, err := OpenWith(filepath.Join(b.TempDir(), "app.log"), spec.Log{When: spec.Untimed, Size: 64 << 20, Rotate: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perOp = 1000
	b.SetBytes(perOp * lineLen)
	r, w, _ := os.Pipe()
	done := make(chan struct{})
	go func() { s.Drain(r); close(done) }()
	b.ResetTimer()
	writeLines(w, 0, int64(b.N)*perOp, 64<<10)
	w.Close()
	<-done
	r.Close()
}
