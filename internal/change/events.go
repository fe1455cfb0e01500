package change

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Topics of the change stream that events are named for. They equal
// bus.TopicDocuments, bus.TopicSignatures, bus.TopicSigningRequests and
// bus.TopicSigningRecipients (this package does not import the bus).
const (
	topicDocuments         = "cdc.documents"
	topicSignatures        = "cdc.signatures"
	topicSigningRequests   = "cdc.signing_requests"
	topicSigningRecipients = "cdc.signing_recipients"
)

// Kind is what a change is, whatever a consumer calls it. Kinds is the one
// table from a change to its names: the realtime service's message type
// (the reference's WebSocket names) and the webhook event type (the names
// a webhook endpoint subscribes to). Both services read the names from
// here, so a change is never named two ways by accident.
type Kind int

const (
	KindDocumentCreated  Kind = iota + 1 // documents insert
	KindDocumentSigned                   // documents update, status → signed
	KindDocumentSent                     // documents update, status → sent
	KindDocumentViewed                   // documents update, status → viewed
	KindStatusChanged                    // documents update, status → any other
	KindDocumentUpdated                  // documents update of the title, content or another column
	KindDocumentDeleted                  // documents delete
	KindSignatureCreated                 // signatures insert
	// A signing request reaching a state (issue 13): its insert (as a
	// draft: created; otherwise the state it starts in) or an update that
	// changes its state.
	KindRequestCreated
	KindRequestSent
	KindRequestInProgress
	KindRequestCompleted
	KindRequestDeclined
	KindRequestExpired
	KindRequestCancelled
	// A recipient reaching a state: an update that changes it. A recipient's
	// insert (pending, in the request's creating transaction) has no kind:
	// the request's event says it was created.
	KindRecipientNotified
	KindRecipientViewed
	KindRecipientSigned
	KindRecipientApproved
	KindRecipientDeclined
)

// Webhook event types (what an endpoint's "events" list names).
const (
	EventDocumentCreated  = "document.created"
	EventDocumentUpdated  = "document.updated"
	EventDocumentDeleted  = "document.deleted"
	EventDocumentSigned   = "document.signed"
	EventSignatureCreated = "signature.created"
)

// requestKinds and recipientKinds are the kinds of the states a signing
// request or a recipient reaches.
var (
	requestKinds = map[string]Kind{"draft": KindRequestCreated, "sent": KindRequestSent, "in_progress": KindRequestInProgress,
		"completed": KindRequestCompleted, "declined": KindRequestDeclined, "expired": KindRequestExpired, "cancelled": KindRequestCancelled}
	recipientKinds = map[string]Kind{"notified": KindRecipientNotified, "viewed": KindRecipientViewed, "signed": KindRecipientSigned,
		"approved": KindRecipientApproved, "declined": KindRecipientDeclined}
)

// names is the table. A status change other than to signed is a
// document.updated for webhooks: the payload carries the whole document,
// so one type per change is enough there, while the WebSocket keeps the
// reference's finer names. Snapshot reads (op r) re-read rows that exist;
// they are not changes and have no kind at all, so a re-snapshot never
// looks like a flood of document.created.
var names = map[Kind]struct{ realtime, webhook string }{
	KindDocumentCreated:  {"document.created", EventDocumentCreated},
	KindDocumentSigned:   {"document.signed", EventDocumentSigned},
	KindDocumentSent:     {"document.sent", EventDocumentUpdated},
	KindDocumentViewed:   {"document.viewed", EventDocumentUpdated},
	KindStatusChanged:    {"document.status_changed", EventDocumentUpdated},
	KindDocumentUpdated:  {"document.updated", EventDocumentUpdated},
	KindDocumentDeleted:  {"document.deleted", EventDocumentDeleted},
	KindSignatureCreated: {"signature.added", EventSignatureCreated},
	// The signing workflow has one name per state on both (api.Type…).
	KindRequestCreated:    {"signing_request.created", "signing_request.created"},
	KindRequestSent:       {"signing_request.sent", "signing_request.sent"},
	KindRequestInProgress: {"signing_request.in_progress", "signing_request.in_progress"},
	KindRequestCompleted:  {"signing_request.completed", "signing_request.completed"},
	KindRequestDeclined:   {"signing_request.declined", "signing_request.declined"},
	KindRequestExpired:    {"signing_request.expired", "signing_request.expired"},
	KindRequestCancelled:  {"signing_request.cancelled", "signing_request.cancelled"},
	KindRecipientNotified: {"recipient.notified", "recipient.notified"},
	KindRecipientViewed:   {"recipient.viewed", "recipient.viewed"},
	KindRecipientSigned:   {"recipient.signed", "recipient.signed"},
	KindRecipientApproved: {"recipient.approved", "recipient.approved"},
	KindRecipientDeclined: {"recipient.declined", "recipient.declined"},
}

// Realtime is the realtime service's message type of k.
func (k Kind) Realtime() string { return names[k].realtime }

// Webhook is the webhook event type of k.
func (k Kind) Webhook() string { return names[k].webhook }

// WebhookEvents lists every webhook event type, sorted: what an endpoint
// may subscribe to.
func WebhookEvents() []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n.webhook) {
			out = append(out, n.webhook)
		}
	}
	slices.Sort(out)
	return out
}

// StatusKind is the kind of a status change to status.
func StatusKind(status string) Kind {
	switch status {
	case "signed":
		return KindDocumentSigned
	case "sent":
		return KindDocumentSent
	case "viewed":
		return KindDocumentViewed
	}
	return KindStatusChanged
}

// Kinds classifies a change event of topic: its kinds in the order the
// realtime service sends its messages (a status change before the edit of
// the same update), and the id of the document it is about. A snapshot
// read, a readers-only update (a share: not an edit), and signature updates
// and deletes have no kind.
func Kinds(topic string, env Envelope) (docID string, kinds []Kind, err error) {
	switch topic {
	case topicDocuments:
		var before, after Document
		hasBefore, err := Row(env.Before, &before)
		if err != nil {
			return "", nil, err
		}
		hasAfter, err := Row(env.After, &after)
		if err != nil {
			return "", nil, err
		}
		switch env.Op {
		case OpCreate:
			if !hasAfter {
				return "", nil, fmt.Errorf("insert without after")
			}
			return after.ID, []Kind{KindDocumentCreated}, nil
		case OpDelete:
			if !hasBefore {
				return "", nil, fmt.Errorf("delete without before")
			}
			return before.ID, []Kind{KindDocumentDeleted}, nil
		case OpUpdate:
			if !hasAfter {
				return "", nil, fmt.Errorf("update without after")
			}
			if hasBefore && before.Status != after.Status {
				kinds = append(kinds, StatusKind(after.Status))
			}
			if !hasBefore || len(ChangedColumns(env.Before, env.After)) > 0 {
				kinds = append(kinds, KindDocumentUpdated)
			}
			return after.ID, kinds, nil
		default:
			id := after.ID
			if id == "" {
				id = before.ID
			}
			return id, nil, nil
		}
	case topicSignatures:
		var s Signature
		row := env.After
		if env.Op == OpDelete {
			row = env.Before
		}
		if _, err := Row(row, &s); err != nil {
			return "", nil, err
		}
		if env.Op != OpCreate {
			return s.DocumentID, nil, nil
		}
		return s.DocumentID, []Kind{KindSignatureCreated}, nil
	case topicSigningRequests, topicSigningRecipients:
		return workflowKinds(topic, env)
	}
	return "", nil, fmt.Errorf("unexpected topic %q", topic)
}

// workflowKinds classifies a change of a signing request or recipient: the
// kind of the state it reaches, when the change is an insert of a request
// or changes the row's state. Snapshot reads, deletes and updates that
// leave the state (a reminder, the certificate's key) have none.
func workflowKinds(topic string, env Envelope) (string, []Kind, error) {
	var before, after struct {
		DocumentID string `json:"document_id"`
		State      string `json:"state"`
	}
	hasBefore, err := Row(env.Before, &before)
	if err != nil {
		return "", nil, err
	}
	hasAfter, err := Row(env.After, &after)
	if err != nil {
		return "", nil, err
	}
	id := after.DocumentID
	if !hasAfter {
		id = before.DocumentID
	}
	table := requestKinds
	if topic == topicSigningRecipients {
		table = recipientKinds
	}
	switch {
	case env.Op == OpCreate && topic == topicSigningRequests,
		env.Op == OpUpdate && hasBefore && before.State != after.State:
		if k, ok := table[after.State]; ok {
			return id, []Kind{k}, nil
		}
	}
	return id, nil, nil
}

// WebhookEvent is the one webhook event type of a change ("" when it has
// none): an update that is both a status change and an edit is one
// delivery (the payload holds the whole document), document.signed when
// it signs.
func WebhookEvent(kinds []Kind) string {
	if len(kinds) == 0 {
		return ""
	}
	if slices.Contains(kinds, KindDocumentSigned) {
		return EventDocumentSigned
	}
	return kinds[0].Webhook()
}

// ignoredColumns change on every update and say nothing by themselves,
// or are not the document's content: a change of who may read it (owner,
// readers, access_version: a share or a revocation) is no edit, and
// naming it would tell every subscriber that access changed.
var ignoredColumns = map[string]bool{"status": true, "version": true, "updated_at": true, "owner": true, "readers": true, "access_version": true}

// ChangedColumns lists the columns (other than those that change on every
// update or only say who may read) whose JSON value differs between two
// rows, sorted, so new columns count too.
func ChangedColumns(before, after json.RawMessage) []string {
	var b, a map[string]json.RawMessage
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil || b == nil {
		return nil
	}
	changed := []string{}
	for k, av := range a {
		if ignoredColumns[k] {
			continue
		}
		if bv, ok := b[k]; !ok || string(bv) != string(av) {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}
