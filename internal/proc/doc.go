// Package proc starts, signals and reaps processes: process groups,
// credentials and privileges (with the exec shim of shim.go for what
// fork+exec cannot set), cgroups, pid files checked against start times,
// and the one reaper a subreaper daemon needs. It knows nothing of
// services or states.
package proc
