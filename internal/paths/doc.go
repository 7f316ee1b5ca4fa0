// Package paths owns the host's layout: where, beneath the root, each file
// and directory of shared/DESIGN.md's path table lives (service
// directories, releases, logs, data, the control socket, pid files,
// upkeep's own state and config). It only names paths; it never touches
// the file system, and it imports nothing of ours, so every package
// (spec too) can use it.
package paths
