package control

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// limitListener caps the connections open at once, so that no number of
// clients can exhaust the daemon's descriptors: at most max in all, and at
// most perUID for any one uid but root's and the daemon's own (a flood
// from one user cannot crowd out the others). When a new connection finds no room, the oldest
// one without a request in flight (an idle keep-alive, or one that never
// sent a whole header) is closed to make room; when every one is busy, the
// new one waits up to wait for a slot and is closed otherwise.
type limitListener struct {
	*net.UnixListener
	max, perUID int
	self        uint32 // the daemon's uid: no per-uid cap, as root
	wait        time.Duration

	mu    sync.Mutex
	conns map[*peerConn]struct{}
	byUID map[uint32]int
	freed chan struct{} // a slot was released

	evicted, refused atomic.Int64
}

func newLimitListener(l *net.UnixListener, max, perUID int, self uint32, wait time.Duration) *limitListener {
	return &limitListener{
		UnixListener: l, max: max, perUID: perUID, self: self, wait: wait,
		conns: map[*peerConn]struct{}{}, byUID: map[uint32]int{}, freed: make(chan struct{}, 1),
	}
}

// defaultMaxConns leaves room under the descriptor limit for everything
// else the daemon holds (pipes, logs, pidfds; a request briefly holds a
// pidfd too, hence the halving): at most 4096, at least 16.
func defaultMaxConns() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 256
	}
	n := (int(min(rl.Cur, 1<<20)) - 256) / 2
	return max(16, min(4096, n))
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		pc := newPeerConn(c)
		if l.admit(pc) {
			return pc, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}

// admit finds pc a slot, closing idle connections or waiting for one.
func (l *limitListener) admit(pc *peerConn) bool {
	uid := pc.uid()
	deadline := time.Now().Add(l.wait)
	for {
		var victim *peerConn
		l.mu.Lock()
		full := len(l.conns) >= l.max
		overUID := uid != 0 && uid != l.self && l.byUID[uid] >= l.perUID
		if !full && !overUID {
			pc.l = l
			l.conns[pc] = struct{}{}
			l.byUID[uid]++
			l.mu.Unlock()
			return true
		}
		victim = l.oldestIdle(uid, overUID)
		if victim != nil {
			l.drop(victim)
		}
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.UnixConn.Close()
			continue
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(left)
		select {
		case <-l.freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// oldestIdle returns the longest-open idle connection (of uid only, when
// sameUID), or nil. A scan: the table holds a few thousand at most, and
// it runs only when the table is full.
func (l *limitListener) oldestIdle(uid uint32, sameUID bool) *peerConn {
	var best *peerConn
	for c := range l.conns {
		if !c.idle || (sameUID && c.uid() != uid) {
			continue
		}
		if best == nil || c.accepted.Before(best.accepted) {
			best = c
		}
	}
	return best
}

// drop removes c from the table; l.mu is held.
func (l *limitListener) drop(c *peerConn) {
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	if l.byUID[c.uid()]--; l.byUID[c.uid()] == 0 {
		delete(l.byUID, c.uid())
	}
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (l *limitListener) release(c *peerConn) {
	l.mu.Lock()
	l.drop(c)
	l.mu.Unlock()
}

// connState follows each connection's state for oldestIdle: a connection
// is busy from a whole request header to the end of its response.
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	pc, ok := c.(*peerConn)
	if !ok {
		return
	}
	switch st {
	case http.StateNew, http.StateIdle:
		l.mu.Lock()
		pc.idle = true
		l.mu.Unlock()
	case http.StateActive:
		l.mu.Lock()
		pc.idle = false
		l.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		l.release(pc)
	}
}

// open returns how many connections are open.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
