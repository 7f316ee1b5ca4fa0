package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildVersion is the release's version, set by the Makefile with
// -ldflags "-X main.buildVersion=..."; without it the module's version
// from the build info ("(devel)" for a build from a checkout).
var buildVersion string

// buildCommit is the commit, for builds the go command could not stamp
// (the Makefile sets it from git; a "-dirty" suffix marks a dirty tree).
var buildCommit string

// version is what `upkeep --version` prints after the name: the version,
// the commit and whether the tree was dirty (from the build's VCS stamp:
// go build in a git checkout, unless -buildvcs=false), and the Go release
// it was built with.
func version() string {
	v, commit, dirty := buildVersion, "unknown", false
	info, ok := debug.ReadBuildInfo()
	if ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
				if len(commit) > 12 {
					commit = commit[:12]
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if c, ok := strings.CutSuffix(buildCommit, "-dirty"); buildCommit != "" && commit == "unknown" {
		commit, dirty = c, ok
	}
	if v == "" {
		v = "(devel)"
	}
	parts := []string{"commit " + commit}
	if dirty {
		parts = append(parts, "dirty")
	}
	parts = append(parts, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("%s (%s)", v, strings.Join(parts, ", "))
}
