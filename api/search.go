package api

import "time"

// SearchRequest is the query of GET /search.
type SearchRequest struct {
	Query     string // q: matched against title (boosted), created_by and content; required
	Status    Status // exact filter; empty: any
	CreatedBy string // exact filter; empty: any
	// SigningStatus filters by the state of the document's newest signing
	// request (Document.SigningStatus); empty: any.
	SigningStatus RequestState
	From          int // hits to skip
	Size          int // hits to return; 0: the server's default (10)
	// MinLSN, when not zero, makes the search wait (boundedly) until the
	// change committed at this LSN is searchable: pass a write's
	// X-Commit-LSN to read your own write. The answer says Stale if the
	// wait gave up.
	MinLSN uint64
	// WaitForExtraction, when not empty, makes the search wait (boundedly)
	// until the extraction of each of these documents has ended and its
	// result is searchable: wait_for=extraction&document_id=… . A PDF's
	// words are extracted after its upload commits, so an upload's
	// X-Commit-LSN alone does not cover them. The answer says Stale if the
	// wait gave up.
	WaitForExtraction []string
}

// WaitForExtraction is the value of the search's wait_for parameter that
// waits for the extraction of the document_id parameters.
const WaitForExtraction = "extraction"

// SearchResponse is GET /search's answer.
type SearchResponse struct {
	// Total counts the matching documents exactly up to MaxSearchTotal;
	// beyond it Total is MaxSearchTotal and TotalRelation "gte" (at
	// least), as Elasticsearch 8 answers by default.
	Total         int64       `json:"total"`
	TotalRelation string      `json:"total_relation"` // TotalEqual or TotalAtLeast
	Documents     []SearchHit `json:"documents"`
	TookMs        int64       `json:"took_ms"`
	From          int         `json:"from"`
	Size          int         `json:"size"`
	// Stale: min_lsn was given and not reached in time; the answer may
	// miss the caller's own write.
	Stale bool `json:"stale,omitempty"`
}

// MaxSearchTotal is the largest total GET /search counts exactly.
const MaxSearchTotal = 10_000

// Values of SearchResponse.TotalRelation (Elasticsearch's hits.total.relation).
const (
	TotalEqual   = "eq"
	TotalAtLeast = "gte"
)

// SearchHit is one matching document: the indexed fields, the score and
// the highlighted fragments per field (matches in <mark> tags).
type SearchHit struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	ContentType string     `json:"content_type"`
	ContentSize int64      `json:"content_size"`
	S3Key       string     `json:"s3_key"`
	Status      Status     `json:"status"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   *time.Time `json:"created_at"`
	UpdatedAt   *time.Time `json:"updated_at"`
	Version     int32      `json:"version"`
	// SigningStatus is the state of the document's newest signing
	// request; absent when it never had one.
	SigningStatus RequestState `json:"signing_status,omitempty"`

	Score      float64             `json:"score"`
	Highlights map[string][]string `json:"highlights"`
}

// SuggestRequest is the query of GET /suggest.
type SuggestRequest struct {
	Query  string // a title prefix, at least 2 characters
	Size   int    // 0: the server's default (5)
	MinLSN uint64 // as in SearchRequest
}

// SuggestResponse is GET /suggest's answer: distinct titles starting with
// the prefix.
type SuggestResponse struct {
	Suggestions []string `json:"suggestions"`
	Stale       bool     `json:"stale,omitempty"`
}

// Aggregation fields: what GET /aggregations/{field} may group by.
const (
	AggregateStatus      = "status"
	AggregateContentType = "content_type"
	AggregateCreatedBy   = "created_by"
)

// AggregationRequest is GET /aggregations/{field}.
type AggregationRequest struct {
	Field  string // one of the Aggregate… constants
	Query  string // only documents matching it; empty: all
	Size   int    // buckets; 0: the server's default (20)
	MinLSN uint64 // as in SearchRequest
}

// AggregationResponse is GET /aggregations/{field}'s answer.
type AggregationResponse struct {
	Field  string   `json:"field"`
	Values []Bucket `json:"values"`
	Stale  bool     `json:"stale,omitempty"`
}

// Bucket is one value of an aggregation and how many documents have it.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}
