package control

import (
	"context"
	"net/http"
	"upkeep/internal/api"
)

// rotate answers POST /v1/rotate: the logs of the named services, or of
// every service with all, rotated now (`upkeep rotate`, logrotate -f).
func rotate(b Backend) func(ctx context.Context, req Request) (any, error) {
	return func(ctx context.Context, req Request) (any, error) {
		if len(req.Names) == 0 && !req.All {
			return nil, badRequest("rotate: name services, or all")
		}
		if len(req.Names) > 0 && req.All {
			return nil, badRequest("rotate: names or all, not both")
		}
		return b.Rotate(req.Names)
	}
}

// Rotate asks the daemon to rotate the logs of names, or of every service
// with all.
func (c *Client) Rotate(ctx context.Context, names []string, all bool) ([]api.Rotated, error) {
	var out []api.Rotated
	return out, c.do(ctx, http.MethodPost, "/v1/rotate", Request{Names: names, All: all}, &out)
}
