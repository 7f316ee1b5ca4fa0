package main

import (
	"context"
	"fmt"
	"os"

	"upkeep/internal/control"
	"upkeep/internal/host"
)

// changingHost is g.host() for the commands that change the host (provision,
// deploy, rollback, overlay, remove): first it finishes the deploys and
// rollbacks a killed upkeep left half done (host.Recover). A dry run
// writes nothing, so it recovers nothing either.
func (g *globals) changingHost(ctx context.Context, dryRun bool) (*host.Host, error) {
	h, err := g.host()
	if err != nil || dryRun {
		return h, err
	}
	// A journal that cannot be recovered (a file changed since, say) is
	// reported, not fatal: it must not keep every other service from
	// being deployed. Deploy and rollback of that service itself refuse.
	if _, err := h.Recover(ctx, control.NewClient(g.sock())); err != nil {
		fmt.Fprintf(os.Stderr, "upkeep: warning: %v\n", err)
	}
	return h, nil
}
