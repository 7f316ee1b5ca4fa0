package proc

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A status of 1,000 services reads /proc/<pid>/stat a thousand times, and
// every spawn reads it once for the start time. procfs.Proc.Stat stats
// /proc/<pid> first and scans 52 fields with fmt.Fscan: two thirds of a
// status's time went there. readStat is one open, one read into a stack
// buffer and a scan of the four numbers we use.

// procStat is the part of /proc/<pid>/stat the daemon uses.
type procStat struct {
	utime, stime uint64 // clock ticks
	starttime    uint64 // clock ticks since boot
	rss          uint64 // pages
}

var (
	pageSize  = uint64(os.Getpagesize())
	errFormat = errors.New("malformed /proc/<pid>/stat")
)

// userHZ is the unit of utime and stime: USER_HZ is 100 on every Linux
// architecture Go supports (procfs assumes the same).
const userHZ = 100

func readStat(pid int) (procStat, error) {
	var buf [1024]byte // fields 1-24 fit in ~450 bytes (comm ≤ 64); a cut-off tail is never read
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procStat{}, err
	}
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil {
		return procStat{}, err
	}
	return parseStat(buf[:n])
}

// parseStat reads fields 14 (utime), 15 (stime), 22 (starttime) and 24
// (rss) of a stat line. The command (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 {
		return procStat{}, errFormat
	}
	var st procStat
	field := 2 // the ')' ends field 2
	for p := i + 1; p < len(b) && field < 24; {
		for p < len(b) && b[p] == ' ' {
			p++
		}
		if p >= len(b) || b[p] == '\n' {
			break
		}
		field++
		start := p
		for p < len(b) && b[p] != ' ' && b[p] != '\n' {
			p++
		}
		var dst *uint64
		switch field {
		case 14:
			dst = &st.utime
		case 15:
			dst = &st.stime
		case 22:
			dst = &st.starttime
		case 24:
			dst = &st.rss
		default:
			continue
		}
		v, err := strconv.ParseUint(string(b[start:p]), 10, 64)
		if err != nil {
			return procStat{}, errFormat
		}
		*dst = v
	}
	if field < 24 {
		return procStat{}, errFormat
	}
	return st, nil
}

// readPids reads a list of decimal numbers, one a line (cgroup.procs),
// with plain syscalls into a stack buffer: os.ReadFile's fstat, growing
// buffer and poller registration were half of what a status of 1,000
// services cost, and the daemon samples every service every 10 s.
func readPids(path string) ([]int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var buf [4096]byte
	var pids []int
	cur, digits := 0, false
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return pids, err
		}
		for _, c := range buf[:n] {
			switch {
			case c >= '0' && c <= '9':
				if cur > (1<<31)/10 {
					return pids, errFormat
				}
				cur, digits = cur*10+int(c-'0'), true
			case c == '\n':
				if digits {
					pids = append(pids, cur)
				}
				cur, digits = 0, false
			default:
				return pids, errFormat
			}
		}
		if n == 0 {
			if digits {
				pids = append(pids, cur)
			}
			return pids, nil
		}
	}
}
