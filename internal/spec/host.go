package spec

import (
	"fmt"
	"os"
	"path/filepath"
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

func (h *Host) checkDependencies() {
	drop := map[string]Problem{}
	for _, cycle := range cycles(h.Services) {
		for _, name := range cycle {
			drop[name] = depProblem(h.Services[name], "dependency cycle: "+strings.Join(append(cycle, cycle[0]), " -> "))
		}
	}
	// Dropping a service can break its dependents in turn.
	for len(drop) > 0 {
		for name, p := range drop {
			delete(h.Services, name)
			h.Problems[name] = append(h.Problems[name], p)
		}
		drop = map[string]Problem{}
		for name, s := range h.Services {
			for _, dep := range s.DependsOn {
				if _, ok := h.Services[dep]; !ok {
					drop[name] = depProblem(s, fmt.Sprintf("unknown or broken service %q", dep))
				}
			}
		}
	}
}

func depProblem(s *Service, msg string) Problem {
	line, col := locateFile(s.File, "depends_on")
	return Problem{File: s.File, Line: line, Col: col, Key: "depends_on", Msg: msg}
}

func locateFile(file, key string) (int, int) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 1, 1
	}
	return locate(string(data), key)
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
