package api

import "time"

// Status is a document's lifecycle state. Which status may follow which is
// the document service's rule (internal/document), not the client's.
type Status string

const (
	StatusCreated   Status = "created"
	StatusSent      Status = "sent"
	StatusViewed    Status = "viewed"
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved"
	StatusSigned    Status = "signed"
	StatusCompleted Status = "completed"
	StatusCancelled Status = "cancelled"
	StatusArchived  Status = "archived"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusCreated, StatusSent, StatusViewed, StatusPending, StatusApproved,
	StatusSigned, StatusCompleted, StatusCancelled, StatusArchived}

// Document is a document's metadata: the answer of POST, GET and PATCH
// /documents/{id} and an element of GET /documents. The first ten fields are
// the reference system's; the rest are additive.
type Document struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	ContentType string `json:"content_type"`
	ContentSize int64  `json:"content_size"`
	S3Key       string `json:"s3_key"`
	Status      Status `json:"status"`
	CreatedBy   string `json:"created_by"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
	Version     int32  `json:"version"`
	// ContentSHA256 is the hex SHA-256 of the content (also the content's
	// ETag); empty for rows written before it was recorded.
	ContentSHA256 string `json:"content_sha256"`
	// Owner is the creator's principal key ("user:<subject>",
	// "apikey:<id>"); absent for a document created anonymously in open
	// mode (so the reference's answers stay as they were).
	Owner string `json:"owner,omitempty"`
	// SigningStatus is the state of the document's newest signing request
	// (draft, sent, in_progress, completed, declined, expired, cancelled);
	// absent when it never had one. Every change of it is a new version.
	SigningStatus RequestState `json:"signing_status,omitempty"`
}

// Time is a document timestamp. It is sent as ISO-8601 UTC with
// microseconds (2025-11-20T01:46:31.657647Z), like the CDC events.
//
// Time is a named field, not an embedded time.Time: an embedded one would
// promote time.Time's MarshalJSON, and encoding/json re-scans (compacts)
// every MarshalJSON result, where a MarshalText result is only quoted.
// With MarshalJSON the two timestamps of a document were a fifth of a list
// page's CPU (BenchmarkListCPU's profile).
type Time struct{ Time time.Time }

const timeLayout = "2006-01-02T15:04:05.000000Z"

func (t Time) MarshalText() ([]byte, error) {
	return t.Time.UTC().AppendFormat(make([]byte, 0, len(timeLayout)), timeLayout), nil
}

func (t *Time) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339Nano, string(b))
	t.Time = v
	return err
}

func (t Time) String() string { return t.Time.UTC().Format(timeLayout) }

// CreateDocumentRequest is the JSON body of POST /documents (the
// reference's). Content is stored as the document's content; larger files
// are uploaded as multipart/form-data instead.
type CreateDocumentRequest struct {
	Title   string `json:"title"`
	Content string `json:"content"`
	// ContentType defaults to text/plain.
	ContentType string `json:"content_type,omitempty"`
	CreatedBy   string `json:"created_by"`
}

// UpdateDocumentRequest is the body of PATCH /documents/{id}: the fields to
// change; an empty field is left as it is.
type UpdateDocumentRequest struct {
	Title  string `json:"title,omitempty"`
	Status Status `json:"status,omitempty"`
}

// DocumentStats is GET /documents/{id}/stats: the document's view counters.
type DocumentStats struct {
	DocumentID  string `json:"document_id"`
	TotalViews  int64  `json:"total_views"`
	UniqueViews int64  `json:"unique_views"`
}

// Share grants one grantee a level on a document: an element of
// GET /documents/{id}/shares and the answer of POST /documents/{id}/shares.
type Share struct {
	DocumentID string `json:"document_id"`
	// Grantee is "user:<subject>", "group:<name>", "email:<address>" or
	// "apikey:<id>". An email share counts only for a token whose email is
	// verified.
	Grantee string `json:"grantee"`
	// Level is view, edit, sign or own (see ShareRequest).
	Level string `json:"level"`
	// CreatedBy is the principal key of who granted it.
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// ShareRequest is the body of POST /documents/{id}/shares: grant (or
// change) grantee's level. view reads the document, its content, stats and
// signatures; edit also changes it; sign also signs it; own is everything,
// including deleting and sharing. Only the owner, a holder of own or an
// admin may share.
type ShareRequest struct {
	Grantee string `json:"grantee"`
	Level   string `json:"level"`
}
