package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
)

// API keys are managed by an admin (outside `docstream dev`): the client
// must carry an admin's token or an API key with the admin scope.

// CreateAPIKey makes an API key (POST /apikeys). The answer's Key is the
// credential, shown this once: the server keeps only its hash.
func (c *Client) CreateAPIKey(ctx context.Context, req api.CreateAPIKeyRequest) (*api.CreatedAPIKey, error) {
	var out api.CreatedAPIKey
	if _, err := c.call(ctx, http.MethodPost, "/apikeys", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAPIKeys returns every API key, newest first, revoked ones included
// (GET /apikeys). Secrets are never listed.
func (c *Client) ListAPIKeys(ctx context.Context) ([]api.APIKey, error) {
	var out api.APIKeys
	if _, err := c.call(ctx, http.MethodGet, "/apikeys", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeAPIKey revokes the API key id (DELETE /apikeys/{id}). Revoking a
// revoked key succeeds; an unknown id is apperr.NotFound.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, idPath("apikeys", id), nil, nil, nil)
	return err
}
