package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a control connection, as the
// kernel vouches for it (SO_PEERCRED) and /proc describes it.
type Peer struct {
	Uid     uint32
	Pid     int
	Groups  []uint32 // its gid and supplementary groups
	Service string   // the service whose process it is, or ""
}

// soPeerPidfd is SO_PEERPIDFD (Linux 6.5): a pidfd of the process that
// connected, taken by the kernel at connect time. golang.org/x/sys does not
// name it yet.
const soPeerPidfd = 77

// noPeerPidfd makes peerPidfd act as on a kernel without SO_PEERPIDFD
// (tests of the fallback).
var noPeerPidfd atomic.Bool

// peerConn is an accepted connection with the credentials the kernel
// recorded when the peer connected.
type peerConn struct {
	*net.UnixConn
	cred     *unix.Ucred
	credErr  error
	accepted time.Time

	l    *limitListener
	idle bool // under l.mu: no request in flight (New or Idle)
}

func newPeerConn(c *net.UnixConn) *peerConn {
	pc := &peerConn{UnixConn: c, accepted: time.Now(), idle: true}
	raw, err := c.SyscallConn()
	if err != nil {
		pc.credErr = err
		return pc
	}
	if err := raw.Control(func(fd uintptr) {
		pc.cred, pc.credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		pc.credErr = err
	}
	return pc
}

// uid is the peer's uid, or a uid nobody has when the kernel gave none.
func (pc *peerConn) uid() uint32 {
	if pc.cred == nil {
		return ^uint32(0)
	}
	return pc.cred.Uid
}

// Close releases the connection's slot in the listener.
func (pc *peerConn) Close() error {
	if pc.l != nil {
		pc.l.release(pc)
	}
	return pc.UnixConn.Close()
}

type peerKey struct{}

// connContext attaches the connection to its requests' contexts.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc)
	}
	return ctx
}

// errBusy is what a peer hears when the daemon has no descriptor to tell
// who it is, even with the reserve: try again, not "permission denied".
var errBusy = errors.New("the daemon is out of file descriptors; try again")

// identify describes the peer of pc as it is now. SO_PEERCRED names the
// process that connected by pid, and a pid is reused once its process is
// gone, so the peer is pinned with a pidfd (the kernel's own, taken at
// connect, where there is SO_PEERPIDFD) before /proc is read, and is
// refused when the process has exited by the end of the reading: then
// every byte read came from the process that connected. A peer whose euid
// is no longer the one it connected with is refused too.
func identify(pc *peerConn, owner func(pid int) (string, error)) (Peer, error) {
	if pc.credErr != nil || pc.cred == nil {
		return Peer{}, fmt.Errorf("permission denied: no peer credentials: %v", pc.credErr)
	}
	cred := pc.cred
	p := Peer{Uid: cred.Uid, Pid: int(cred.Pid)}
	var (
		pidfd  int
		euid   uint32
		groups []uint32
	)
	err := spare.lend(func() error {
		var err error
		if pidfd, err = peerPidfd(pc); err != nil {
			return err
		}
		if euid, groups, err = readStatus(p.Pid); err != nil {
			unix.Close(pidfd)
		}
		return err
	})
	if outOfFDs(err) {
		return p, errBusy
	}
	if err != nil {
		return p, fmt.Errorf("permission denied: pid %d (uid %d) is gone: %v", p.Pid, p.Uid, err)
	}
	defer unix.Close(pidfd)
	if euid != cred.Uid {
		return p, fmt.Errorf("permission denied: pid %d connected as uid %d and is uid %d now", p.Pid, cred.Uid, euid)
	}
	p.Groups = groups
	if owner != nil {
		// Whose process it is decides what it may touch: not knowing
		// refuses, or a root service's process would act as root.
		err := spare.lend(func() error {
			var err error
			p.Service, err = owner(p.Pid)
			return err
		})
		if outOfFDs(err) {
			return p, errBusy
		}
		if err != nil {
			return p, fmt.Errorf("permission denied: pid %d (uid %d): cannot tell whether it is a service's: %v", p.Pid, p.Uid, err)
		}
	}
	if exited(pidfd) {
		return p, fmt.Errorf("permission denied: pid %d (uid %d) has exited", p.Pid, p.Uid)
	}
	return p, nil
}

// peerPidfd returns a pidfd of the peer: the one the kernel took at
// connect, or, on kernels before 6.5, one opened now by pid (the start time
// check then narrows the window: a process started after we accepted the
// connection is not the one that connected).
func peerPidfd(pc *peerConn) (int, error) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, gerr := -1, error(unix.ENOPROTOOPT)
	if !noPeerPidfd.Load() {
		if err := raw.Control(func(s uintptr) { fd, gerr = unix.GetsockoptInt(int(s), unix.SOL_SOCKET, soPeerPidfd) }); err != nil {
			return -1, err
		}
	}
	if gerr == nil {
		return fd, nil // the connecting process, by the kernel's word
	}
	if !errors.Is(gerr, unix.ENOPROTOOPT) && !errors.Is(gerr, unix.EINVAL) {
		return -1, gerr
	}
	fd, err = unix.PidfdOpen(int(pc.cred.Pid), 0)
	if err != nil {
		return -1, err
	}
	if startedAfter(int(pc.cred.Pid), pc.accepted) {
		unix.Close(fd)
		return -1, errors.New("its pid belongs to a newer process")
	}
	return fd, nil
}

// exited reports whether the process of a pidfd has exited: the pidfd
// becomes readable then. The poll does not wait, but the Go runtime's
// preemption signals can still interrupt it (EINTR): asked again.
func exited(pidfd int) bool {
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || n > 0 && fds[0].Revents != 0
	}
}

// readStatus reads a process's effective uid and its groups (the effective
// gid and the supplementary ones) from /proc/PID/status.
func readStatus(pid int) (euid uint32, groups []uint32, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, nil, err
	}
	return parseStatus(string(b))
}

// parseStatus reads the Uid:, Gid: and Groups: lines of a /proc/PID/status.
func parseStatus(s string) (euid uint32, groups []uint32, err error) {
	var haveUid, haveGid bool
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(val)
		switch key {
		case "Uid", "Gid":
			if len(fs) < 2 {
				return 0, nil, fmt.Errorf("status: bad %s line %q", key, line)
			}
			id, err := strconv.ParseUint(fs[1], 10, 32) // real, effective, saved, fs
			if err != nil {
				return 0, nil, fmt.Errorf("status: bad %s line %q", key, line)
			}
			if key == "Uid" {
				euid, haveUid = uint32(id), true
			} else {
				groups, haveGid = append(groups, uint32(id)), true
			}
		case "Groups":
			for _, f := range fs {
				id, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return 0, nil, fmt.Errorf("status: bad Groups line %q", line)
				}
				groups = append(groups, uint32(id))
			}
		}
	}
	if !haveUid || !haveGid {
		return 0, nil, errors.New("status: no Uid or Gid line")
	}
	return euid, groups, nil
}

// startedAfter reports whether pid started after t (or cannot be read).
func startedAfter(pid int, t time.Time) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The fields after the command (which may hold spaces and parentheses)
	// start after its last ')'; starttime is the 22nd field overall.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return true
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 20 {
		return true
	}
	ticks, err := strconv.ParseUint(fs[19], 10, 64)
	if err != nil {
		return true
	}
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return true
	}
	const hz = 100 // USER_HZ, fixed at 100 for /proc on every Linux architecture we run on
	started := time.Duration(ticks) * time.Second / hz
	acceptedAgo := time.Since(t)
	sinceBoot := time.Duration(ts.Nano())
	// starttime is rounded down to a tick: allow one.
	return started > sinceBoot-acceptedAgo+time.Second/hz
}
