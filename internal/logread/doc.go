// Package logread reads services' captured output back: stdout and stderr
// of one or many services merged in the order captured (by the time index
// logsink keeps beside each file), filtered by time and pattern, the last N
// lines or all, and followed across rotations. It reads files only; it
// never writes, and it knows nothing of the socket that serves it.
package logread
