// Package logsink owns the path from a service's stdout or stderr pipe to its
// log file: whole lines, appended, with bounded buffers. It does not know
// about processes or states; rotation belongs here, not in the supervisor.
package logsink
