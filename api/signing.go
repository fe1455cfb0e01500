package api

import "time"

// RequestState is a signing request's state:
// draft → sent → in_progress → completed | declined | expired | cancelled.
type RequestState string

const (
	RequestDraft      RequestState = "draft"
	RequestSent       RequestState = "sent"
	RequestInProgress RequestState = "in_progress"
	RequestCompleted  RequestState = "completed"
	RequestDeclined   RequestState = "declined"
	RequestExpired    RequestState = "expired"
	RequestCancelled  RequestState = "cancelled"
)

// RequestStates lists every request state, in workflow order.
var RequestStates = []RequestState{RequestDraft, RequestSent, RequestInProgress, RequestCompleted, RequestDeclined, RequestExpired, RequestCancelled}

// Open reports whether a request in state s still pins its document.
func (s RequestState) Open() bool {
	return s == RequestDraft || s == RequestSent || s == RequestInProgress
}

// RecipientState is a recipient's state:
// pending → notified → viewed → signed | approved | declined.
type RecipientState string

const (
	RecipientPending  RecipientState = "pending"
	RecipientNotified RecipientState = "notified"
	RecipientViewed   RecipientState = "viewed"
	RecipientSigned   RecipientState = "signed"
	RecipientApproved RecipientState = "approved"
	RecipientDeclined RecipientState = "declined"
)

// Role is what a recipient is asked to do.
type Role string

const (
	RoleSigner   Role = "signer"   // must sign
	RoleApprover Role = "approver" // must approve
	RoleViewer   Role = "viewer"   // must view
	RoleCC       Role = "cc"       // never blocks; receives the completed document and certificate
)

// RecipientInput is one recipient of POST /documents/{id}/signing-requests.
// Order groups: the same order = in parallel; a higher order is notified
// only once every lower group is done.
type RecipientInput struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	Role  Role   `json:"role"`
	Order int    `json:"order"`
}

// CreateSigningRequest is the body of POST /documents/{id}/signing-requests.
type CreateSigningRequest struct {
	Recipients []RecipientInput `json:"recipients"`
	Message    string           `json:"message,omitempty"`
	// ExpiresAt ends the request (state expired) if it is not complete by then.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// ReminderInterval (a Go duration, e.g. "24h") re-sends the invitation
	// to recipients who have not acted yet, every interval until the end.
	ReminderInterval string `json:"reminder_interval,omitempty"`
	// Draft creates the request without sending it (POST …/send later).
	Draft bool `json:"draft,omitempty"`
}

// Recipient is a recipient as the API returns it. Invitation tokens are
// never returned: they exist only in the mail (or log) that carries them.
type Recipient struct {
	ID            string         `json:"id"`
	Email         string         `json:"email"`
	Name          string         `json:"name"`
	Role          Role           `json:"role"`
	Order         int            `json:"order"`
	State         RecipientState `json:"state"`
	NotifiedAt    *time.Time     `json:"notified_at"`
	ViewedAt      *time.Time     `json:"viewed_at"`
	ActedAt       *time.Time     `json:"acted_at"`
	IPAddress     *string        `json:"ip_address"`
	UserAgent     *string        `json:"user_agent"`
	ConsentAt     *time.Time     `json:"consent_at"`
	SignatureID   *string        `json:"signature_id"`
	DeclineReason *string        `json:"decline_reason"`
}

// SigningRequest is a signing request as the API returns it.
type SigningRequest struct {
	ID               string       `json:"id"`
	DocumentID       string       `json:"document_id"`
	Owner            *string      `json:"owner"`
	CreatedBy        string       `json:"created_by"`
	State            RequestState `json:"state"`
	Message          *string      `json:"message"`
	ContentSHA256    string       `json:"content_sha256"`
	DocumentVersion  int32        `json:"document_version"`
	ExpiresAt        *time.Time   `json:"expires_at"`
	ReminderInterval *string      `json:"reminder_interval"`
	Outcome          *string      `json:"outcome"`
	// CertificateSHA256 is set once the certificate of completion is stored
	// (GET /signing-requests/{rid}/certificate).
	CertificateSHA256 *string     `json:"certificate_sha256"`
	CreatedAt         time.Time   `json:"created_at"`
	UpdatedAt         time.Time   `json:"updated_at"`
	SentAt            *time.Time  `json:"sent_at"`
	CompletedAt       *time.Time  `json:"completed_at"`
	Recipients        []Recipient `json:"recipients"`
}

// Invitation is what an invitation token shows its holder
// (GET /invitations/{token}): the request, the recipient it is for and the
// pinned document.
type Invitation struct {
	RequestID     string         `json:"request_id"`
	DocumentID    string         `json:"document_id"`
	DocumentTitle string         `json:"document_title"`
	ContentSHA256 string         `json:"content_sha256"`
	ContentType   string         `json:"content_type"`
	Message       *string        `json:"message"`
	From          string         `json:"from"`
	Recipient     Recipient      `json:"recipient"`
	RequestState  RequestState   `json:"request_state"`
	ExpiresAt     *time.Time     `json:"expires_at"`
	CanAct        bool           `json:"can_act"`
	State         RecipientState `json:"state"`
}

// InvitationAction is the body of POST /invitations/{token}/{sign|approve|decline}
// and of POST /signing-requests/{rid}/{sign|approve|decline} (a signed-in
// recipient). Consent must be true to sign or approve: the recipient agrees
// to do business electronically.
type InvitationAction struct {
	Consent       bool   `json:"consent"`
	SignatureData string `json:"signature_data,omitempty"`
	Name          string `json:"name,omitempty"`
	Reason        string `json:"reason,omitempty"` // of a decline
}
