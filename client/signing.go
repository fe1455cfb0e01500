package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/docstream/docstream/api"
)

// WrittenSigningRequest is a signing request as a route that changed it
// answered, with the answer's X-Commit-LSN.
type WrittenSigningRequest struct {
	api.SigningRequest
	// CommitLSN, as MinLSN of a search, shows what the change did to the
	// index (the recipients' shares); the document status the request
	// moves the document to follows after it.
	CommitLSN uint64 `json:"-"`
}

// WrittenInvitation is an invitation as a route that recorded a view or an
// action answered, with the answer's X-Commit-LSN.
type WrittenInvitation struct {
	api.Invitation
	CommitLSN uint64 `json:"-"`
}

// CreateSigningRequest asks recipients to sign, approve or view document
// documentID's current content (POST /documents/{id}/signing-requests;
// needs own). Unless req.Draft, invitations go out at once.
func (c *Client) CreateSigningRequest(ctx context.Context, documentID string, req api.CreateSigningRequest) (*WrittenSigningRequest, error) {
	return c.writeSigningRequest(ctx, http.MethodPost, idPath("documents", documentID, "signing-requests"), req)
}

// DocumentSigningRequests lists a document's signing requests, newest
// first (GET /documents/{id}/signing-requests).
func (c *Client) DocumentSigningRequests(ctx context.Context, documentID string) ([]api.SigningRequest, error) {
	var out []api.SigningRequest
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", documentID, "signing-requests"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetSigningRequest returns one signing request with its recipients
// (GET /signing-requests/{rid}).
func (c *Client) GetSigningRequest(ctx context.Context, id string) (*api.SigningRequest, error) {
	var out api.SigningRequest
	if _, err := c.call(ctx, http.MethodGet, idPath("signing-requests", id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SendSigningRequest sends a draft (POST /signing-requests/{rid}/send).
func (c *Client) SendSigningRequest(ctx context.Context, id string) (*WrittenSigningRequest, error) {
	return c.requestOp(ctx, id, "send")
}

// CancelSigningRequest cancels an open request
// (POST /signing-requests/{rid}/cancel).
func (c *Client) CancelSigningRequest(ctx context.Context, id string) (*WrittenSigningRequest, error) {
	return c.requestOp(ctx, id, "cancel")
}

// ResendSigningRequest mails fresh invitations to the recipients still
// waiting (POST /signing-requests/{rid}/resend).
func (c *Client) ResendSigningRequest(ctx context.Context, id string) (*WrittenSigningRequest, error) {
	return c.requestOp(ctx, id, "resend")
}

func (c *Client) requestOp(ctx context.Context, id, op string) (*WrittenSigningRequest, error) {
	return c.writeSigningRequest(ctx, http.MethodPost, idPath("signing-requests", id, op), struct{}{})
}

// writeSigningRequest calls a route that changes a signing request and
// answers it.
func (c *Client) writeSigningRequest(ctx context.Context, method, path string, body any) (*WrittenSigningRequest, error) {
	var out WrittenSigningRequest
	var err error
	if out.CommitLSN, err = c.written(ctx, method, path, body, &out.SigningRequest); err != nil {
		return nil, err
	}
	return &out, nil
}

// writeInvitation calls a route that records a view of or an action on an
// invitation and answers the invitation.
func (c *Client) writeInvitation(ctx context.Context, method, path string, body any) (*WrittenInvitation, error) {
	var out WrittenInvitation
	var err error
	if out.CommitLSN, err = c.written(ctx, method, path, body, &out.Invitation); err != nil {
		return nil, err
	}
	return &out, nil
}

// SigningCertificate streams a completed request's certificate of
// completion, a PDF (GET /signing-requests/{rid}/certificate).
func (c *Client) SigningCertificate(ctx context.Context, id string) (*Content, error) {
	return c.stream(ctx, idPath("signing-requests", id, "certificate"))
}

// SigningInvitation is what a signed-in recipient's invitation shows, and
// records that they viewed it (GET /signing-requests/{rid}/invitation).
func (c *Client) SigningInvitation(ctx context.Context, id string) (*WrittenInvitation, error) {
	return c.writeInvitation(ctx, http.MethodGet, idPath("signing-requests", id, "invitation"), nil)
}

// ActOnSigningRequest signs, approves or declines ("sign", "approve",
// "decline") as the signed-in recipient whose verified email is on the
// request (POST /signing-requests/{rid}/{action}).
func (c *Client) ActOnSigningRequest(ctx context.Context, id, action string, req api.InvitationAction) (*WrittenInvitation, error) {
	return c.writeInvitation(ctx, http.MethodPost, idPath("signing-requests", id, url.PathEscape(action)), req)
}

// ViewInvitation opens an invitation link's token (GET /invitations/{token}).
func (c *Client) ViewInvitation(ctx context.Context, token string) (*WrittenInvitation, error) {
	return c.writeInvitation(ctx, http.MethodGet, idPath("invitations", token), nil)
}

// InvitationContent streams the pinned content an invitation shows
// (GET /invitations/{token}/content).
func (c *Client) InvitationContent(ctx context.Context, token string) (*Content, error) {
	return c.stream(ctx, idPath("invitations", token, "content"))
}

// ActOnInvitation signs, approves or declines with an invitation token
// (POST /invitations/{token}/{action}); the action uses the invitation up.
func (c *Client) ActOnInvitation(ctx context.Context, token, action string, req api.InvitationAction) (*WrittenInvitation, error) {
	return c.writeInvitation(ctx, http.MethodPost, idPath("invitations", token, url.PathEscape(action)), req)
}

// stream GETs path and returns the body to read.
func (c *Client) stream(ctx context.Context, path string) (*Content, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, header: http.Header{"Accept": {"*/*"}}})
	if err != nil {
		return nil, err
	}
	return &Content{ReadCloser: resp.Body, ContentType: resp.Header.Get("Content-Type"), Length: resp.ContentLength, Size: resp.ContentLength}, nil
}
