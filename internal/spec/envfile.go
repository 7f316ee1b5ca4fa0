package spec

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadEnvFile reads KEY=VALUE lines (systemd's EnvironmentFile and docker's
// --env-file agree on this much): blank lines and # comments are skipped, an
// "export " prefix is allowed, and a value may be single or double quoted.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'\x00") {
			return nil, fmt.Errorf("%s:%d:1: want KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		// The value's column in the line as written (indent, export, spaces).
		col := strings.IndexByte(raw, '=') + 2
		col += len(raw[col-1:]) - len(strings.TrimLeft(raw[col-1:], " \t"))
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d:%d: bad quoted value", path, n, col)
			}
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("%s:%d:%d: value holds a NUL byte", path, n, col)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}
