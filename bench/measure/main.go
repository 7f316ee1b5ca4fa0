// Command measure is the timing helper of bench/run.sh: it watches /proc
// closely enough (sub-millisecond) to time process supervisors from outside,
// the same way for every supervisor.
//
// The kernel here has no /proc/<pid>/task/<tid>/children, and a full /proc
// scan costs milliseconds, so new processes are found through the pid
// allocator instead: /proc/sys/kernel/ns_last_pid says which pids were
// handed out since the last look, and only those are read. A process counts
// once it has exec'd: its comm is "sleep" and its last argument is the
// benchmark's marker.
//
// Every subcommand is bounded by its own -timeout.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: measure restart|startup|usage|timecmd|count|pids|lastpid|reap ...")
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "restart":
		err = cmdRestart(args)
	case "startup":
		err = cmdStartup(args)
	case "usage":
		err = cmdUsage(args)
	case "timecmd":
		err = cmdTimecmd(args)
	case "count":
		err = cmdCount(args)
	case "pids":
		err = cmdPids(args)
	case "lastpid":
		var lp int
		if lp, err = lastPid(); err == nil {
			fmt.Println(lp)
		}
	case "reap":
		err = cmdReap(args)
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "measure: "+msg)
	os.Exit(1)
}

// ---------------------------------------------------------------- /proc

type pstat struct {
	pid, ppid  int
	comm       string
	state      byte
	utime      uint64 // clock ticks
	stime      uint64
	startTicks uint64
}

func readStat(pid int) (pstat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return pstat{}, err
	}
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return pstat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[close+1:]))
	// f[0] = state (field 3), f[1] = ppid (4), f[11] = utime (14), f[12] = stime (15), f[19] = starttime (22)
	if len(f) < 20 {
		return pstat{}, errors.New("short stat")
	}
	st := pstat{pid: pid, comm: string(b[open+1 : close]), state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.utime, _ = strconv.ParseUint(f[11], 10, 64)
	st.stime, _ = strconv.ParseUint(f[12], 10, 64)
	st.startTicks, _ = strconv.ParseUint(f[19], 10, 64)
	return st, nil
}

func cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// isMarked reports whether pid is an exec'd `sleep <marker>`.
func isMarked(st pstat, marker string) bool {
	if st.comm != "sleep" || st.state == 'Z' {
		return false
	}
	a := cmdline(st.pid)
	return len(a) >= 2 && a[len(a)-1] == marker
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func scan() map[int]pstat {
	out := map[int]pstat{}
	for _, pid := range allPids() {
		if st, err := readStat(pid); err == nil {
			out[pid] = st
		}
	}
	return out
}

// descendants returns root and every process below it.
func descendants(all map[int]pstat, root int) map[int]bool {
	kids := map[int][]int{}
	for pid, st := range all {
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	in := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			if !in[k] {
				in[k] = true
				queue = append(queue, k)
			}
		}
	}
	return in
}

func lastPid() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

var pidMax = func() int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 32768
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 32768
	}
	return n
}()

// newPids lists the pids allocated after `from` up to `to`, across a wrap.
func newPids(from, to int) []int {
	var out []int
	if to >= from {
		for p := from + 1; p <= to; p++ {
			out = append(out, p)
		}
		return out
	}
	for p := from + 1; p < pidMax; p++ {
		out = append(out, p)
	}
	for p := 300; p <= to; p++ { // the kernel skips the first 300 after a wrap
		out = append(out, p)
	}
	return out
}

// tracker follows the processes created under a set of ancestors, cheaply:
// it reads only pids allocated since its last look.
type tracker struct {
	last       int
	ancestors  map[int]bool // processes whose new children are followed
	candidates map[int]bool // followed, not yet seen as the marked sleep
	marker     string
	depth      bool              // follow grandchildren (runsvdir → runsv → sleep)
	unseen     map[int]time.Time // allocated pids not yet in /proc, since when
}

// unseenFor bounds how long an allocated pid may take to show in /proc.
const unseenFor = 250 * time.Millisecond

func (t *tracker) look(found func(pid int)) {
	for p, first := range t.unseen {
		if !t.consider(p) && time.Since(first) > unseenFor {
			delete(t.unseen, p) // it was a short-lived process, or a thread that ended
		}
	}
	lp, err := lastPid()
	if err != nil || lp == t.last {
		t.recheck(found)
		return
	}
	for _, p := range newPids(t.last, lp) {
		t.consider(p)
	}
	t.last = lp
	t.recheck(found)
}

// consider reads a new pid. The allocator hands a pid out before fork
// makes the process visible in /proc, so a pid not there yet is read again
// on the next looks, for a while.
func (t *tracker) consider(p int) bool {
	st, err := readStat(p)
	if err != nil {
		if _, ok := t.unseen[p]; !ok {
			t.unseen[p] = time.Now()
		}
		return false
	}
	delete(t.unseen, p)
	if !t.ancestors[st.ppid] && t.depth && st.ppid > 1 {
		// its parent may be new too and not read yet (it was not in /proc
		// at its turn): look one level up
		if pst, err := readStat(st.ppid); err == nil && t.ancestors[pst.ppid] {
			t.ancestors[st.ppid] = true
		}
	}
	if t.ancestors[st.ppid] {
		// a process with a child is a go-between (runsv), not the
		// service: stop re-reading it
		delete(t.candidates, st.ppid)
		t.candidates[p] = true
		if t.depth {
			// pids ascend, so a child is read after its parent:
			// a runsv's sleep is found in the same look
			t.ancestors[p] = true
		}
	}
	return true
}

func (t *tracker) recheck(found func(pid int)) {
	for p := range t.candidates {
		st, err := readStat(p)
		if err != nil || st.state == 'Z' {
			delete(t.candidates, p)
			continue
		}
		if isMarked(st, t.marker) {
			delete(t.candidates, p)
			found(p)
		}
	}
}

// markedChildren lists the exec'd `sleep <marker>` processes below root.
func markedBelow(root int, marker string, maxDepth int) []int {
	all := scan()
	var out []int
	for pid, st := range all {
		d, p := 0, pid
		for d < maxDepth && p > 1 {
			p = all[p].ppid
			d++
			if p == root {
				if isMarked(st, marker) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	sort.Ints(out)
	return out
}

// ---------------------------------------------------------------- stats

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	// nearest rank
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// ---------------------------------------------------------------- restart

// cmdRestart: SIGKILL the service's process n times and time until a new
// one has exec'd.
func cmdRestart(args []string) error {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	parent := fs.Int("parent", 0, "the process whose child the service's process is (supervisor, or runsv)")
	marker := fs.String("marker", "", "last argument of the service's sleep")
	n := fs.Int("n", 50, "kills")
	gap := fs.Duration("gap", 300*time.Millisecond, "how long the new process runs before the next kill")
	poll := fs.Duration("poll", 200*time.Microsecond, "poll interval")
	timeout := fs.Duration("timeout", 60*time.Second, "bound for the whole run")
	each := fs.Duration("each", 5*time.Second, "bound for one restart")
	raw := fs.String("raw", "", "file to write each sample (ms) to")
	_ = fs.Parse(args)
	if *parent == 0 || *marker == "" {
		return errors.New("restart: -parent and -marker are required")
	}
	end := time.Now().Add(*timeout)
	var cur int
	for time.Now().Before(end) {
		if kids := markedBelow(*parent, *marker, 1); len(kids) > 0 {
			cur = kids[0]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if cur == 0 {
		return fmt.Errorf("restart: no `sleep %s` child of %d", *marker, *parent)
	}
	var samples []float64
	failures := 0
	for i := 0; i < *n && time.Now().Before(end); i++ {
		time.Sleep(*gap)
		lp, err := lastPid()
		if err != nil {
			return err
		}
		t := &tracker{last: lp, ancestors: map[int]bool{*parent: true}, candidates: map[int]bool{}, unseen: map[int]time.Time{}, marker: *marker}
		t0 := time.Now()
		if err := syscall.Kill(cur, syscall.SIGKILL); err != nil {
			return fmt.Errorf("restart: kill %d: %w", cur, err)
		}
		next := 0
		for next == 0 && time.Since(t0) < *each {
			t.look(func(p int) {
				if p != cur && next == 0 {
					next = p
				}
			})
			if next == 0 {
				time.Sleep(*poll)
			}
		}
		lat := time.Since(t0)
		if next == 0 {
			failures++
			// find whatever runs now, so the next round can go on
			for time.Now().Before(end) {
				if kids := markedBelow(*parent, *marker, 1); len(kids) > 0 && kids[0] != cur {
					next = kids[0]
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if next == 0 {
				break
			}
		} else {
			samples = append(samples, ms(lat))
		}
		cur = next
	}
	if *raw != "" {
		var b strings.Builder
		for _, s := range samples {
			fmt.Fprintf(&b, "%.3f\n", s)
		}
		_ = os.WriteFile(*raw, []byte(b.String()), 0o644)
	}
	fmt.Printf("n=%d failures=%d p50=%.2f p95=%.2f min=%.2f max=%.2f\n", len(samples), failures,
		percentile(samples, 50), percentile(samples, 95), percentile(samples, 0), percentile(samples, 100))
	return nil
}

// ---------------------------------------------------------------- startup

// cmdStartup: from t0 (taken by the caller before it launched the
// supervisor) until count marked sleeps run below root.
func cmdStartup(args []string) error {
	fs := flag.NewFlagSet("startup", flag.ExitOnError)
	root := fs.Int("root", 0, "the supervisor's pid")
	since := fs.Int("since", 0, "ns_last_pid read before the supervisor was launched")
	t0s := fs.String("t0", "", "launch time, seconds since the epoch (bash $EPOCHREALTIME)")
	marker := fs.String("marker", "", "last argument of the services' sleep")
	count := fs.Int("count", 100, "how many")
	poll := fs.Duration("poll", time.Millisecond, "poll interval")
	timeout := fs.Duration("timeout", 30*time.Second, "bound")
	_ = fs.Parse(args)
	t0f, err := strconv.ParseFloat(strings.ReplaceAll(*t0s, ",", "."), 64)
	if err != nil || *root == 0 || *since == 0 || *marker == "" {
		return errors.New("startup: -root, -since, -t0 and -marker are required")
	}
	t0 := time.Unix(0, int64(t0f*1e9))
	t := &tracker{last: *since, ancestors: map[int]bool{*root: true}, candidates: map[int]bool{}, unseen: map[int]time.Time{}, marker: *marker, depth: true}
	seen := map[int]bool{}
	var lastSeen time.Time
	for len(seen) < *count && time.Since(t0) < *timeout {
		t.look(func(p int) {
			seen[p] = true
			lastSeen = time.Now()
		})
		if len(seen) < *count {
			time.Sleep(*poll)
		}
	}
	if len(seen) < *count {
		// the tracker may have missed some (pid reuse, a fork it read too
		// late): count from a full scan before giving up
		n := len(markedBelow(*root, *marker, 3))
		return fmt.Errorf("startup: only %d (scan: %d) of %d after %v", len(seen), n, *count, *timeout)
	}
	fmt.Printf("%.1f\n", ms(lastSeen.Sub(t0)))
	return nil
}

// ---------------------------------------------------------------- usage

// cmdUsage: for each group NAME=PID[,PID...][+kids] (kids: add the
// children of the first pid whose comm is given after +), sum RSS and PSS now, and
// CPU time (utime+stime) over -secs seconds.
func cmdUsage(args []string) error {
	fs := flag.NewFlagSet("usage", flag.ExitOnError)
	secs := fs.Float64("secs", 30, "idle window")
	_ = fs.Parse(args)
	type group struct {
		name string
		pids []int
		cpu0 uint64
		t0   time.Time
	}
	var groups []*group
	all := scan()
	for _, spec := range fs.Args() {
		name, rest, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("usage: bad group %q", spec)
		}
		list, kidComm, _ := strings.Cut(rest, "+")
		g := &group{name: name}
		for _, s := range strings.Split(list, ",") {
			pid, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("usage: bad pid %q", s)
			}
			g.pids = append(g.pids, pid)
		}
		if kidComm != "" {
			for pid, st := range all {
				if st.ppid == g.pids[0] && st.comm == kidComm {
					g.pids = append(g.pids, pid)
				}
			}
		}
		groups = append(groups, g)
	}
	cpu := func(g *group) uint64 {
		var sum uint64
		for _, p := range g.pids {
			if st, err := readStat(p); err == nil {
				sum += st.utime + st.stime
			}
		}
		return sum
	}
	for _, g := range groups {
		g.cpu0, g.t0 = cpu(g), time.Now()
	}
	time.Sleep(time.Duration(*secs * float64(time.Second)))
	const hz = 100 // CLK_TCK on Linux
	for _, g := range groups {
		d := cpu(g) - g.cpu0
		wall := time.Since(g.t0).Seconds()
		var rss, pss uint64
		for _, p := range g.pids {
			rss += statusKB(p, "VmRSS:")
			pss += rollupKB(p, "Pss:")
		}
		fmt.Printf("%s procs=%d rss_kb=%d pss_kb=%d cpu_ticks=%d cpu_pct=%.3f wall_s=%.1f\n",
			g.name, len(g.pids), rss, pss, d, float64(d)/hz/wall*100, wall)
	}
	return nil
}

func statusKB(pid int, key string) uint64 {
	return kbField("/proc/"+strconv.Itoa(pid)+"/status", key)
}

func rollupKB(pid int, key string) uint64 {
	return kbField("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", key)
}

func kbField(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// ---------------------------------------------------------------- timecmd

// cmdTimecmd: run a command n times (stdout and stderr discarded) and
// report the median and p95 wall time of the runs, and how many failed.
func cmdTimecmd(args []string) error {
	fs := flag.NewFlagSet("timecmd", flag.ExitOnError)
	n := fs.Int("n", 20, "runs")
	each := fs.Duration("timeout", 20*time.Second, "bound for one run")
	out := fs.String("out", "", "file to keep the last run's output in")
	allowFail := fs.Bool("allow-fail", false, "a non-zero exit is expected: do not warn")
	_ = fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("timecmd: no command")
	}
	var samples []float64
	failed := 0
	var lastErr string
	for i := 0; i < *n; i++ {
		c := exec.Command(argv[0], argv[1:]...)
		var buf bytes.Buffer
		c.Stdout, c.Stderr = &buf, &buf
		t0 := time.Now()
		if err := c.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(*each):
			_ = c.Process.Kill()
			err = <-done
			if err == nil {
				err = errors.New("timed out")
			}
		}
		samples = append(samples, ms(time.Since(t0)))
		if err != nil {
			failed++
			lastErr = err.Error() + ": " + strings.TrimSpace(buf.String())
		}
		if *out != "" {
			_ = os.WriteFile(*out, buf.Bytes(), 0o644)
		}
	}
	fmt.Printf("n=%d failed=%d p50=%.2f p95=%.2f min=%.2f max=%.2f\n", len(samples), failed,
		percentile(samples, 50), percentile(samples, 95), percentile(samples, 0), percentile(samples, 100))
	if failed > 0 && !*allowFail {
		fmt.Fprintf(os.Stderr, "measure: timecmd: %d runs failed; last: %s\n", failed, lastErr)
	}
	return nil
}

// ---------------------------------------------------------------- count / pids

// cmdCount: how many `sleep <marker>` processes exist anywhere.
func cmdCount(args []string) error {
	fs := flag.NewFlagSet("count", flag.ExitOnError)
	marker := fs.String("marker", "", "last argument of the sleep")
	_ = fs.Parse(args)
	n := 0
	for _, st := range scan() {
		if isMarked(st, *marker) {
			n++
		}
	}
	fmt.Println(n)
	return nil
}

// cmdPids: the children of -parent whose comm is -comm and, with -arg,
// whose last argument is that (e.g. the runsv of one service).
func cmdPids(args []string) error {
	fs := flag.NewFlagSet("pids", flag.ExitOnError)
	parent := fs.Int("parent", 0, "parent pid")
	comm := fs.String("comm", "", "comm")
	arg := fs.String("arg", "", "last argument")
	wait := fs.Duration("wait", 10*time.Second, "wait this long for at least one")
	_ = fs.Parse(args)
	end := time.Now().Add(*wait)
	for {
		var out []int
		for pid, st := range scan() {
			if st.ppid != *parent || (*comm != "" && st.comm != *comm) {
				continue
			}
			if *arg != "" {
				a := cmdline(pid)
				if len(a) == 0 || a[len(a)-1] != *arg {
					continue
				}
			}
			out = append(out, pid)
		}
		if len(out) > 0 || time.Now().After(end) {
			sort.Ints(out)
			for _, p := range out {
				fmt.Println(p)
			}
			if len(out) == 0 {
				return fmt.Errorf("pids: no child of %d with comm %q arg %q", *parent, *comm, *arg)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- reap

// cmdReap: SIGKILL every process this benchmark left: those whose working
// directory is under -dir (when given), or that are a `sleep <marker>` for
// one of the markers. Nothing else is touched. Prints how many it killed.
func cmdReap(args []string) error {
	fs := flag.NewFlagSet("reap", flag.ExitOnError)
	dir := fs.String("dir", "", "the benchmark's temp dir")
	markers := fs.String("markers", "", "comma-separated sleep markers")
	_ = fs.Parse(args)
	if *dir != "" && (!filepath.IsAbs(*dir) || filepath.Clean(*dir) == "/") {
		return errors.New("reap: -dir must be an absolute temp dir")
	}
	marks := map[string]bool{}
	for _, m := range strings.Split(*markers, ",") {
		if m != "" {
			marks[m] = true
		}
	}
	self := os.Getpid()
	anc := map[int]bool{}
	all := scan()
	for p := self; p > 1; p = all[p].ppid {
		anc[p] = true
		if _, ok := all[p]; !ok {
			break
		}
	}
	prefix := filepath.Clean(*dir) + "/"
	killed := 0
	for pass := 0; pass < 3; pass++ {
		n := 0
		for pid, st := range scan() {
			if anc[pid] || st.state == 'Z' {
				continue
			}
			hit := false
			if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err == nil && *dir != "" && (cwd+"/" == prefix || strings.HasPrefix(cwd, prefix)) {
				hit = true
			}
			if !hit && st.comm == "sleep" {
				if a := cmdline(pid); len(a) >= 2 && marks[a[len(a)-1]] {
					hit = true
				}
			}
			if hit && syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
		killed += n
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println(killed)
	return nil
}
