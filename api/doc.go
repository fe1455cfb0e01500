// Package api holds the types docstream's REST and WebSocket API exchanges:
// what the services encode and what the public client
// (github.com/docstream/docstream/client) decodes. Each wire shape is
// declared here once; the services use these types (directly or through
// aliases) and keep their logic — validation, the status state machine —
// in their own packages. Errors travel as apperr.Body
// (github.com/docstream/docstream/apperr).
//
// Request bodies (CreateDocumentRequest, UpdateDocumentRequest,
// CreateSignatureRequest) are what a client sends; the services decode them
// into stricter forms of their own that tell an absent field from an empty
// one, and their tests check that every field of these types is accepted.
package api

// Headers of the API.
const (
	// CommitLSNHeader carries the WAL position after a write's commit
	// (POST and PATCH /documents). Search accepts it as min_lsn (or as
	// MinLSNHeader) to wait until that write is searchable.
	CommitLSNHeader = "X-Commit-LSN"
	// MinLSNHeader is the header form of search's min_lsn parameter.
	MinLSNHeader = "X-Min-LSN"
)

// ListOptions pages GET /documents and GET /signatures, newest first.
type ListOptions struct {
	Skip  int // rows to skip
	Limit int // rows to return; 0: the server's default (100)
}
