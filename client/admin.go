package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
)

// The gateway's read-only admin API listens on its own port (8001,
// --gateway-admin-addr): call these on a Client of that address,
// client.New("http://localhost:8001").

// GatewayStatus returns the gateway's start time, limits and each
// service's count of available upstreams (GET /status).
func (c *Client) GatewayStatus(ctx context.Context) (*api.GatewayStatus, error) {
	var out api.GatewayStatus
	if _, err := c.call(ctx, http.MethodGet, "/status", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GatewayRoutes returns every pattern the gateway routes and the service
// it goes to (GET /routes).
func (c *Client) GatewayRoutes(ctx context.Context) ([]api.GatewayRoute, error) {
	var out api.GatewayRoutes
	if _, err := c.call(ctx, http.MethodGet, "/routes", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Routes, nil
}

// GatewayUpstreams returns each service's upstreams with their health,
// ejection and counters (GET /upstreams).
func (c *Client) GatewayUpstreams(ctx context.Context) ([]api.ServiceUpstreams, error) {
	var out api.GatewayUpstreams
	if _, err := c.call(ctx, http.MethodGet, "/upstreams", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Services, nil
}
