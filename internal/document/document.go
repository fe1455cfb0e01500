// Package document is the document service: documents stored in PostgreSQL
// with their content in object storage, a Redis cache and view analytics,
// served over REST (port 8005) and gRPC (port 50051).
package document

import (
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/validate"
)

// Status is a document's lifecycle state (the wire type).
type Status = api.Status

const (
	StatusCreated   = api.StatusCreated
	StatusSent      = api.StatusSent
	StatusViewed    = api.StatusViewed
	StatusPending   = api.StatusPending
	StatusApproved  = api.StatusApproved
	StatusSigned    = api.StatusSigned
	StatusCompleted = api.StatusCompleted
	StatusCancelled = api.StatusCancelled
	StatusArchived  = api.StatusArchived
)

// transitions is the state machine: the statuses each status may move to.
// Setting the current status again is always allowed and changes nothing
// (so retried updates are idempotent). cancelled and archived are terminal;
// nothing returns to created; once signed, only completion or archiving.
var transitions = map[Status][]Status{
	StatusCreated:   {StatusSent, StatusViewed, StatusPending, StatusApproved, StatusSigned, StatusCancelled, StatusArchived},
	StatusSent:      {StatusViewed, StatusPending, StatusApproved, StatusSigned, StatusCancelled, StatusArchived},
	StatusViewed:    {StatusSent, StatusPending, StatusApproved, StatusSigned, StatusCancelled, StatusArchived},
	StatusPending:   {StatusSent, StatusViewed, StatusApproved, StatusSigned, StatusCancelled, StatusArchived},
	StatusApproved:  {StatusSigned, StatusCancelled, StatusArchived},
	StatusSigned:    {StatusCompleted, StatusArchived},
	StatusCompleted: {StatusArchived},
	StatusCancelled: nil,
	StatusArchived:  nil,
}

// ParseStatus validates s.
func ParseStatus(s string) (Status, bool) {
	_, ok := transitions[Status(s)]
	return Status(s), ok
}

// Statuses lists every status, for error messages.
func Statuses() string {
	names := make([]string, len(api.Statuses))
	for i, st := range api.Statuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// CanTransition reports whether from → to is legal (from == to is).
func CanTransition(from, to Status) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func transitionError(from, to Status) error {
	return apperr.E(apperr.Conflict, "illegal status transition from %s to %s", from, to)
}

// Document is a document's metadata, as the API returns it.
type Document = api.Document

// Time renders as ISO-8601 UTC with microseconds, like the CDC events.
type Time = api.Time

// Limits.
const (
	MaxTitle       = 255
	MaxContentType = 100
	MaxJSONContent = 10 << 20 // content inline in a JSON create
)

// CreateInput is what a new document is made from. Content is streamed.
type CreateInput struct {
	Title       string
	ContentType string // empty: detected
	CreatedBy   string
	// owner is the creator's principal key, filled in by the service from
	// the request's principal, never from the body.
	owner string
	// IdempotencyKey, if set, makes the create happen at most once for
	// this key and caller (see api.IdempotencyKeyHeader).
	IdempotencyKey string
}

// Validate checks the fields, naming every offending one.
func (in CreateInput) Validate() error {
	var errs []apperr.FieldError
	errs = appendTitle(errs, in.Title, true)
	if msg := validate.Email(in.CreatedBy); msg != "" {
		errs = append(errs, apperr.FieldError{Field: "created_by", Message: msg})
	}
	if in.ContentType != "" {
		if _, msg := ParseContentType(in.ContentType); msg != "" {
			errs = append(errs, apperr.FieldError{Field: "content_type", Message: msg})
		}
	}
	return apperr.Fields(errs...)
}

// ParseContentType checks that s is a media type as RFC 2045 defines it
// (type/subtype, then well-formed parameters) and returns its canonical
// form, which is what object storage records; or, when s is not one, a
// message for the field. Object storage parses the type again and fails on
// anything this lets through, and that must never happen on a client's
// input: it would read as storage being down.
func ParseContentType(s string) (canonical, problem string) {
	const want = "must be a media type such as text/plain or text/plain; charset=utf-8"
	if !validText(s) {
		return "", want
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", want
	}
	ct := mime.FormatMediaType(mt, params)
	switch {
	case ct == "":
		return "", want
	case len(ct) > MaxContentType:
		return "", fmt.Sprintf("must be at most %d characters", MaxContentType)
	}
	return ct, ""
}

// validText is what PostgreSQL text columns and object storage metadata can
// hold: valid UTF-8 without NUL.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func appendTitle(errs []apperr.FieldError, title string, required bool) []apperr.FieldError {
	n := utf8.RuneCountInString(title)
	switch {
	case strings.TrimSpace(title) == "" && required:
		return append(errs, apperr.FieldError{Field: "title", Message: "is required"})
	case strings.TrimSpace(title) == "":
		return append(errs, apperr.FieldError{Field: "title", Message: "must not be blank"})
	case n > MaxTitle:
		return append(errs, apperr.FieldError{Field: "title", Message: fmt.Sprintf("must be at most %d characters, got %d", MaxTitle, n)})
	case !validText(title):
		return append(errs, apperr.FieldError{Field: "title", Message: "must be valid UTF-8 text without NUL characters"})
	}
	return errs
}

// UpdateInput is a partial update; nil fields are left alone.
type UpdateInput struct {
	Title   *string
	Status  *string
	IfMatch *int32 // expected current version (If-Match)
	// workflow marks the signing workflow's own status update (gRPC, as
	// service "signature"): the one change a document out for signature
	// accepts.
	workflow bool
}

// Validate checks the fields.
func (in UpdateInput) Validate() error {
	var errs []apperr.FieldError
	if in.Title == nil && in.Status == nil {
		return apperr.Fields(apperr.FieldError{Field: "title", Message: "nothing to update: give title and/or status"})
	}
	if in.Title != nil {
		errs = appendTitle(errs, *in.Title, false)
	}
	if in.Status != nil {
		if _, ok := ParseStatus(*in.Status); !ok {
			errs = append(errs, apperr.FieldError{Field: "status", Message: "must be one of " + Statuses()})
		}
	}
	return apperr.Fields(errs...)
}

// Stats are a document's view analytics.
type Stats = api.DocumentStats

// ContentKey is the object key of a document's content in bucket "documents".
func ContentKey(id string) string { return id + "/content" }

// Bucket is where document content lives.
const Bucket = "documents"
