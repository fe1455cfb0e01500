// Package search is the full-text search of docstream: the Index interface
// both backends implement (bleve/ embedded, elastic/ for Elasticsearch 8 and
// OpenSearch), the query parameters and their validation, and the HTTP
// service on port 8003 (http.go).
//
// Versioning contract shared by every backend: each write carries an
// external version, the LSN of the change event it comes from. A backend
// applies an operation only when its version is strictly greater than the
// version it already holds for that document id — including the version of
// a delete (a tombstone) — so redelivered, repeated or out-of-order events
// never move a document backwards, and replaying the whole stream converges
// to the table.
package search

import (
	"context"
	"time"

	"github.com/docstream/docstream/api"
)

// Document is what the index holds for one documents.documents row: the
// reference's fields plus the text content read from object storage.
type Document struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	ContentType string     `json:"content_type"`
	ContentSize int64      `json:"content_size"`
	S3Key       string     `json:"s3_key"`
	Status      string     `json:"status"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   *time.Time `json:"created_at"`
	UpdatedAt   *time.Time `json:"updated_at"`
	Version     int32      `json:"version"`
	// Owner and Readers are the document's access (documents.owner and
	// documents.readers): indexed as exact keywords so every query can be
	// restricted to the documents a caller may view (Access). Never
	// returned by the API.
	Owner   string   `json:"owner,omitempty"`
	Readers []string `json:"readers,omitempty"`
	// SigningStatus is documents.signing_status: the state of the
	// document's newest signing request, an exact keyword; empty: none.
	SigningStatus string `json:"signing_status,omitempty"`
	// Content is indexed (and kept for highlights) but never returned in
	// search results: it may be up to the indexer's cap (1 MiB by default).
	Content string `json:"-"`
}

// Op is one bulk operation: an upsert of Doc, or a delete of ID when Delete
// is set. Version is the external version (the change's LSN).
//
// ContentOnly replaces the content of the live document ID with
// Doc.Content and keeps its other fields (the extractor's text arriving
// after the document): applied, at Version, only when the index holds a
// live document with an older version; otherwise it is stale (a later
// change of the document reads the text itself, and a deleted or not yet
// indexed document has nothing to add it to).
type Op struct {
	ID          string
	Version     uint64
	Delete      bool
	ContentOnly bool
	Doc         Document
}

// BulkResult reports what Apply did. Stale operations (version not newer
// than the one held) are skipped on purpose and are not errors.
type BulkResult struct {
	Applied int
	Stale   int
}

// Access is which documents a query may see. The zero value restricts
// nothing (open mode, admins); a Restricted query sees only the documents
// whose readers hold at least one of Readers, and nothing at all when
// Readers is empty. Backends apply it inside the query, so totals, facet
// counts, suggestions and highlights never count a document the caller
// may not view.
type Access struct {
	Restricted bool
	Readers    []string
}

// Everything is the unrestricted Access.
var Everything = Access{}

// ReadersOf restricts a query to the documents that any of keys may view
// (auth.Principal.ReaderKeys).
func ReadersOf(keys []string) Access { return Access{Restricted: true, Readers: keys} }

// Query is a validated search request.
type Query struct {
	Text      string
	Status    string // exact filter; empty: any
	CreatedBy string // exact filter; empty: any
	// SigningStatus is an exact filter on Document.SigningStatus (one of
	// api.RequestStates); empty: any.
	SigningStatus string
	From          int
	Size          int
	Access        Access
}

// Hit is one matching document.
type Hit struct {
	Document
	Score      float64
	Highlights map[string][]string
}

// Result is one page of hits. Total is exact, or a lower bound when
// TotalAtLeast (a backend may stop counting at MaxTotal).
type Result struct {
	Total        int64
	TotalAtLeast bool
	Hits         []Hit
}

// MaxTotal is the largest total a search answer counts exactly
// (Elasticsearch 8's default track_total_hits).
const MaxTotal = api.MaxSearchTotal

// capTotal reports a total as the API does: exact up to MaxTotal, then
// MaxTotal and "gte".
func capTotal(r Result) (int64, string) {
	if r.TotalAtLeast || r.Total > MaxTotal {
		return min(r.Total, MaxTotal), api.TotalAtLeast
	}
	return r.Total, api.TotalEqual
}

// Bucket is one value of a terms aggregation.
type Bucket = api.Bucket

// AggregationFields are the fields a terms aggregation may group by.
var AggregationFields = []string{api.AggregateStatus, api.AggregateContentType, api.AggregateCreatedBy}

// Extractions tells a search that waits for extraction
// (wait_for=extraction&document_id=…) when a document's extraction has
// ended. Extracted text is committed long after the document's create,
// so the create's X-Commit-LSN cannot cover it.
type Extractions interface {
	// Settled reports whether the extraction of document id's current
	// content has ended (done, failed, unsupported, skipped, or there is
	// no content), and then a WAL position at or past that result's
	// commit, to wait for as a min_lsn. NotFound when the document does
	// not exist or the caller (the principal on ctx) may not view it.
	Settled(ctx context.Context, id string) (settled bool, lsn uint64, err error)
}

// Index is implemented by every backend. All methods are safe for
// concurrent use.
type Index interface {
	// Apply writes ops in order, as one durable batch: when it returns nil,
	// every applied operation survives a crash and is visible to Search.
	// Operations whose version is not newer than the one held for their id
	// (a document or a delete tombstone) are skipped and counted as stale.
	Apply(ctx context.Context, ops []Op) (BulkResult, error)
	// Search runs a multi-field match (title boosted ×2, created_by,
	// content; fuzzy) with exact filters, highlights for title and content,
	// sorted by score then created_at descending, among the documents
	// q.Access may see (the restriction does not change scores).
	Search(ctx context.Context, q Query) (Result, error)
	// Suggest returns up to size distinct titles starting with prefix,
	// case-insensitively, among the documents acc may see.
	Suggest(ctx context.Context, prefix string, size int, acc Access) ([]string, error)
	// Terms counts documents per value of field (one of AggregationFields),
	// among the documents matching text (all documents when text is empty)
	// that acc may see.
	Terms(ctx context.Context, field, text string, size int, acc Access) ([]Bucket, error)
	// SetAppliedLSN records that every change up to lsn is applied and
	// searchable. The value never decreases, whatever the call order, so
	// several writers may call it. It is stored in the index itself, which
	// is how a search service in another process learns it.
	SetAppliedLSN(ctx context.Context, lsn uint64) error
	// AppliedLSN returns the value recorded by SetAppliedLSN (0 if none).
	AppliedLSN(ctx context.Context) (uint64, error)
	// Count returns the number of live documents (for tests and metrics).
	Count(ctx context.Context) (int64, error)
	// Ping checks the backend (readiness).
	Ping(ctx context.Context) error
	Close() error
}
