package compat

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Target is a format services are exported to.
type Target string

const (
	Systemd    Target = "systemd"
	Kubernetes Target = "kubernetes"
	Nomad      Target = "nomad"
)

// Targets lists the export formats.
var Targets = []Target{Systemd, Kubernetes, Nomad}

// File is one file an export writes, named relative to the output
// directory.
type File struct {
	Name string
	Data []byte
}

// Export writes one service (as spec.LoadHost read it under root) in the
// target's format. The notes list what the target cannot express.
func Export(t Target, root string, s *spec.Service) ([]File, []Note, error) {
	x := &exporter{root: root, s: s}
	var files []File
	var err error
	switch t {
	case Systemd:
		files, err = x.systemd()
	case Kubernetes:
		files, err = x.kubernetes()
	case Nomad:
		files, err = x.nomad()
	default:
		return nil, nil, fmt.Errorf("unknown target %q", t)
	}
	return files, x.notes, err
}

// exporter holds one service being exported and what did not carry over.
type exporter struct {
	root  string
	s     *spec.Service
	notes []Note
}

// note lists a setting (key as in service.toml) the target cannot express.
func (x *exporter) note(key, format string, args ...any) {
	x.notes = append(x.notes, Note{Pos: Pos{File: x.hostPath(x.s.File), Text: key}, Service: x.s.Name, Msg: fmt.Sprintf(format, args...)})
}

// hostPath turns a path that spec resolved under the root back into the
// path on the host the service runs on ("/var/www/x", not
// "/srv/root/var/www/x").
func (x *exporter) hostPath(p string) string {
	if p == "" {
		return ""
	}
	rel, err := filepath.Rel(x.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.Join("/", rel)
}

// argv is what runs as the service's main process: command, the script
// under sh as the supervisor runs it, or the start command.
func (x *exporter) argv() []string {
	s := x.s
	switch {
	case len(s.Command) > 0:
		return s.Command
	case s.Script != "":
		return []string{"/bin/sh", "-e", "-c", s.Script, s.Name}
	}
	return s.StartCommand
}

// env is the environment upkeep gives the service, as far as it is fixed:
// HOME (the service directory) and UPKEEP_SERVICE, then env, which wins.
func (x *exporter) env() map[string]string {
	e := map[string]string{"HOME": x.hostPath(x.s.Dir), "UPKEEP_SERVICE": x.s.Name}
	for k, v := range x.s.Env {
		e[k] = v
	}
	return e
}

// logPaths are where upkeep writes the service's output.
func (x *exporter) logPaths() (string, string) {
	return "/" + paths.LogRel(x.s.Name), "/" + paths.ErrorLogRel(x.s.Name)
}

// configFiles are the service's config/ overlay: each file with the path
// it is overlaid at on the host.
type configFile struct {
	target string // /etc/x.conf
	data   []byte
}

func (x *exporter) configFiles() []configFile {
	base := filepath.Join(x.s.Dir, "config")
	var out []configFile
	_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			x.note("config/", "%s: %v; left out", p, err)
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		out = append(out, configFile{target: "/" + filepath.ToSlash(rel), data: data})
		return nil
	})
	return out
}

// seconds rounds a duration up to whole seconds, at least min.
func seconds(d spec.Duration, min int64) int64 {
	n := int64(math.Ceil(time.Duration(d).Seconds()))
	if n < min {
		return min
	}
	return n
}

// checkNote lists a check a target has no place for.
func (x *exporter) checkNote(c *spec.Check, why string) {
	x.note("check "+c.Name, "%s; not exported", why)
}
