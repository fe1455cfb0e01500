package client

import (
	"context"
	"net/http"

	"github.com/docstream/docstream/api"
)

// DocumentAudit returns a document's audit trail
// (GET /documents/{id}/audit): the owner, a holder of own or an admin.
// A deleted document's trail is still there for its owner and admins.
func (c *Client) DocumentAudit(ctx context.Context, documentID string) (*api.AuditLog, error) {
	var l api.AuditLog
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", documentID, "audit"), nil, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// VerifyDocumentAudit asks the server to verify a document's audit trail
// (GET /documents/{id}/audit/verify). An invalid trail is an answer, not
// an error: see Valid and FirstBroken.
func (c *Client) VerifyDocumentAudit(ctx context.Context, documentID string) (*api.AuditVerification, error) {
	var v api.AuditVerification
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", documentID, "audit", "verify"), nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// AuditKeys returns the public keys audit checkpoints are signed with
// (GET /.well-known/docstream-audit-keys; no credential needed).
func (c *Client) AuditKeys(ctx context.Context) (*api.AuditKeySet, error) {
	var ks api.AuditKeySet
	if _, err := c.call(ctx, http.MethodGet, "/.well-known/docstream-audit-keys", nil, nil, &ks); err != nil {
		return nil, err
	}
	return &ks, nil
}
