package supervise

import (
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"upkeep/internal/api"
	"upkeep/internal/health"
)

// offHeap returns n zeroed T in a mapping of their own, populated at once.
// The check rings live there: 12 MB for 500 checked services that, on the
// Go heap, would raise the collector's target by half as much again (GOGC
// 50) and with it the daemon's footprint, for memory that is pointer-free
// and never garbage. T must hold no pointers.
func offHeap[T any](n int) []T {
	size := n * int(unsafe.Sizeof(*new(T)))
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		s := make([]T, n)
		clear(s) // touch it: the footprint is the same from the start
		return s
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// freeOffHeap unmaps what offHeap mapped (a slice of the Go heap, its
// fallback, is left to the collector).
func freeOffHeap[T any](s []T) {
	if len(s) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
	_ = unix.Munmap(b)
}

// ring is a bounded buffer that keeps the newest n items. It grows as it
// fills, so a quiet service costs nothing; keep T free of pointers where it
// is large, so the garbage collector never scans it.
type ring[T any] struct {
	buf  []T
	n    int
	next int
}

func newRing[T any](n int) *ring[T] { return &ring[T]{n: n} }

func (r *ring[T]) add(v T) {
	if len(r.buf) < r.n {
		if len(r.buf) == cap(r.buf) {
			grown := make([]T, len(r.buf), min(max(2*cap(r.buf), 8), r.n))
			copy(grown, r.buf)
			r.buf = grown
		}
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
}

// items returns the contents, oldest first.
// each calls f with each item, oldest first, copying nothing.
func (r *ring[T]) each(f func(T)) {
	for _, v := range r.buf[r.next:] {
		f(v)
	}
	for _, v := range r.buf[:r.next] {
		f(v)
	}
}

func (r *ring[T]) items() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// checkRun and sample are how the rings hold check runs and samples: small
// and pointer-free (times as Unix nanoseconds, the check by index).
type checkRun struct {
	at, latency int64
	late        int32 // microseconds, clamped
	check       uint16
	ok          bool
}

type sample struct {
	at       uint32  // Unix seconds: samples are 10 s apart
	rssKiB   uint32  // up to 4 TiB
	cpu      float32 // seconds; the history is for graphs, 7 digits do
	restarts uint32
} // 16 bytes, not 32: an hour of samples is 5.6 KB per service

const (
	historyEvents  = 256
	historyChecks  = 1024
	historySamples = 360
	sampleEvery    = 10 * time.Second
	recentEvents   = 1024
)

// journal holds the histories of all services and the daemon-wide recent
// events, and feeds followers (`upkeep events -f`).
type journal struct {
	mu      sync.Mutex
	recent  *ring[api.Event]
	events  map[string]*ring[api.Event]
	checks  map[string]*ring[checkRun]
	names   map[string][]string // check names of a service, by checkRun.check
	samples map[string]*ring[sample]
	subs    map[chan api.Event]struct{}
}

func newJournal() *journal {
	return &journal{
		recent:  newRing[api.Event](recentEvents),
		events:  map[string]*ring[api.Event]{},
		checks:  map[string]*ring[checkRun]{},
		names:   map[string][]string{},
		samples: map[string]*ring[sample]{},
		subs:    map[chan api.Event]struct{}{},
	}
}

func ringOf[T any](m map[string]*ring[T], name string, n int) *ring[T] {
	r, ok := m[name]
	if !ok {
		r = newRing[T](n)
		m[name] = r
	}
	return r
}

func (j *journal) add(e api.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recent.add(e)
	ringOf(j.events, e.Service, historyEvents).add(e)
	for ch := range j.subs {
		select {
		case ch <- e:
		default: // a follower that cannot keep up loses events, never slows a service
		}
	}
}

func (j *journal) addCheck(service string, r api.CheckResult) {
	j.mu.Lock()
	defer j.mu.Unlock()
	names := j.names[service]
	idx := slices.Index(names, r.Check)
	if idx < 0 {
		idx = len(names)
		j.names[service] = append(names, r.Check)
	}
	ring, ok := j.checks[service]
	if !ok {
		// Allocated whole and touched at once: a checked service's memory is
		// what it will be after an hour, not a slope that looks like a leak.
		ring = newRing[checkRun](historyChecks)
		ring.buf = offHeap[checkRun](historyChecks)[:0]
		j.checks[service] = ring
	}
	late := min(r.Late/time.Microsecond, math.MaxInt32)
	ring.add(checkRun{at: r.Time.UnixNano(), latency: int64(r.Latency), late: int32(late), check: uint16(idx), ok: r.OK})
}

func (j *journal) addSample(service string, s api.Sample) {
	j.mu.Lock()
	ringOf(j.samples, service, historySamples).add(sample{at: uint32(s.Time.Unix()), rssKiB: uint32(min(s.RSSBytes>>10, math.MaxUint32)), cpu: float32(s.CPUSeconds), restarts: uint32(s.Restarts)})
	j.mu.Unlock()
}

func (j *journal) forget(service string) {
	j.mu.Lock()
	delete(j.events, service)
	if r, ok := j.checks[service]; ok {
		freeOffHeap(r.buf[:cap(r.buf)]) // items() copies: nothing else points into it
	}
	delete(j.checks, service)
	delete(j.names, service)
	delete(j.samples, service)
	j.mu.Unlock()
}

func ringItems[T any](r *ring[T]) []T {
	if r == nil {
		return nil
	}
	return r.items()
}

// event records e (time stamped now) and hands it to followers.
func (d *Daemon) event(e api.Event) {
	e.Time = time.Now()
	d.journal.add(e)
}

// observeCheck records a check run and passes it to the metrics observer.
func (d *Daemon) observeCheck(service string, ev health.Event) {
	r := ev.Result
	d.journal.addCheck(service, api.CheckResult{Time: r.Started, Check: r.Check, OK: r.OK, Latency: r.Latency, Late: max(r.Started.Sub(r.Due), 0)})
	if o := d.observer; o != nil {
		o.CheckRan(service, r.Check, r.OK, r.Latency)
	}
}

// Observer receives every check run; the metrics package implements it.
type Observer interface {
	CheckRan(service, check string, ok bool, latency time.Duration)
}

// SetObserver installs o; call before Run.
func (d *Daemon) SetObserver(o Observer) { d.observer = o }

// Events returns the recent events, oldest first, of one service or all.
func (d *Daemon) Events(service string) []api.Event {
	d.journal.mu.Lock()
	defer d.journal.mu.Unlock()
	if service == "" {
		return d.journal.recent.items()
	}
	if r, ok := d.journal.events[service]; ok {
		return r.items()
	}
	return nil
}

// Follow returns a channel of events as they happen, until cancel.
func (d *Daemon) Follow() (<-chan api.Event, func()) {
	ch := make(chan api.Event, 256)
	d.journal.mu.Lock()
	d.journal.subs[ch] = struct{}{}
	d.journal.mu.Unlock()
	return ch, func() {
		d.journal.mu.Lock()
		delete(d.journal.subs, ch)
		d.journal.mu.Unlock()
	}
}

// History returns what the daemon remembers of a service.
func (d *Daemon) History(name string) (api.History, error) {
	if _, err := d.get(name); err != nil {
		return api.History{}, err
	}
	j := d.journal
	j.mu.Lock()
	defer j.mu.Unlock()
	var h api.History
	if r, ok := j.events[name]; ok {
		h.Events = r.items()
	}
	for _, c := range ringItems(j.checks[name]) {
		h.Checks = append(h.Checks, api.CheckResult{Time: time.Unix(0, c.at), Check: j.names[name][c.check], OK: c.ok,
			Latency: time.Duration(c.latency), Late: time.Duration(c.late) * time.Microsecond})
	}
	for _, s := range ringItems(j.samples[name]) {
		h.Samples = append(h.Samples, api.Sample{Time: time.Unix(int64(s.at), 0), CPUSeconds: float64(s.cpu), RSSBytes: uint64(s.rssKiB) << 10, Restarts: int(s.restarts)})
	}
	return h, nil
}

// Series calls onSample and onCheck with a service's samples and check runs
// since t, oldest first, under the journal's lock (so they must be quick),
// copying nothing: the dashboard draws every service's every 10 s, and
// History's full copies of 100 services were 12 MB of garbage a page.
func (d *Daemon) Series(name string, since time.Time, onSample func(api.Sample), onCheck func(api.CheckResult)) error {
	if _, err := d.get(name); err != nil {
		return err
	}
	j := d.journal
	j.mu.Lock()
	defer j.mu.Unlock()
	if r := j.samples[name]; r != nil && onSample != nil {
		at := since.Unix()
		r.each(func(s sample) {
			if int64(s.at) >= at {
				onSample(api.Sample{Time: time.Unix(int64(s.at), 0), CPUSeconds: float64(s.cpu), RSSBytes: uint64(s.rssKiB) << 10, Restarts: int(s.restarts)})
			}
		})
	}
	if r := j.checks[name]; r != nil && onCheck != nil {
		at := since.UnixNano()
		r.each(func(c checkRun) {
			if c.at >= at {
				onCheck(api.CheckResult{Time: time.Unix(0, c.at), Check: j.names[name][c.check], OK: c.ok,
					Latency: time.Duration(c.latency), Late: time.Duration(c.late) * time.Microsecond})
			}
		})
	}
	return nil
}

// sample records every running service's CPU and memory every sampleEvery:
// one wake-up for the whole daemon, a few /proc reads per service.
func (d *Daemon) sample(done <-chan struct{}) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			// Only what a sample holds: a whole Status (checks, log
			// errors, sorted) of 1,000 services every 10 s was most of
			// an idle daemon's CPU, with the garbage it left.
			d.mu.Lock()
			svcs := make([]*service, 0, len(d.svcs))
			for _, sv := range d.svcs {
				svcs = append(svcs, sv)
			}
			d.mu.Unlock()
			for _, sv := range svcs {
				st := sv.snapshot()
				if st.Pid == 0 {
					continue
				}
				u := usageOf(sv, st.Pid)
				d.journal.addSample(st.Name, api.Sample{Time: now, CPUSeconds: u.CPUSeconds, RSSBytes: u.RSSBytes, Restarts: st.Restarts})
			}
		}
	}
}
