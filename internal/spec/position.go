package spec

import (
	"strconv"
	"strings"
)

// locate finds where a dotted key ("restart.policy") is set in a TOML text
// that is known to parse, so semantic errors can carry a line and column.
// BurntSushi/toml keeps key positions private; this scan covers the forms a
// service.toml uses (tables, arrays of tables, plain and quoted keys) and
// falls back to the table header, then to where the enclosing key is set
// (an inline table), then to line 1. The lines of multi-line strings are
// skipped: a script's `[ -f x ]` is not a table header.
//
// An array of tables is addressed by index: "check[1].url" is the url of the
// second [[check]].
//
// Locate is the same for the other TOML files upkeep reads (the host policy,
// host.toml), so that their errors point where service.toml's do.
func Locate(text, key string) (line, col int) { return locate(text, key) }

func locate(text, key string) (line, col int) {
	parts := strings.Split(key, ".")
	leaf := parts[len(parts)-1]
	table := strings.Join(parts[:len(parts)-1], ".")
	nth, seen := 0, -1
	if i := strings.IndexByte(table, '['); i >= 0 && strings.HasSuffix(table, "]") {
		nth, _ = strconv.Atoi(table[i+1 : len(table)-1])
		table = table[:i]
		key = table + "." + leaf
	}
	current := ""
	headerLine, headerCol := 0, 0
	inString := "" // the delimiter of the multi-line string being skipped
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimSuffix(raw, "\r")
		if inString != "" {
			if strings.Count(raw, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		inString = opensString(raw)
		trimmed := strings.TrimLeft(raw, " \t")
		indent := len(raw) - len(trimmed)
		if strings.HasPrefix(trimmed, "[") {
			h := strings.Trim(strings.SplitN(trimmed, "#", 2)[0], " \t[]")
			current = strings.ReplaceAll(h, " ", "")
			if current == table {
				seen++
			}
			if seen != nth && current == table {
				current = "\x00" // another element of the array: not ours
			}
			if current == key || (table != "" && current == table && headerLine == 0) {
				headerLine, headerCol = i+1, indent+1
				if current == key {
					return headerLine, headerCol
				}
			}
			continue
		}
		if current != table {
			// A dotted or inline form: `restart.policy = ...` at top level.
			if current == "" && strings.HasPrefix(trimmed, key) && isAssign(trimmed[len(key):]) {
				return i + 1, indent + 1
			}
			continue
		}
		for _, k := range []string{leaf, `"` + leaf + `"`} {
			if strings.HasPrefix(trimmed, k) && isAssign(trimmed[len(k):]) {
				return i + 1, indent + 1
			}
		}
	}
	if headerLine > 0 {
		return headerLine, headerCol
	}
	if table != "" {
		return locate(text, table)
	}
	return 1, 1
}

// opensString returns the delimiter of a multi-line string that a line
// opens and leaves open, or "". It does not parse: a line that holds both
// delimiters, or an escaped one, can fool it, and then only positions suffer.
func opensString(line string) string {
	if strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
		return ""
	}
	d, i := `"""`, strings.Index(line, `"""`)
	if j := strings.Index(line, `'''`); j >= 0 && (i < 0 || j < i) {
		d, i = `'''`, j
	}
	if i >= 0 && strings.Count(line, d)%2 == 1 {
		return d
	}
	return ""
}

func isAssign(rest string) bool {
	rest = strings.TrimLeft(rest, " \t")
	return strings.HasPrefix(rest, "=")
}
