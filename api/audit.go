package api

import "encoding/json"

// The audit trail's wire types (internal/audit writes and verifies them;
// the client and `docstream verify` read them).

// AuditEntry is one entry of a document's hash-chained audit trail. Hash
// is the hex SHA-256 of the RFC 8785 canonical JSON of every other field
// plus "v": 1; PrevHash is the previous entry's Hash (64 zeros for seq 1).
type AuditEntry struct {
	DocumentID string          `json:"document_id"`
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	Actor      string          `json:"actor"`
	At         string          `json:"at"` // RFC 3339, UTC, microseconds
	IP         string          `json:"ip"`
	UserAgent  string          `json:"user_agent"`
	Data       json.RawMessage `json:"data"` // canonical JSON
	PrevHash   string          `json:"prev_hash"`
	KeyID      string          `json:"key_id"`
	Hash       string          `json:"hash"`
}

// AuditCheckpoint is a signed statement of a trail's head: entry Seq is the
// newest and its hash is Hash. Signature is the Ed25519 signature (standard
// base64) of the RFC 8785 form of the other fields plus "v": 1 and
// "purpose": "docstream-audit-checkpoint"; empty when unsigned.
type AuditCheckpoint struct {
	DocumentID string `json:"document_id"`
	Seq        int64  `json:"seq"`
	Hash       string `json:"hash"`
	KeyID      string `json:"key_id"`
	SignedAt   string `json:"signed_at"`
	Signature  string `json:"signature"`
}

// AuditLog is GET /documents/{id}/audit: the whole trail, its signed head
// (nil: none) and its sealed checkpoints. It is also the file
// `docstream verify --file` reads.
type AuditLog struct {
	DocumentID  string            `json:"document_id"`
	Entries     []*AuditEntry     `json:"entries"`
	Head        *AuditCheckpoint  `json:"head"`
	Checkpoints []AuditCheckpoint `json:"checkpoints"`
}

// AuditBroken names the first entry verification failed at.
type AuditBroken struct {
	Seq    int64  `json:"seq"`
	Type   string `json:"type,omitempty"`
	At     string `json:"at,omitempty"`
	Reason string `json:"reason"`
}

// AuditVerification is GET /documents/{id}/audit/verify.
type AuditVerification struct {
	Valid       bool         `json:"valid"`
	DocumentID  string       `json:"document_id"`
	FirstBroken *AuditBroken `json:"first_broken,omitempty"`
	Reason      string       `json:"reason"`
	Entries     int          `json:"entries"`
	// Head is the signed head as verified (nil: none).
	Head *AuditCheckpoint `json:"head,omitempty"`
	// Signed: the head's signature was checked against a published key.
	Signed bool `json:"signed"`
	// HistoryUnknownBefore is the time of the genesis entry of a trail
	// that began after its document ("" when it began with it).
	HistoryUnknownBefore string   `json:"history_unknown_before,omitempty"`
	Notes                []string `json:"notes,omitempty"`
}

// AuditKey is one public key of GET /.well-known/docstream-audit-keys.
type AuditKey struct {
	KeyID     string `json:"key_id"`     // first 16 hex digits of SHA-256(raw public key)
	Algorithm string `json:"algorithm"`  // "Ed25519"
	PublicKey string `json:"public_key"` // the raw 32 bytes, standard base64
}

// AuditKeySet is GET /.well-known/docstream-audit-keys.
type AuditKeySet struct {
	Keys []AuditKey `json:"keys"`
}
