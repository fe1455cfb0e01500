package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
)

// Ops returns the gateway's operations view (GET /ops): CDC slot and lag,
// bus position and consumer backlogs, the indexer's applied LSN and lag,
// realtime connections, and each service's readiness and request rates.
// Admin-only in required mode (403 otherwise).
func (c *Client) Ops(ctx context.Context) (*api.Ops, error) {
	var o api.Ops
	if _, err := c.call(ctx, http.MethodGet, "/ops", nil, nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}
