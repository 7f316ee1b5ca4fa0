package proc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WritePID writes a killproc-compatible pid file (the pid and a newline),
// atomically: a reader sees the old file or the new one, never half.
func WritePID(path string, pid int) error {
	return writeAtomic(path, []byte(strconv.Itoa(pid)+"\n"))
}

// ReadPID reads the first pid of a pid file.
func ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty pid file", path)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: %q is not a pid", path, f[0])
	}
	return pid, nil
}

// Record is what the daemon keeps about a running process beside its pid
// file, so a later daemon can prove a pid is still the process it started.
type Record struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Pgid      int    `json:"pgid"`
}

// WriteRecord stores r at path as JSON, atomically.
func WriteRecord(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

// ReadRecord reads a record written by WriteRecord.
func ReadRecord(path string) (Record, error) {
	var r Record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
