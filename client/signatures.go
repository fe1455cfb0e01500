package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
)

// CreateSignature records a signature (POST /signatures). The signature
// service then moves the document to signed; the answer's
// DocumentStatusUpdate says whether that is done (applied), still being
// retried (pending) or refused (failed).
func (c *Client) CreateSignature(ctx context.Context, req api.CreateSignatureRequest) (*api.Signature, error) {
	var s api.Signature
	if _, err := c.call(ctx, http.MethodPost, "/signatures", nil, req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// GetSignature returns one signature (GET /signatures/{id}).
func (c *Client) GetSignature(ctx context.Context, id string) (*api.Signature, error) {
	var s api.Signature
	if _, err := c.call(ctx, http.MethodGet, idPath("signatures", id), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListSignatures returns a page of signatures, newest first
// (GET /signatures).
func (c *Client) ListSignatures(ctx context.Context, page api.ListOptions) ([]api.Signature, error) {
	var out []api.Signature
	if _, err := c.call(ctx, http.MethodGet, "/signatures", pageQuery(page), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DocumentSignatures returns a document's signatures
// (GET /documents/{id}/signatures).
func (c *Client) DocumentSignatures(ctx context.Context, documentID string) ([]api.Signature, error) {
	var out []api.Signature
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", documentID, "signatures"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}
