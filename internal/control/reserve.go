package control

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// Identifying a peer takes two descriptors for a moment (its pidfd and
// /proc/PID/status), so at the daemon's descriptor limit every request
// would be refused, root's included, just when the operator needs status.
// The reserve keeps two descriptors open (the classic spare-fd trick) and
// lends them to one identification at a time when the table is full.
type reserve struct {
	mu  sync.Mutex
	fds []int
}

const reserved = 2

// spare is filled by NewServer, not at package init: the CLI links this
// package too and has no use for it.
var spare reserve

// fill opens what the reserve lacks; with none free it stays short and
// tries again after the next lend.
func (r *reserve) fill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refill()
}

func (r *reserve) refill() {
	for len(r.fds) < reserved {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		r.fds = append(r.fds, fd)
	}
}

// outOfFDs reports the errors of a full descriptor table.
func outOfFDs(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)
}

// lend runs f, and if it ran out of descriptors, runs it again with the
// reserve's descriptors closed for it; the reserve is refilled after.
func (r *reserve) lend(f func() error) error {
	err := f()
	if !outOfFDs(err) {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = r.fds[:0]
	err = f()
	r.refill()
	return err
}
