package api

import (
	"encoding/json"
	"time"
)

// Message types of the WebSocket stream (the reference's names).
const (
	TypeDocumentCreated       = "document.created"
	TypeDocumentStatusChanged = "document.status_changed"
	TypeDocumentSigned        = "document.signed"
	TypeDocumentViewed        = "document.viewed"
	TypeDocumentSent          = "document.sent"
	TypeDocumentUpdated       = "document.updated"
	TypeDocumentDeleted       = "document.deleted"
	TypeSignatureAdded        = "signature.added"
)

// Message types of the signing workflow (issue 13): one per state a signing
// request or a recipient reaches, in commit order. Webhook event types
// carry the same names.
const (
	TypeSigningRequestCreated    = "signing_request.created" // created as a draft
	TypeSigningRequestSent       = "signing_request.sent"
	TypeSigningRequestInProgress = "signing_request.in_progress"
	TypeSigningRequestCompleted  = "signing_request.completed"
	TypeSigningRequestDeclined   = "signing_request.declined"
	TypeSigningRequestExpired    = "signing_request.expired"
	TypeSigningRequestCancelled  = "signing_request.cancelled"
	TypeRecipientNotified        = "recipient.notified"
	TypeRecipientViewed          = "recipient.viewed"
	TypeRecipientSigned          = "recipient.signed"
	TypeRecipientApproved        = "recipient.approved"
	TypeRecipientDeclined        = "recipient.declined"
)

// Message is one message of WS /ws/{document_id}. LSN is the cursor of the
// change it comes from (the commit LSN of its transaction): reconnecting
// with ?since=<lsn> of the last message handled resumes after it.
//
// Data holds, by Type: DocumentData (document.created, document.deleted),
// StatusData (document.status_changed, .signed, .viewed, .sent),
// UpdatedData (document.updated), SignatureData (signature.added),
// SigningRequestData (signing_request.*), RecipientData (recipient.*). A
// decoded Message of another type keeps its data as json.RawMessage.
type Message struct {
	Type      string `json:"type"`
	Data      any    `json:"data"`
	Timestamp string `json:"timestamp"`
	LSN       uint64 `json:"lsn"`
}

// UnmarshalJSON decodes Data into the type its Type names.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type      string          `json:"type"`
		Data      json.RawMessage `json:"data"`
		Timestamp string          `json:"timestamp"`
		LSN       uint64          `json:"lsn"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Message{Type: raw.Type, Timestamp: raw.Timestamp, LSN: raw.LSN, Data: raw.Data}
	var err error
	switch raw.Type {
	case TypeDocumentCreated, TypeDocumentDeleted:
		m.Data, err = decodeData[DocumentData](raw.Data)
	case TypeDocumentStatusChanged, TypeDocumentSigned, TypeDocumentViewed, TypeDocumentSent:
		m.Data, err = decodeData[StatusData](raw.Data)
	case TypeDocumentUpdated:
		m.Data, err = decodeData[UpdatedData](raw.Data)
	case TypeSignatureAdded:
		m.Data, err = decodeData[SignatureData](raw.Data)
	case TypeSigningRequestCreated, TypeSigningRequestSent, TypeSigningRequestInProgress, TypeSigningRequestCompleted,
		TypeSigningRequestDeclined, TypeSigningRequestExpired, TypeSigningRequestCancelled:
		m.Data, err = decodeData[SigningRequestData](raw.Data)
	case TypeRecipientNotified, TypeRecipientViewed, TypeRecipientSigned, TypeRecipientApproved, TypeRecipientDeclined:
		m.Data, err = decodeData[RecipientData](raw.Data)
	}
	return err
}

func decodeData[T any](raw json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// DocumentData is the data of document.created and document.deleted.
type DocumentData struct {
	DocumentID  string  `json:"document_id"`
	Title       string  `json:"title"`
	Status      string  `json:"status"`
	CreatedBy   string  `json:"created_by"`
	ContentType *string `json:"content_type"`
	ContentSize *int64  `json:"content_size"`
	Version     *int32  `json:"version"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
}

// StatusData is the data of a status change (document.status_changed and
// the status-specific types).
type StatusData struct {
	DocumentID string  `json:"document_id"`
	Title      string  `json:"title"`
	OldStatus  string  `json:"old_status"`
	NewStatus  string  `json:"new_status"`
	Version    *int32  `json:"version"`
	UpdatedAt  *string `json:"updated_at"`
}

// UpdatedData is the data of document.updated.
type UpdatedData struct {
	DocumentID string  `json:"document_id"`
	Title      string  `json:"title"`
	OldTitle   string  `json:"old_title"`
	Version    *int32  `json:"version"`
	UpdatedAt  *string `json:"updated_at"`
	// Changed names the columns that changed besides status, version and
	// updated_at (e.g. ["title"], ["content_size","s3_key"],
	// ["signing_status"] when a signing request moved).
	Changed []string `json:"changed"`
	// SigningStatus is the state of the document's newest signing request
	// after the change; absent when it never had one.
	SigningStatus string `json:"signing_status,omitempty"`
}

// SignatureData is the data of signature.added.
type SignatureData struct {
	SignatureID string  `json:"signature_id"`
	DocumentID  string  `json:"document_id"`
	SignerName  string  `json:"signer_name"`
	SignerEmail string  `json:"signer_email"`
	SignedAt    *string `json:"signed_at"`
}

// SigningRequestData is the data of signing_request.* (WebSocket message
// and webhook event): the request as it is after the transition.
type SigningRequestData struct {
	RequestID     string  `json:"request_id"`
	DocumentID    string  `json:"document_id"`
	OldState      string  `json:"old_state"` // "" when the request was created
	State         string  `json:"state"`
	CreatedBy     string  `json:"created_by"`
	ContentSHA256 string  `json:"content_sha256"`
	Outcome       *string `json:"outcome"`
	ExpiresAt     *string `json:"expires_at"`
	UpdatedAt     *string `json:"updated_at"`
}

// RecipientData is the data of recipient.* (WebSocket message and webhook
// event). It never holds the recipient's IP address or user agent (the
// audit trail does, for the owner and admins).
type RecipientData struct {
	RecipientID string `json:"recipient_id"`
	RequestID   string `json:"request_id"`
	DocumentID  string `json:"document_id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	Order       int    `json:"order"`
	OldState    string `json:"old_state"`
	State       string `json:"state"`
	// At is when the recipient reached State (notified_at, viewed_at or
	// acted_at).
	At            *string `json:"at"`
	DeclineReason *string `json:"decline_reason"`
}

// Token is GET /auth/token's answer (development only): a JWT naming any
// user, sent as a bearer token to every service.
type Token struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	UserID      string    `json:"user_id"` // the subject
	Email       string    `json:"email"`
	ExpiresAt   time.Time `json:"expires_at"`
	Name        string    `json:"name,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Admin       bool      `json:"admin,omitempty"`
}

// RealtimeStats is the realtime service's GET /stats.
type RealtimeStats struct {
	TotalConnections         int            `json:"total_connections"`
	DocumentsWithSubscribers int            `json:"documents_with_subscribers"`
	Replaying                int            `json:"replaying"`
	Documents                map[string]int `json:"documents,omitempty"`
	// ListSubscribers are the connections to the list feed (WS /ws),
	// counted in TotalConnections too.
	ListSubscribers int `json:"list_subscribers,omitempty"`
	// Consumer is the one live subscription over both topics.
	Consumer ConsumerStats `json:"consumer"`
}

// ConsumerStats is the state of the realtime service's live consumer.
type ConsumerStats struct {
	// Topics are what the one subscription covers (cdc.documents and
	// cdc.signatures), delivered in commit order across them.
	Topics        []string          `json:"topics"`
	State         string            `json:"state"` // idle (not started), running, retrying, stopped
	Position      uint64            `json:"position"`
	LSN           uint64            `json:"lsn"`
	Events        uint64            `json:"events"`
	EventsByTopic map[string]uint64 `json:"events_by_topic"`
	LastEventAt   *time.Time        `json:"last_event_at,omitempty"`
	Error         string            `json:"error,omitempty"`
}
