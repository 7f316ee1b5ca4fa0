package spec

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The root's own account files, read as the kernel's ids: the control
// socket's groups and the policy's "runs as root" are judged by them.

// ReadIDs reads a passwd or group file: name → the third field.
func ReadIDs(path string) (map[string]uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := ParseIDs(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// ParseIDs reads lines of name:password:id:... (etc/passwd, etc/group).
// Comments, blank lines, NIS "+" entries and lines whose id is not a
// number are skipped, as getgrnam(3) does; the first entry of a name wins.
func ParseIDs(r io.Reader) (map[string]uint32, error) {
	ids := map[string]uint32{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20) // a group with many members is one long line
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fs := strings.SplitN(line, ":", 4)
		if len(fs) < 3 || fs[0] == "" {
			continue
		}
		id, err := strconv.ParseUint(fs[2], 10, 32)
		if err != nil {
			continue
		}
		if _, ok := ids[fs[0]]; !ok {
			ids[fs[0]] = uint32(id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ids, nil
}
