package spec

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"upkeep/internal/paths"
)

// WWW is where a host keeps its running services, relative to the root.
const WWW = paths.WWW

// Host is every service found under a root: the ones that loaded, and the
// problems of each, keyed by service name.
type Host struct {
	Services map[string]*Service
	Problems map[string]Problems
}

// Names returns the loaded services' names, sorted.
func (h *Host) Names() []string {
	names := make([]string, 0, len(h.Services))
	for n := range h.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LoadHost reads <root>/var/www/*/service.toml. A broken definition is
// reported and left out; it never hides the others. Dependencies are checked
// across services: unknown ones and cycles are errors of the services
// involved.
func LoadHost(root string) (*Host, error) {
	h := &Host{Services: map[string]*Service{}, Problems: map[string]Problems{}}
	www := filepath.Join(root, WWW)
	entries, err := os.ReadDir(www)
	if os.IsNotExist(err) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // .releases and other bookkeeping
		}
		dir := filepath.Join(www, name)
		if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
			continue
		}
		s, ps := Load(root, dir)
		if len(ps) > 0 {
			h.Problems[name] = ps
		}
		if s != nil {
			h.Services[name] = s
		}
	}
	h.checkDependencies()
	return h, nil
}

// checkDependencies drops the services whose dependencies cannot be met:
// the members of a cycle, those naming a service that does not exist or did
// not load, and, along the chain, those depending on a dropped one. Each is
// a problem at the depends_on entry at fault.
func (h *Host) checkDependencies() {
	defined := map[string]bool{} // every directory with a service.toml
	for name := range h.Services {
		defined[name] = true
	}
	for name := range h.Problems {
		defined[name] = true
	}
	drop := map[string]Problem{}
	for _, cycle := range cycles(h.Services) {
		for _, name := range cycle {
			drop[name] = depProblem(h.Services[name], "", "dependency cycle: "+strings.Join(append(cycle, cycle[0]), " -> "))
		}
	}
	// Until nothing more is dropped: dropping a service can break its
	// dependents in turn. The first round runs whether or not there was a
	// cycle, so an unknown dependency on its own is found too.
	for first := true; first || len(drop) > 0; first = false {
		for name, p := range drop {
			delete(h.Services, name)
			h.Problems[name] = append(h.Problems[name], p)
		}
		drop = map[string]Problem{}
		for name, s := range h.Services {
			for _, dep := range s.DependsOn {
				if _, ok := h.Services[dep]; ok {
					continue
				}
				if _, done := drop[name]; done {
					break // one problem per service: the first dependency at fault
				}
				msg := fmt.Sprintf("service %q did not load (see its own problems)", dep)
				if !defined[dep] {
					msg = fmt.Sprintf("unknown service %q (no %s/%s/%s)", dep, WWW, dep, FileName)
					if alt := Suggest(dep, slices.Sorted(maps.Keys(defined))); alt != "" {
						msg += fmt.Sprintf("; did you mean %q?", alt)
					}
				}
				drop[name] = depProblem(s, dep, msg)
			}
		}
	}
}

// depProblem places a problem of s's depends_on at the entry dep, or at the
// key when dep is "" or cannot be found.
func depProblem(s *Service, dep, msg string) Problem {
	data, _ := os.ReadFile(s.File)
	text := string(data)
	line, col := locate(text, "depends_on")
	if dep != "" {
		line, col = locateEntry(text, line, col, dep)
	}
	return Problem{File: s.File, Line: line, Col: col, Key: "depends_on", Msg: msg}
}

// locateEntry finds the quoted string entry of an array whose key is at
// line:col, and returns its position, or line:col when it is not there.
func locateEntry(text string, line, col int, entry string) (int, int) {
	off := offsetOf(text, line, col)
	if off < 0 {
		return line, col
	}
	rest := text[off:]
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		end = len(rest)
	}
	for _, q := range []string{`"` + entry + `"`, "'" + entry + "'"} {
		if i := strings.Index(rest[:end], q); i >= 0 {
			return lineCol(text, off+i)
		}
	}
	return line, col
}

// offsetOf turns a 1-based line:col into a byte offset of text, or -1.
func offsetOf(text string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	if off+col-1 > len(text) {
		return -1
	}
	return off + col - 1
}

// lineCol turns a byte offset of text into a 1-based line and column.
func lineCol(text string, off int) (int, int) {
	return 1 + strings.Count(text[:off], "\n"), off - strings.LastIndexByte(text[:off], '\n')
}

// cycles returns the dependency cycles among services (each once).
func cycles(svcs map[string]*Service) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var out [][]string
	var visit func(string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		if s, ok := svcs[n]; ok {
			for _, d := range s.DependsOn {
				if _, ok := svcs[d]; !ok {
					continue
				}
				switch color[d] {
				case white:
					visit(d)
				case grey:
					for i := len(stack) - 1; i >= 0; i-- {
						if stack[i] == d {
							out = append(out, append([]string(nil), stack[i:]...))
							break
						}
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white {
			visit(n)
		}
	}
	return out
}
