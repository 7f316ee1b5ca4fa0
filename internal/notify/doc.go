// Package notify is the daemon's end of sd_notify(3): one datagram socket
// per service, passed to it as NOTIFY_SOCKET, whose messages (READY=1,
// STATUS=…, MAINPID=…, WATCHDOG=1, …) it reads with the sender's
// credentials as the kernel vouches for them (SO_PASSCRED). It parses and
// delivers; it does not decide whether a sender is the service's, nor move
// any state: the supervisor does both.
package notify
