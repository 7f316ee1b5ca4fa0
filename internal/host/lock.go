package host

import (
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// lock takes the flock(2) of key (a service name, or "host" for what spans
// services: the layout and the overlay's claims), waiting for the holder if
// another upkeep command has it. The lock goes with the process: a killed
// command never leaves a stale lock behind.
func (h *Host) lock(key string) (func(), error) {
	if _, err := h.root.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	rel := path.Join(LockDir, key+".lock")
	p := h.Path(rel)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == unix.EWOULDBLOCK {
		h.say("waiting for another upkeep command (lock %s)", p)
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
	} else if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
