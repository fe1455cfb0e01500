package api

import "time"

// API key scopes: what a key may do, capped further by what its principal
// ("apikey:<id>") has been granted on each document.
const (
	ScopeRead  = "read"  // view documents, content, stats, signatures, search
	ScopeWrite = "write" // create, edit, delete and share documents
	ScopeSign  = "sign"  // sign documents
	ScopeAdmin = "admin" // an admin principal: sees everything, manages API keys
)

// CreateAPIKeyRequest is the body of POST /apikeys (admin only).
type CreateAPIKeyRequest struct {
	// Name says what the key is for ("ci-uploader"); 1–100 characters.
	Name string `json:"name"`
	// Scopes are one or more of read, write, sign, admin.
	Scopes []string `json:"scopes"`
	// ExpiresIn is an optional lifetime: a Go duration ("720h", "90m") or
	// a number of days ("90d"), at least a minute and at most 10 years.
	// Empty: the key does not expire.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// APIKey describes a key: an element of GET /apikeys. It never carries
// the secret or its hash.
type APIKey struct {
	// ID is the key id, the public part of the key ("dsk_<id>_…"): its
	// principal is "apikey:<id>", and DELETE /apikeys/{id} revokes it.
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// CreatedBy is the principal key of the admin who created it; empty
	// when created anonymously in `docstream dev`.
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	// LastUsedAt is written at most about once a minute per key.
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// CreatedAPIKey is the answer of POST /apikeys: the key's description and
// the key itself, which is shown this once and never again.
type CreatedAPIKey struct {
	APIKey
	// Key is the credential to send as "Authorization: Bearer <key>".
	Key string `json:"key"`
}

// APIKeys is the answer of GET /apikeys: every key, newest first, revoked
// ones included (with revoked_at).
type APIKeys struct {
	Keys []APIKey `json:"api_keys"`
}
