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

import "time"

// Headers of the API.
const (
	// CommitLSNHeader carries the WAL position after a write's commit
	// (POST and PATCH /documents). Search accepts it as min_lsn (or as
	// MinLSNHeader) to wait until that write is searchable.
	CommitLSNHeader = "X-Commit-LSN"
	// MinLSNHeader is the header form of search's min_lsn parameter.
	MinLSNHeader = "X-Min-LSN"
	// IdempotencyKeyHeader (draft-ietf-httpapi-idempotency-key-header) on
	// POST /documents makes a retried create safe: the same key with the
	// same request, within a day, answers the first create's answer and
	// creates nothing; with a different request, 422; while the first is
	// still in progress, 409. At most 255 visible ASCII characters, bare
	// or as a quoted structured-field string.
	IdempotencyKeyHeader = "Idempotency-Key"
	// IdempotentReplayedHeader is "true" on an answer that repeats the
	// first answer to the same Idempotency-Key.
	IdempotentReplayedHeader = "Idempotent-Replayed"
)

// ListOptions pages GET /documents and GET /signatures, newest first.
type ListOptions struct {
	Skip  int // rows to skip
	Limit int // rows to return; 0: the server's default (100)
}

// NextCursorHeader carries, on a page of GET /documents that is not the
// last, the opaque cursor of the next page (pass it back as cursor). The
// list's body is the reference's bare JSON array, so the cursor travels
// beside it, as does an RFC 8288 Link header with rel="next".
const NextCursorHeader = "X-Next-Cursor"

// MaxListSkip is the largest skip GET /documents accepts; page further
// with the cursor.
const MaxListSkip = 10_000

// ListSort is the order of GET /documents (its sort parameter): a field,
// descending when "-" precedes it; id breaks ties in the same direction.
type ListSort string

// The orders GET /documents accepts; any other sort is a 422 naming sort.
const (
	SortCreatedDesc ListSort = "-created_at" // newest first: the default
	SortCreatedAsc  ListSort = "created_at"
	SortUpdatedDesc ListSort = "-updated_at" // most recently changed first
	SortUpdatedAsc  ListSort = "updated_at"
	SortTitleAsc    ListSort = "title" // in the database's collation
	SortTitleDesc   ListSort = "-title"
)

// ListSorts lists every ListSort, the default first.
var ListSorts = []ListSort{SortCreatedDesc, SortCreatedAsc, SortUpdatedDesc, SortUpdatedAsc, SortTitleAsc, SortTitleDesc}

// ListDocumentsRequest selects a page of GET /documents: keyset paging by
// Cursor (or the reference's Skip, at most MaxListSkip), an order and
// filters. Zero fields select everything, newest first.
type ListDocumentsRequest struct {
	Limit         int       // rows to return; 0: the server's default (100)
	Skip          int       // rows to skip; not with Cursor
	Cursor        string    // the NextCursor of the previous page (of the same Sort)
	Sort          ListSort  // "": SortCreatedDesc
	MinLSN        uint64    // the X-Commit-LSN of the caller's last write (read-your-writes); 0: none
	Status        Status    // exact
	CreatedBy     string    // exact
	CreatedAfter  time.Time // created_at strictly after
	CreatedBefore time.Time // created_at strictly before
}

// DocumentPage is one page of GET /documents and the cursor of the next
// ("" on the last page).
type DocumentPage struct {
	Documents  []Document `json:"documents"`
	NextCursor string     `json:"next_cursor,omitempty"`
}
