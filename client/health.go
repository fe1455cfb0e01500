package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// Live reports whether the server's process answers (GET /health/live).
func (c *Client) Live(ctx context.Context) (*api.Health, error) {
	var h api.Health
	if _, err := c.call(ctx, http.MethodGet, "/health/live", nil, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Ready reports whether the server can serve (GET /health/ready), with
// each dependency's state. When it cannot (503), the health report is
// returned with an apperr.Unavailable error.
func (c *Client) Ready(ctx context.Context) (*api.Health, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/health/ready"}, http.StatusServiceUnavailable)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h api.Health
	if err := decode(resp, &h); err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return &h, &apperr.Error{Code: apperr.Unavailable, Message: "not ready: " + h.Status,
			Err: &HTTPError{Method: http.MethodGet, URL: redact(resp.Request.URL), StatusCode: resp.StatusCode}}
	}
	return &h, nil
}
