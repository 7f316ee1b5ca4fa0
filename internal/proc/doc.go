// Package proc starts, signals and reaps processes: process groups,
// credentials and privileges (with the exec shim of shim.go for what
// fork+exec cannot set), cgroups, pid files checked against start times,
// and the one reaper a subreaper daemon needs. Every process the daemon
// runs is started with Reaper.Start (or Run) from a Cmd; the daemon makes
// the Reaper and hands it to whatever spawns. It knows nothing of
// services or states.
package proc
