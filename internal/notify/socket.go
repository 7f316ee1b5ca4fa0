package notify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Sender is who sent a datagram, as the kernel recorded it
// (SCM_CREDENTIALS): a process may claim another pid only with
// CAP_SYS_ADMIN, so the pid is the sender's or one root chose.
type Sender struct {
	Pid int
	Uid uint32
}

// Datagram is one message read from a socket, with its sender; Err says
// why a message was refused (it is still delivered, for the log).
type Datagram struct {
	From Sender
	Msg  Message
	Err  error
}

// Socket is one service's notification socket.
type Socket struct {
	conn *net.UnixConn
	path string
}

// maxPath is what fits sun_path with its NUL.
const maxPath = len(unix.RawSockaddrUnix{}.Path) - 1

// Listen makes the socket at path (a stale one from a previous daemon is
// replaced), world-writable like systemd's: a service running as any user
// must reach it, and only the credentials say whose message counts. A
// path too long for sun_path (a deep --root) gets an abstract name
// instead: "@" + abstract.
func Listen(path, abstract string) (*Socket, error) {
	addr := path
	if len(path) > maxPath {
		addr = "@" + abstract
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	s := &Socket{conn: c, path: addr}
	raw, err := c.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
		if cerr != nil {
			err = cerr
		}
	}
	if err == nil && addr[0] != '@' {
		err = os.Chmod(addr, 0o777)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	return s, nil
}

// Addr is the value of NOTIFY_SOCKET for the service.
func (s *Socket) Addr() string { return s.path }

// Close ends Serve and removes the socket file.
func (s *Socket) Close() error {
	err := s.conn.Close()
	if s.path[0] != '@' {
		os.Remove(s.path)
	}
	return err
}

// Serve reads datagrams until the socket is closed and hands each to f,
// in order, on Serve's goroutine. A datagram without credentials cannot
// be attributed and is dropped. Descriptors that come with a message are
// closed at once: systemd-notify's barrier (BARRIER=1 with a pipe) waits
// for exactly that, and nothing else is kept (no FDSTORE).
func (s *Socket) Serve(f func(Datagram)) {
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*253))
	for {
		n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (ENOBUFS); the socket lives on
		}
		from, ok := credentials(oob[:oobn])
		if !ok {
			continue
		}
		d := Datagram{From: from}
		if flags&unix.MSG_TRUNC != 0 || n > MaxMessage {
			d.Err = fmt.Errorf("message longer than %d bytes", MaxMessage)
		} else {
			d.Msg, d.Err = Parse(buf[:n])
		}
		f(d)
	}
}

// credentials finds the sender in a message's control data, closing any
// descriptors it carries.
func credentials(oob []byte) (Sender, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Sender{}, false
	}
	var from Sender
	ok := false
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		if c, err := unix.ParseUnixCredentials(&m); err == nil {
			from, ok = Sender{Pid: int(c.Pid), Uid: c.Uid}, true
		}
	}
	return from, ok
}

// Pending reports whether a datagram waits in the socket, not yet read:
// the supervisor asks before it handles its main process's exit, so that
// what the process said before exiting (MAINPID=, READY=1) comes first,
// as systemd reads its notify socket before SIGCHLD.
func (s *Socket) Pending() bool {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n > 0
}
