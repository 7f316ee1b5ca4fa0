package proc

import (
	"bytes"
	"os"
	"strconv"
)

// State returns the one-letter state of pid from /proc/PID/stat (field 3:
// R, S, D, T stopped by a signal, t traced, Z, …).
func State(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')') // the command may hold ") "
	if i < 0 || i+2 >= len(b) {
		return 0, errFormat
	}
	return b[i+2], nil
}
