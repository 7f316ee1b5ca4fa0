package notify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxMessage is the largest datagram read: systemd reads up to 4 KiB of
// assignments plus what fits a page; longer ones are cut and refused.
const MaxMessage = 4096

// Message is one datagram: the assignments it made, as sd_notify(3)
// names them. Unknown keys are kept in Other and otherwise ignored, as
// systemd ignores them.
type Message struct {
	Ready     bool   // READY=1
	Reloading bool   // RELOADING=1
	Stopping  bool   // STOPPING=1
	Watchdog  bool   // WATCHDOG=1: a ping
	Trigger   bool   // WATCHDOG=trigger: fail now
	Status    string // STATUS=…; HasStatus tells an empty one from none
	HasStatus bool
	MainPID   int // MAINPID=; 0 when not sent
	Errno     int // ERRNO=
	Other     []string
}

// Parse reads a datagram's newline-separated KEY=VALUE assignments. It
// refuses what systemd refuses: a message that is not UTF-8, holds a NUL,
// or has a line without '='. Empty lines are skipped.
func Parse(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessage {
		return m, fmt.Errorf("message of %d bytes is longer than %d", len(b), MaxMessage)
	}
	if !utf8.Valid(b) {
		return m, errors.New("message is not UTF-8")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			return Message{}, errors.New("message holds a NUL byte")
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return Message{}, fmt.Errorf("line %q is not KEY=VALUE", clip(line))
		}
		switch k {
		case "READY":
			m.Ready = v == "1"
		case "RELOADING":
			m.Reloading = v == "1"
		case "STOPPING":
			m.Stopping = v == "1"
		case "WATCHDOG":
			m.Watchdog = v == "1"
			m.Trigger = v == "trigger"
		case "STATUS":
			m.Status, m.HasStatus = v, true
		case "MAINPID":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 1 {
				return Message{}, fmt.Errorf("MAINPID=%q is not a process id", clip(v))
			}
			m.MainPID = n
		case "ERRNO":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Message{}, fmt.Errorf("ERRNO=%q is not an error number", clip(v))
			}
			m.Errno = n
		default:
			m.Other = append(m.Other, k)
		}
	}
	return m, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
