package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docstream/docstream/api"
)

// Webhook endpoints belong to who created them (an admin sees and manages
// every one). To check a delivery's signature on the receiving side, see
// package client/webhook.

// CreateWebhook registers an endpoint (POST /webhooks). The answer's
// Secret signs every delivery; it is shown this once.
func (c *Client) CreateWebhook(ctx context.Context, req api.CreateWebhookRequest) (*api.CreatedWebhook, error) {
	var out api.CreatedWebhook
	if _, err := c.call(ctx, http.MethodPost, "/webhooks", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns the caller's endpoints (every one for an admin),
// newest first (GET /webhooks).
func (c *Client) ListWebhooks(ctx context.Context) ([]api.Webhook, error) {
	var out api.Webhooks
	if _, err := c.call(ctx, http.MethodGet, "/webhooks", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Webhooks, nil
}

// GetWebhook returns an endpoint (GET /webhooks/{id}).
func (c *Client) GetWebhook(ctx context.Context, id string) (*api.Webhook, error) {
	var out api.Webhook
	if _, err := c.call(ctx, http.MethodGet, idPath("webhooks", id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWebhook changes the fields req sets (PATCH /webhooks/{id}).
func (c *Client) UpdateWebhook(ctx context.Context, id string, req api.UpdateWebhookRequest) (*api.Webhook, error) {
	var out api.Webhook
	if _, err := c.call(ctx, http.MethodPatch, idPath("webhooks", id), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook removes an endpoint and its deliveries (DELETE
// /webhooks/{id}).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, idPath("webhooks", id), nil, nil, nil)
	return err
}

// RotateWebhookSecret makes a new signing secret, shown this once; the old
// one keeps signing beside it for overlap ("" = the server's default, 24h)
// (POST /webhooks/{id}/rotate).
func (c *Client) RotateWebhookSecret(ctx context.Context, id, overlap string) (*api.CreatedWebhook, error) {
	var out api.CreatedWebhook
	if _, err := c.call(ctx, http.MethodPost, idPath("webhooks", id, "rotate"), nil, api.RotateWebhookRequest{Overlap: overlap}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WebhookDeliveries lists an endpoint's newest deliveries with their
// attempts (GET /webhooks/{id}/deliveries); status "" means any, limit 0
// the server's default (50).
func (c *Client) WebhookDeliveries(ctx context.Context, id, status string, limit int) ([]api.Delivery, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.Deliveries
	if _, err := c.call(ctx, http.MethodGet, idPath("webhooks", id, "deliveries"), q, nil, &out); err != nil {
		return nil, err
	}
	return out.Deliveries, nil
}

// RedeliverWebhook queues one delivery again, with its webhook-id
// (POST /webhooks/{id}/deliveries/{delivery}/redeliver).
func (c *Client) RedeliverWebhook(ctx context.Context, id, delivery string) error {
	_, err := c.call(ctx, http.MethodPost, idPath("webhooks", id, "deliveries", url.PathEscape(delivery), "redeliver"), nil, nil, nil)
	return err
}

// ReplayWebhook queues again every event of a commit LSN or time range
// that the endpoint subscribes to (POST /webhooks/{id}/replay).
func (c *Client) ReplayWebhook(ctx context.Context, id string, req api.ReplayRequest) (int, error) {
	var out api.Queued
	if _, err := c.call(ctx, http.MethodPost, idPath("webhooks", id, "replay"), nil, req, &out); err != nil {
		return 0, err
	}
	return out.Queued, nil
}

// TestWebhook queues a webhook.test event (POST /webhooks/{id}/test).
func (c *Client) TestWebhook(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodPost, idPath("webhooks", id, "test"), nil, nil, nil)
	return err
}
