package boot

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends sd_notify(3) messages to the service manager that
// started the daemon. The zero of *Notifier (nil) sends nothing, so
// callers need not ask whether systemd is there.
type Notifier struct {
	conn *net.UnixConn
	// Watchdog is how often the manager wants WATCHDOG=1: half of
	// WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; 0 when unset or
	// meant for another process (WATCHDOG_PID).
	Watchdog time.Duration
}

// FromEnv opens the socket named by NOTIFY_SOCKET (a path, or an
// abstract name starting with "@"). It unsets NOTIFY_SOCKET,
// WATCHDOG_USEC and WATCHDOG_PID, as sd_notify's unset_environment does:
// they are the daemon's, and services must not inherit them (each gets a
// socket of its own when it asks for one). Without NOTIFY_SOCKET it
// returns nil and no error.
func FromEnv() (*Notifier, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	usec, wpid := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	if addr == "" {
		return nil, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return nil, fmt.Errorf("NOTIFY_SOCKET=%s: want a path or an @abstract name", addr)
	}
	// Go maps a leading "@" to the abstract namespace's NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	n := &Notifier{conn: conn}
	if usec != "" && (wpid == "" || wpid == strconv.Itoa(os.Getpid())) {
		us, err := strconv.ParseUint(usec, 10, 63)
		if err != nil || us == 0 {
			conn.Close()
			return nil, fmt.Errorf("WATCHDOG_USEC=%s: want a positive number of microseconds", usec)
		}
		n.Watchdog = time.Duration(us) * time.Microsecond / 2
	}
	return n, nil
}

// Send sends one message ("READY=1", "STATUS=…", several joined by "\n").
func (n *Notifier) Send(msg string) error {
	if n == nil {
		return nil
	}
	if _, err := n.conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Close closes the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	return n.conn.Close()
}
