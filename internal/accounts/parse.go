package accounts

import (
	"fmt"
	"strconv"
	"strings"
)

// Entry is one line of passwd or group: its name and id, and the line as
// it is, which is written back byte for byte.
type Entry struct {
	Name string
	ID   int
	GID  int // passwd only: the primary group
	Line string
}

// ParseError says where a file is malformed, as file:line:col.
type ParseError struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// Parse reads a passwd (fields 7) or group (fields 4) file. Empty lines
// are kept and skipped; NIS's "+" and "-" lines are kept and have no id.
// A malformed line is an error: a file we cannot read exactly is one we
// do not rewrite.
func Parse(file, data string, fields int) ([]Entry, error) {
	var out []Entry
	lines := strings.Split(data, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	for i, l := range lines {
		if l == "" || l[0] == '+' || l[0] == '-' {
			out = append(out, Entry{ID: -1, GID: -1, Line: l})
			continue
		}
		f := strings.Split(l, ":")
		if len(f) != fields {
			return nil, &ParseError{file, i + 1, 1, fmt.Sprintf("%d fields separated by ':', want %d", len(f), fields)}
		}
		if f[0] == "" {
			return nil, &ParseError{file, i + 1, 1, "empty name"}
		}
		col := len(f[0]) + len(f[1]) + 3
		id, err := strconv.Atoi(f[2])
		if err != nil || id < 0 {
			return nil, &ParseError{file, i + 1, col, fmt.Sprintf("id %q is not a number", f[2])}
		}
		e := Entry{Name: f[0], ID: id, GID: -1, Line: l}
		if fields == 7 {
			col += len(f[2]) + 1
			if e.GID, err = strconv.Atoi(f[3]); err != nil || e.GID < 0 {
				return nil, &ParseError{file, i + 1, col, fmt.Sprintf("group id %q is not a number", f[3])}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Range is the ids of system accounts: SYS_UID_MIN..SYS_UID_MAX (or the
// GID pair) of login.defs.
type Range struct{ Min, Max int }

// DefaultRange is what shadow's useradd uses without login.defs.
var DefaultRange = Range{100, 999}

// ParseLoginDefs reads the system id ranges from login.defs ("KEY VALUE"
// lines, # comments). A missing or bad value keeps the default.
func ParseLoginDefs(data string) (uid, gid Range) {
	uid, gid = DefaultRange, DefaultRange
	for _, l := range strings.Split(data, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			continue
		}
		switch f[0] {
		case "SYS_UID_MIN":
			uid.Min = n
		case "SYS_UID_MAX":
			uid.Max = n
		case "SYS_GID_MIN":
			gid.Min = n
		case "SYS_GID_MAX":
			gid.Max = n
		}
	}
	if uid.Min > uid.Max {
		uid = DefaultRange
	}
	if gid.Min > gid.Max {
		gid = DefaultRange
	}
	return uid, gid
}
