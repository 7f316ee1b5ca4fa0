package logsink

import (
	"os"
	"sort"
	"strings"
	"sync"
)

// A log directory holds two files per service, and every sink's archive
// lists it at start to find what an earlier daemon left: a thousand
// services starting at once read a 2,000-entry directory 2,000 times, which
// took a third of the daemon's start-up CPU. listDir shares one listing
// among the callers that wait for it. It never hands out a listing that
// began before the call, so a caller sees every change made before it asked,
// just as with its own ReadDir.
func listDir(dir string) ([]os.DirEntry, error) {
	v, ok := listers.Load(dir)
	if !ok {
		v, _ = listers.LoadOrStore(dir, &lister{dir: dir})
	}
	return v.(*lister).list()
}

// listers holds one lister per log directory (a handful per daemon).
var listers sync.Map

type lister struct {
	dir  string
	mu   sync.Mutex
	cur  *listing // running now
	next *listing // to run after cur, for those who asked while it ran
}

type listing struct {
	ents []os.DirEntry // sorted by name, read-only once done is closed
	err  error
	done chan struct{}
}

func (l *lister) list() ([]os.DirEntry, error) {
	l.mu.Lock()
	if l.cur == nil {
		r := &listing{done: make(chan struct{})}
		l.cur = r
		l.mu.Unlock()
		l.run(r)
		return r.ents, r.err
	}
	// cur may have read the directory before this caller's change: wait
	// for the next one, shared by everyone who arrives meanwhile.
	if l.next == nil {
		l.next = &listing{done: make(chan struct{})}
	}
	r := l.next
	l.mu.Unlock()
	<-r.done
	return r.ents, r.err
}

// run reads the directory for r, then starts the listing that waited.
func (l *lister) run(r *listing) {
	r.ents, r.err = os.ReadDir(l.dir)
	close(r.done)
	l.mu.Lock()
	n := l.next
	l.cur, l.next = n, nil
	l.mu.Unlock()
	if n != nil {
		go l.run(n)
	}
}

// withPrefix is the run of sorted entries whose names begin with p.
func withPrefix(ents []os.DirEntry, p string) []os.DirEntry {
	i := sort.Search(len(ents), func(i int) bool { return ents[i].Name() >= p })
	j := i
	for j < len(ents) && strings.HasPrefix(ents[j].Name(), p) {
		j++
	}
	return ents[i:j]
}
