package api

import "time"

// Webhook event types an endpoint subscribes to (the shared event-name
// table, internal/change), and the test event POST /webhooks/{id}/test
// sends.
const (
	WebhookDocumentCreated  = "document.created"
	WebhookDocumentUpdated  = "document.updated"
	WebhookDocumentDeleted  = "document.deleted"
	WebhookDocumentSigned   = "document.signed"
	WebhookSignatureCreated = "signature.created"
	WebhookTest             = "webhook.test"
	// The signing workflow's (issue 13): the same names as its WebSocket
	// messages (TypeSigningRequest…, TypeRecipient…).
	WebhookSigningRequestCreated    = TypeSigningRequestCreated
	WebhookSigningRequestSent       = TypeSigningRequestSent
	WebhookSigningRequestInProgress = TypeSigningRequestInProgress
	WebhookSigningRequestCompleted  = TypeSigningRequestCompleted
	WebhookSigningRequestDeclined   = TypeSigningRequestDeclined
	WebhookSigningRequestExpired    = TypeSigningRequestExpired
	WebhookSigningRequestCancelled  = TypeSigningRequestCancelled
	WebhookRecipientNotified        = TypeRecipientNotified
	WebhookRecipientViewed          = TypeRecipientViewed
	WebhookRecipientSigned          = TypeRecipientSigned
	WebhookRecipientApproved        = TypeRecipientApproved
	WebhookRecipientDeclined        = TypeRecipientDeclined
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // queued or waiting for its next attempt
	DeliveryDelivered = "delivered" // the endpoint answered 2xx
	DeliveryFailed    = "failed"    // parked: a 4xx that cannot succeed, or retries ran out
	DeliverySkipped   = "skipped"   // the endpoint's owner may not view the document at delivery time
)

// CreateWebhookRequest is the body of POST /webhooks.
type CreateWebhookRequest struct {
	// URL receives a POST per event (http or https).
	URL string `json:"url"`
	// Events are the event types to receive (one or more).
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
	// DocumentID and CreatedBy, when set, narrow the events to one
	// document, or to the documents created by one created_by.
	DocumentID string `json:"document_id,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
}

// UpdateWebhookRequest is the body of PATCH /webhooks/{id}: the fields to
// change. Enabling an endpoint clears the reason it was disabled for.
type UpdateWebhookRequest struct {
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Description *string   `json:"description,omitempty"`
	DocumentID  *string   `json:"document_id,omitempty"` // "" removes the filter
	CreatedBy   *string   `json:"created_by,omitempty"`  // "" removes the filter
	Enabled     *bool     `json:"enabled,omitempty"`
}

// Webhook is an endpoint (GET /webhooks/{id}); it never carries its secret.
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	DocumentID  string   `json:"document_id,omitempty"`
	CreatedBy   string   `json:"created_by,omitempty"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why it was disabled (by its owner, or after
	// failing continuously); empty while enabled.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Owner is the principal key of who created it (empty: anonymous in
	// open mode).
	Owner string `json:"owner,omitempty"`
	// FailingSince is when the current run of failed attempts began.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// PreviousSecretUntil is when the secret replaced by the last rotation
	// stops signing.
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// CreatedWebhook is the answer of POST /webhooks and of
// POST /webhooks/{id}/rotate: the endpoint and its signing secret, shown
// this once and never again.
type CreatedWebhook struct {
	Webhook
	Secret string `json:"secret"`
}

// Webhooks is the answer of GET /webhooks: the caller's endpoints (every
// endpoint for an admin), newest first.
type Webhooks struct {
	Webhooks []Webhook `json:"webhooks"`
}

// RotateWebhookRequest is the optional body of POST /webhooks/{id}/rotate:
// how long the previous secret keeps signing beside the new one (a Go
// duration, default 24h, "0s" to stop it at once; at most 30 days).
type RotateWebhookRequest struct {
	Overlap string `json:"overlap,omitempty"`
}

// Delivery is one event queued for an endpoint, with its attempts.
type Delivery struct {
	ID string `json:"id"`
	// WebhookID is the webhook-id header: the same for every attempt,
	// redelivery and replay of the event to this endpoint.
	WebhookID     string     `json:"webhook_id"`
	Type          string     `json:"type"`
	DocumentID    string     `json:"document_id,omitempty"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	// History holds the attempts, oldest first.
	History []DeliveryAttempt `json:"history"`
}

// DeliveryAttempt is one HTTP request of a delivery.
type DeliveryAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	DurationMS int       `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	// Response is the start of the response body (at most 1 KiB).
	Response string `json:"response,omitempty"`
}

// Deliveries is the answer of GET /webhooks/{id}/deliveries, newest first.
type Deliveries struct {
	Deliveries []Delivery `json:"deliveries"`
}

// ReplayRequest is the body of POST /webhooks/{id}/replay: every event of
// the range that the endpoint subscribes to is queued again, in commit
// order, with its original webhook-id. Give a commit LSN range or a time
// range (either end may be left open, not both ends of both).
type ReplayRequest struct {
	FromLSN uint64     `json:"from_lsn,omitempty"`
	ToLSN   uint64     `json:"to_lsn,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}

// Queued is the answer of redeliver, replay and test: how many deliveries
// were queued.
type Queued struct {
	Queued int `json:"queued"`
}

// WebhookPayload is the body of every delivery.
type WebhookPayload struct {
	// Type is the event type (document.created, … , webhook.test).
	Type string `json:"type"`
	// Timestamp is when the change was committed.
	Timestamp time.Time `json:"timestamp"`
	// LSN is the commit LSN of the change's transaction: events reach an
	// endpoint in its order.
	LSN  uint64      `json:"lsn"`
	Data WebhookData `json:"data"`
}

// WebhookData is the payload's data: the document as GET
// /documents/{id} returns it (before a delete, the document as it was),
// and for signature.created the signature.
type WebhookData struct {
	Document  *Document  `json:"document,omitempty"`
	Signature *Signature `json:"signature,omitempty"`
	// SigningRequest is set on signing_request.*, Recipient on recipient.*.
	SigningRequest *SigningRequestData `json:"signing_request,omitempty"`
	Recipient      *RecipientData      `json:"recipient,omitempty"`
	// Test is set on webhook.test.
	Test *WebhookTestData `json:"test,omitempty"`
}

// WebhookTestData is the data of a webhook.test event.
type WebhookTestData struct {
	Message string `json:"message"`
}
