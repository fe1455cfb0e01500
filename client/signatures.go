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
func (c *Client) CreateSignature(ctx context.Context, req api.CreateSignatureRequest) (*WrittenSignature, error) {
	var out WrittenSignature
	var err error
	if out.CommitLSN, err = c.written(ctx, http.MethodPost, "/signatures", req, &out.Signature); err != nil {
		return nil, err
	}
	return &out, nil
}

// WrittenSignature is a signature as POST /signatures answered it, with
// the answer's X-Commit-LSN.
type WrittenSignature struct {
	api.Signature
	// CommitLSN, as MinLSN of a search, shows the signature and, when
	// DocumentStatusUpdate is "applied", the document's signed status; a
	// pending update commits later, when the signature service retries it.
	CommitLSN uint64 `json:"-"`
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
