// Package signature is the signature service (port 8002): it records who
// signed which document, stores the signature image in object storage, and
// tells the document service over gRPC that the document is now signed. That
// status update is never lost: it is written to a PostgreSQL outbox in the
// same transaction as the signature and applied, with retries, either at once
// or later by the Reconciler.
package signature

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/validate"
)

// Bucket is the object storage bucket holding signature data, one object per
// signature keyed by the signature id.
const Bucket = "signatures"

// Limits.
const (
	MaxSignatureData = 1 << 20 // bytes of signature_data as sent
	MaxName          = 255
	// maxBody leaves room for JSON escaping of a signature_data at the limit
	// (a base64 image needs none; "\u00e9"-style escapes need up to 6×, but a
	// body that large is refused with 413 before it is parsed).
	maxBody = 2*MaxSignatureData + 64<<10
)

// UpdateState says where the "document is signed" status update stands.
type UpdateState = api.UpdateState

const (
	// UpdateApplied: the document service accepted the update.
	UpdateApplied = api.UpdateApplied
	// UpdatePending: the document service was unreachable; the reconciler
	// keeps retrying from the PostgreSQL outbox.
	UpdatePending = api.UpdatePending
	// UpdateFailed: the document service refused the update for good.
	UpdateFailed = api.UpdateFailed
)

// Signature is a signature as the API returns it.
type Signature = api.Signature

// CreateRequest is the body of POST /signatures as the server reads it
// (api.CreateSignatureRequest is what clients send). Pointers tell "absent"
// from "empty" so that each field gets the right message.
type CreateRequest struct {
	DocumentID    *string `json:"document_id"`
	SignerEmail   *string `json:"signer_email"`
	SignerName    *string `json:"signer_name"`
	SignatureData *string `json:"signature_data"`
	// IPAddress is accepted for wire compatibility with the reference and
	// ignored: a client must not choose the address a signature records.
	IPAddress *string `json:"ip_address"`
	// DocumentStatus is accepted for compatibility with the reference's
	// payload and validated as a status; it does not change what happens:
	// a signed document reads "signed".
	DocumentStatus *string `json:"document_status"`
}

// CreateInput is a validated CreateRequest.
type CreateInput struct {
	DocumentID    string
	SignerEmail   string
	SignerName    string
	SignatureData *string
	IPAddress     string // the observed client address, filled in by the caller
	// IdempotencyKey, if set, makes the create happen at most once for
	// this key and caller (see api.IdempotencyKeyHeader).
	IdempotencyKey string
}

// Validate checks every field, naming each offending one.
func (r CreateRequest) Validate() (CreateInput, error) {
	var in CreateInput
	var errs []apperr.FieldError
	bad := func(field, msg string) { errs = append(errs, apperr.FieldError{Field: field, Message: msg}) }

	switch {
	case r.DocumentID == nil || *r.DocumentID == "":
		bad("document_id", "is required")
	default:
		if id, ok := validate.UUID(*r.DocumentID); ok {
			in.DocumentID = id
		} else {
			bad("document_id", "must be a UUID")
		}
	}

	if r.SignerEmail == nil {
		bad("signer_email", "is required")
	} else if msg := validate.Email(*r.SignerEmail); msg != "" {
		bad("signer_email", msg)
	} else {
		in.SignerEmail = *r.SignerEmail
	}

	switch {
	case r.SignerName == nil || *r.SignerName == "":
		bad("signer_name", "is required")
	case strings.TrimSpace(*r.SignerName) == "":
		bad("signer_name", "must not be blank")
	case utf8.RuneCountInString(*r.SignerName) > MaxName:
		bad("signer_name", fmt.Sprintf("must be at most %d characters, got %d", MaxName, utf8.RuneCountInString(*r.SignerName)))
	case !validText(*r.SignerName):
		bad("signer_name", "must be valid text without NUL characters")
	default:
		in.SignerName = *r.SignerName
	}

	if r.SignatureData != nil {
		switch {
		case len(*r.SignatureData) > MaxSignatureData:
			bad("signature_data", fmt.Sprintf("must be at most %d bytes, got %d", MaxSignatureData, len(*r.SignatureData)))
		case !validText(*r.SignatureData):
			// PostgreSQL text cannot hold NUL; binary data must be base64.
			bad("signature_data", "must be text without NUL characters (send binary data base64-encoded)")
		case *r.SignatureData != "":
			in.SignatureData = r.SignatureData
		}
	}

	if r.DocumentStatus != nil {
		if _, ok := document.ParseStatus(*r.DocumentStatus); !ok {
			bad("document_status", "must be one of "+document.Statuses())
		}
	}
	return in, apperr.Fields(errs...)
}

func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// signable reports whether a document in status s may be signed: exactly
// when the document service's state machine allows s → signed (signing an
// already signed document again is allowed and leaves it signed).
func signable(s string) bool {
	st, ok := document.ParseStatus(s)
	return ok && document.CanTransition(st, document.StatusSigned)
}

// object is signature data as stored in object storage.
type object struct {
	body        []byte
	contentType string
}

// decodeSignatureData turns signature_data into the object to store. Valid
// base64 (optionally as a data: URL) of an image is stored decoded, with the
// image's detected type; anything else is stored as given, as text.
func decodeSignatureData(s string) object {
	payload := s
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		if meta, data, ok := strings.Cut(rest, ","); ok && strings.HasSuffix(meta, ";base64") {
			payload = data
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(payload)
		if err != nil || len(b) == 0 {
			continue
		}
		if ct := http.DetectContentType(b); strings.HasPrefix(ct, "image/") {
			return object{body: b, contentType: ct}
		}
		// Not an image: only SVG is worth a second look, since sniffing
		// reports it as text.
		if bytes.Contains(b[:min(len(b), 512)], []byte("<svg")) {
			return object{body: b, contentType: "image/svg+xml"}
		}
		break
	}
	return object{body: []byte(s), contentType: "text/plain; charset=utf-8"}
}
