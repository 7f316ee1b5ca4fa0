package host

import (
	"os"
	"strings"

	"upkeep/internal/paths"
)

// logIndexDir holds the time indexes of the captured logs (logsink's
// index.go): <file>.<inode>.<birth>.idx.
const logIndexDir = LogDir + "/.upkeep"

// removeLogIndexes removes the time indexes of name's logs, which go
// with the logs (remove --purge).
func (h *Host) removeLogIndexes(name string) {
	entries, _ := os.ReadDir(h.Path(logIndexDir))
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".idx") {
			continue
		}
		if strings.HasPrefix(n, paths.LogBase(name)+".") || strings.HasPrefix(n, paths.ErrorLogBase(name)+".") {
			_ = h.root.Remove(logIndexDir + "/" + n)
		}
	}
}
