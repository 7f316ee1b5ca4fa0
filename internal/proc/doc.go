// Package proc starts, signals and reaps processes: process groups,
// credentials, cgroups, pid files checked against start times, and the one
// reaper a subreaper daemon needs. It knows nothing of services or states.
package proc
