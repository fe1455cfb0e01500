package api

import "time"

// UpdateState says where a signature's "document is signed" status update
// stands.
type UpdateState string

const (
	// UpdateApplied: the document service accepted the update.
	UpdateApplied UpdateState = "applied"
	// UpdatePending: the document service was unreachable; the signature
	// service keeps retrying from its outbox.
	UpdatePending UpdateState = "pending"
	// UpdateFailed: the document service refused the update for good (for
	// example the document was cancelled after the signature was checked).
	UpdateFailed UpdateState = "failed"
)

// Signature is a recorded signature: the answer of POST /signatures and GET
// /signatures/{id}, and an element of GET /signatures and GET
// /documents/{id}/signatures. The first seven fields are the reference's
// response; the rest are additive.
type Signature struct {
	ID          string `json:"id"`
	DocumentID  string `json:"document_id"`
	SignerEmail string `json:"signer_email"`
	SignerName  string `json:"signer_name"`
	// SignerSubject is who signed as the deployment verified them: the
	// principal's key ("user:<sub>", "apikey:<id>"); absent for a
	// signature made without a credential (open mode).
	SignerSubject *string   `json:"signer_subject,omitempty"`
	SignedAt      time.Time `json:"signed_at"`
	SignatureData *string   `json:"signature_data"`
	IPAddress     *string   `json:"ip_address"`

	// What was signed: the document's version and content hash when the
	// signature was recorded (null if the document has no hash).
	DocumentVersion *int32  `json:"document_version"`
	ContentSHA256   *string `json:"content_sha256"`
	// Where signature_data is stored, in bucket "signatures".
	SignatureKey         *string `json:"signature_key"`
	SignatureContentType *string `json:"signature_content_type"`
	SignatureSize        *int64  `json:"signature_size"`
	// DocumentStatusUpdate is applied, pending or failed.
	DocumentStatusUpdate UpdateState `json:"document_status_update"`
	// DocumentStatusError is why a failed update was refused.
	DocumentStatusError string `json:"document_status_error,omitempty"`
}

// CreateSignatureRequest is the body of POST /signatures (the reference's).
type CreateSignatureRequest struct {
	DocumentID  string `json:"document_id"`
	SignerEmail string `json:"signer_email"`
	SignerName  string `json:"signer_name"`
	// SignatureData is typically a base64 image (optionally a data: URL).
	SignatureData string `json:"signature_data,omitempty"`
	// IPAddress defaults to the address the server sees.
	IPAddress string `json:"ip_address,omitempty"`
	// DocumentStatus is accepted for compatibility with the reference's
	// payload and validated; a signed document reads "signed" whatever it is.
	DocumentStatus Status `json:"document_status,omitempty"`
}
