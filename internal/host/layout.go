package host

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"upkeep/internal/accounts"
	"upkeep/internal/paths"
	"upkeep/internal/policy"
	"upkeep/internal/spec"
)

// Paths beneath the root (DESIGN.md's table), as package paths names them.
const (
	WWWDir      = paths.WWW
	ReleasesDir = paths.Releases
	LogDir      = paths.LogDir
	DBDir       = paths.DB
	RunDir      = paths.RunDir
	StateDir    = paths.StateDir
	OverlayDir  = paths.OverlayDir
	HistoryDir  = paths.HistoryDir
	LockDir     = paths.LockDir
	ConfigFile  = paths.ConfigFile
	homeService = "service"
	homeLog     = "log"
	homeDB      = "db"
	homeImage   = "image"
	homeScript  = "script"
)

// Host is a root (and an operator's home) that services are deployed on.
type Host struct {
	Root string    // absolute; "/" on a real host
	Home string    // the operator's home for ~/service ~/log ~/db ~/image ~/script; "" for none
	Out  io.Writer // progress, one line per step
	// Progress gets what a deploy sees while it waits for a service (state
	// changes, check failures); nil: Out.
	Progress io.Writer
	// IsRoot says whether users may be created and files chowned; it
	// defaults to os.Geteuid() == 0 and tests turn it off.
	IsRoot bool

	root, home tree
	cfg        *Config
	pol        *policy.Policy
	acct       *accounts.DB // the root's account files, read by Check (accounts.go)
	// madeLogs: log files this Provision made before their service's user
	// existed; the next pass chowns them.
	madeLogs map[string]bool
	// finished names the services whose dead remove Recover finished in
	// this process: a remove run again for one of them has nothing to do.
	finished map[string]bool
}

// New returns the host at root with the operator's home (may be "").
func New(root, home string, out io.Writer) (*Host, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("root %q is not absolute", root)
	}
	if home != "" && !filepath.IsAbs(home) {
		abs, err := filepath.Abs(home)
		if err != nil {
			return nil, err
		}
		home = abs
	}
	if out == nil {
		out = io.Discard
	}
	h := &Host{Root: root, Home: home, Out: out, IsRoot: os.Geteuid() == 0, root: tree{root}, home: tree{home}}
	return h, nil
}

func (h *Host) say(format string, args ...any) { fmt.Fprintf(h.Out, format+"\n", args...) }

// Path returns rel (slash-separated, beneath the root) as a host path.
func (h *Host) Path(rel string) string { return h.root.abs(rel) }

// HomePath returns rel beneath the operator's home.
func (h *Host) HomePath(rel string) string { return h.home.abs(rel) }

// show is how a path beneath the root is printed in plans: as seen from
// inside the root ("/etc/x"), so plans read the same for any --root.
func show(rel string) string { return "/" + strings.TrimPrefix(rel, "/") }

func serviceRel(name string) string          { return paths.ServiceRel(name) }
func releasesRel(name string) string         { return paths.ReleasesRel(name) }
func releaseRel(name, version string) string { return paths.ReleaseRel(name, version) }
func manifestRel(name string) string         { return path.Join(OverlayDir, name+".json") }
func historyRel(name string) string          { return path.Join(HistoryDir, name+".json") }
func dbRel(name string) string               { return paths.DBRel(name) }
func logRel(name string) string              { return paths.LogRel(name) }
func errLogRel(name string) string           { return paths.ErrorLogRel(name) }

// serviceNames lists what var/www holds: every entry whose name is a valid
// service name (directories, symlinks to releases, dangling ones too).
func (h *Host) serviceNames() ([]string, error) {
	entries, err := os.ReadDir(h.Path(WWWDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || spec.CheckName(e.Name()) != nil {
			continue
		}
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// loadService reads the definition of the service deployed as name.
func (h *Host) loadService(name string) (*spec.Service, spec.Problems) {
	return spec.Load(h.Root, h.Path(serviceRel(name)))
}

// oneLine joins a multi-line message for an error: the CLI prints errors as
// one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
