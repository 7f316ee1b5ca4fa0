// Package logsink owns a service's output from its pipe to its log files and
// back: whole lines appended with bounded buffers (floods spliced), rotation
// with logrotate's names and semantics (compression and retention off the
// write path), the same rotation for files a service writes itself (File),
// each line's capture time in an index beside its file (index.go), and
// reading and following a log, with those times, across rotations. It knows nothing of
// processes: how a service is told to reopen a file is its caller's.
package logsink
