package host

import (
	"fmt"
	"strings"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// WriteLogrotate installs text as etc/logrotate.d/<name>: a new file
// renamed over the old one, so logrotate never reads half of it, and
// written beneath the root without following symlinks, so a planted
// etc/logrotate.d -> /elsewhere is refused rather than written through.
// It returns the file's path on this machine.
func (h *Host) WriteLogrotate(name, text string) (string, error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	rel := paths.LogrotateDir + "/" + name
	if _, err := h.root.WriteFileSync(rel, strings.NewReader(text), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", show(rel), err)
	}
	return h.Path(rel), nil
}
