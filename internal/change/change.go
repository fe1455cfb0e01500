// Package change defines the change events on the bus: the Debezium
// PostgreSQL envelope (JSON converter, schemas disabled), exactly as the
// reference's contract pins it (docs/architecture.md, "Event bus and CDC";
// internal/cdc/testdata/*.golden hold a worked example), and the typed rows consumers
// decode from it. The CDC engine writes these; the indexer and realtime read.
package change

import (
	"encoding/json"
	"time"
)

// Operations.
const (
	OpCreate = "c"
	OpUpdate = "u"
	OpDelete = "d"
	OpRead   = "r" // snapshot
)

// Envelope is the value of a change event. Field order is the wire order.
// Before and After are the row objects in table column order (the CDC engine
// builds them), or JSON null.
type Envelope struct {
	Before      json.RawMessage `json:"before"`
	After       json.RawMessage `json:"after"`
	Source      Source          `json:"source"`
	Op          string          `json:"op"`
	TsMs        int64           `json:"ts_ms"`
	Transaction json.RawMessage `json:"transaction"`
}

// Source is Debezium's source block.
type Source struct {
	Version   string `json:"version"`
	Connector string `json:"connector"`
	Name      string `json:"name"`
	TsMs      int64  `json:"ts_ms"`
	Snapshot  string `json:"snapshot"`
	DB        string `json:"db"`
	Sequence  string `json:"sequence"`
	Schema    string `json:"schema"`
	Table     string `json:"table"`
	TxID      int64  `json:"txId"`
	LSN       uint64 `json:"lsn"`
	Xmin      *int64 `json:"xmin"`
}

// Key is the key of a change event.
type Key struct {
	ID string `json:"id"`
}

// Document is a documents.documents row as it appears in an envelope.
type Document struct {
	ID            string  `json:"id"`
	Title         string  `json:"title"`
	ContentType   *string `json:"content_type"`
	ContentSize   *int64  `json:"content_size"`
	S3Key         *string `json:"s3_key"`
	Status        string  `json:"status"`
	CreatedBy     string  `json:"created_by"`
	CreatedAt     *string `json:"created_at"`
	UpdatedAt     *string `json:"updated_at"`
	Version       *int32  `json:"version"`
	ContentSHA256 *string `json:"content_sha256"`
	// Owner is the creator's principal key (NULL: created anonymously in
	// open mode); Readers every principal key that may view the document
	// (auth.Principal.ReaderKeys), a JSON array. A change of Readers alone
	// leaves Version and UpdatedAt as they were: it is not an edit.
	Owner   *string  `json:"owner"`
	Readers []string `json:"readers"`
	// SigningStatus is the state of the document's newest signing request
	// (NULL: none yet; migration 00021). Each change of it is its own
	// update, with a new version.
	SigningStatus *string `json:"signing_status"`
}

// Signature is a signatures.signatures row as it appears in an envelope.
// Columns added by later migrations appear in the raw JSON too; decode them
// with a struct of your own if you need them.
type Signature struct {
	ID            string  `json:"id"`
	DocumentID    string  `json:"document_id"`
	SignerEmail   string  `json:"signer_email"`
	SignerName    string  `json:"signer_name"`
	SignedAt      *string `json:"signed_at"`
	SignatureData *string `json:"signature_data"`
	IPAddress     *string `json:"ip_address"`
}

// SigningRequest is a signing.signing_requests row as it appears in an
// envelope (the columns consumers use; the rest stay in the raw JSON).
type SigningRequest struct {
	ID                string  `json:"id"`
	DocumentID        string  `json:"document_id"`
	Owner             *string `json:"owner"`
	CreatedBy         string  `json:"created_by"`
	State             string  `json:"state"`
	ContentSHA256     string  `json:"content_sha256"`
	DocumentVersion   *int32  `json:"document_version"`
	ExpiresAt         *string `json:"expires_at"`
	Outcome           *string `json:"outcome"`
	CertificateSHA256 *string `json:"certificate_sha256"`
	CreatedAt         *string `json:"created_at"`
	UpdatedAt         *string `json:"updated_at"`
	SentAt            *string `json:"sent_at"`
	CompletedAt       *string `json:"completed_at"`
}

// SigningRecipient is a signing.signing_recipients row as it appears in an
// envelope. Its ip_address and user_agent are never there
// (cdc.Config.ExcludeColumns).
type SigningRecipient struct {
	ID            string  `json:"id"`
	RequestID     string  `json:"request_id"`
	DocumentID    string  `json:"document_id"`
	Email         string  `json:"email"`
	Name          string  `json:"name"`
	Role          string  `json:"role"`
	SigningOrder  int     `json:"signing_order"`
	State         string  `json:"state"`
	NotifiedAt    *string `json:"notified_at"`
	ViewedAt      *string `json:"viewed_at"`
	ActedAt       *string `json:"acted_at"`
	SignatureID   *string `json:"signature_id"`
	DeclineReason *string `json:"decline_reason"`
}

// Watermark is the value on bus.TopicWatermarks: every change with an LSN
// at or below LSN has been published.
type Watermark struct {
	LSN  uint64 `json:"lsn"`
	TsMs int64  `json:"ts_ms"`
}

// TimeLayout is how timestamptz values are written: UTC, microseconds, Z.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t as the envelope does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Decode parses an envelope value. Rows stay raw; use Row to type them.
func Decode(value []byte) (Envelope, error) {
	var e Envelope
	err := json.Unmarshal(value, &e)
	return e, err
}

// Row decodes a raw row (Before or After) into v; a JSON null or empty row
// leaves v untouched and reports false.
func Row(raw json.RawMessage, v any) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}
