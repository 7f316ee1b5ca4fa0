// Package supervise owns the services of a host while the daemon runs: one
// goroutine per service holds its state machine, and the Daemon routes
// commands, reloads and shutdown to them. It spawns through proc and writes
// output through logsink; it never parses files itself (spec does).
package supervise
