package proc

import "a.upkeep.local/shim"

// The shim, chain-loading the way s6's and daemontools' small exec
// programs do: Spawn starts the daemon's own binary as
// `upkeep __exec PATH ARGV...` with a plan in the environment when a
// process needs what fork+exec cannot give it (umask, rlimits, a cut
// bounding set, ambient capabilities, no_new_privs). This package decides
// when, and resolves the plan (shimPlan, shimArgv in privs.go); the
// child's side, which applies it and execs PATH in place, is the package
// a.upkeep.local/shim (internal/shim, a module of its own). Its init runs
// before those of nearly every other package of the binary, so a start
// through the shim costs about one Go runtime start more than a plain
// one: measured in docs/reliability.md ("Process privileges"). Importing it here makes
// every binary that spawns through proc, tests included, also the shim.
func init() {
	// The daemon's umask as it started, before anything (the control
	// socket's bind) tightens it for a moment.
	daemonUmask()
}

// shimFailed is the shim's exit status when it could not apply a setting
// or exec the program.
const shimFailed = shim.Failed
