// Package logsink owns a service's output from its pipe to its log files and
// back: whole lines appended with bounded buffers, rotation with logrotate's
// names and semantics (compression and retention off the write path), and
// reading and following a log across rotations. It knows nothing of processes.
package logsink
