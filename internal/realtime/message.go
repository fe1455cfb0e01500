package realtime

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// Message types sent to clients: the reference's names.
const (
	TypeDocumentCreated       = api.TypeDocumentCreated
	TypeDocumentStatusChanged = api.TypeDocumentStatusChanged
	TypeDocumentSigned        = api.TypeDocumentSigned
	TypeDocumentViewed        = api.TypeDocumentViewed
	TypeDocumentSent          = api.TypeDocumentSent
	TypeDocumentUpdated       = api.TypeDocumentUpdated
	TypeDocumentDeleted       = api.TypeDocumentDeleted
	TypeSignatureAdded        = api.TypeSignatureAdded
	// The signing workflow's (signing_request.<state>, recipient.<state>).
	TypeSigningRequestCreated = api.TypeSigningRequestCreated
	TypeSigningRequestSent    = api.TypeSigningRequestSent
)

// Message is one server-to-client message. LSN is the cursor of the change
// it comes from, the commit LSN of its transaction (bus.Cursor): a client
// that reconnects with ?since=<lsn> of the last message it handled gets
// every change of the transactions committed after it. (Changes of one
// transaction share the cursor; a client cut off in the middle of one
// transaction's messages for its document misses the rest of them.)
type Message = api.Message

// The data of each message type.
type (
	DocumentData  = api.DocumentData  // document.created, document.deleted
	StatusData    = api.StatusData    // document.status_changed and the status-specific types
	UpdatedData   = api.UpdatedData   // document.updated
	SignatureData = api.SignatureData // signature.added
	// SigningRequestData and RecipientData: signing_request.*, recipient.*
	SigningRequestData = api.SigningRequestData
	RecipientData      = api.RecipientData
)

// Event is one change event turned into client messages, encoded once and
// shared by every subscriber.
type Event struct {
	Topic      string
	DocumentID string
	Position   uint64 // bus position: orders the topic
	LSN        uint64
	Frames     [][]byte // encoded Messages, in order; may be empty
	// Readers are the document's readers after the change (before it, for
	// a delete), when the event carries them (HasReaders): what live
	// revocation and replay filtering judge by (access.go).
	Readers    []string
	HasReaders bool
}

// Decode turns a bus message into an Event. A change that clients are not
// told about (snapshot reads, signature updates) yields an Event with no
// frames, which still moves the cursor. A message that is not a change event
// is an error.
func Decode(m bus.Message) (Event, error) {
	// On error the Event still names its topic and position, so a consumer
	// can skip it and keep its cursor.
	ev := Event{Topic: m.Topic, Position: m.Position}
	env, err := change.Decode(m.Value)
	if err != nil {
		return ev, fmt.Errorf("realtime: decode %s@%d: %w", m.Topic, m.Position, err)
	}
	// The client's cursor is the commit-order position (bus.Cursor), so a
	// reconnect with ?since= resumes exactly after the last transaction it
	// saw even when transactions interleave.
	ev.LSN = bus.Cursor(m)
	if ev.LSN == 0 {
		ev.LSN = env.Source.LSN
	}
	docID, msgs, err := Map(m.Topic, env)
	if err != nil {
		return ev, fmt.Errorf("realtime: map %s@%d: %w", m.Topic, m.Position, err)
	}
	ev.DocumentID = docID
	ev.Readers, ev.HasReaders = readersOf(m.Topic, env)
	for _, msg := range msgs {
		msg.LSN = ev.LSN
		b, err := json.Marshal(msg)
		if err != nil {
			return Event{Topic: m.Topic, Position: m.Position}, err
		}
		ev.Frames = append(ev.Frames, b)
	}
	return ev, nil
}

// Map turns a change envelope into the messages clients see and the
// document they are about. Which messages a change makes, and their types,
// is the shared event-name table (change.Kinds):
//
//   - documents insert → document.created
//   - documents update with a new status → document.signed, .viewed or .sent
//     for those statuses, else document.status_changed (old_status,
//     new_status, version)
//   - documents update changing any other column (the title, the content)
//     → document.updated; an update changing both status and title yields
//     both messages, status first
//   - documents delete → document.deleted
//   - signatures insert → signature.added
//   - signing_requests insert or state change → signing_request.<state>
//     (created for a draft), SigningRequestData
//   - signing_recipients state change → recipient.<state>, RecipientData
//
// Snapshot reads (op r) are not changes and yield nothing, as do signature
// updates and deletes.
func Map(topic string, env change.Envelope) (string, []Message, error) {
	ts := change.FormatTime(time.UnixMilli(env.Source.TsMs))
	id, kinds, err := change.Kinds(topic, env)
	if err != nil || len(kinds) == 0 {
		return id, nil, err
	}
	var before, after change.Document
	var sig change.Signature
	var req *api.SigningRequestData
	var rcpt *api.RecipientData
	switch topic {
	case bus.TopicDocuments:
		_, _ = change.Row(env.Before, &before)
		_, _ = change.Row(env.After, &after)
	case bus.TopicSigningRequests, bus.TopicSigningRecipients:
		if req, rcpt, err = change.WorkflowData(topic, env); err != nil {
			return "", nil, err
		}
	default:
		if _, err := change.Row(env.After, &sig); err != nil {
			return "", nil, err
		}
	}
	var out []Message
	for _, k := range kinds {
		m := Message{Type: k.Realtime(), Timestamp: ts}
		switch k {
		case change.KindDocumentCreated:
			m.Data = documentData(after)
		case change.KindDocumentDeleted:
			m.Data = documentData(before)
		case change.KindDocumentSigned, change.KindDocumentSent, change.KindDocumentViewed, change.KindStatusChanged:
			m.Data = StatusData{DocumentID: after.ID, Title: after.Title, OldStatus: before.Status, NewStatus: after.Status,
				Version: after.Version, UpdatedAt: after.UpdatedAt}
		case change.KindDocumentUpdated:
			old := after.Title
			if len(env.Before) > 0 && string(env.Before) != "null" {
				old = before.Title
			}
			u := UpdatedData{DocumentID: after.ID, Title: after.Title, OldTitle: old,
				Version: after.Version, UpdatedAt: after.UpdatedAt, Changed: changedColumns(env.Before, env.After)}
			if after.SigningStatus != nil {
				u.SigningStatus = *after.SigningStatus
			}
			m.Data = u
		case change.KindSignatureCreated:
			m.Data = SignatureData{SignatureID: sig.ID, DocumentID: sig.DocumentID, SignerName: sig.SignerName,
				SignerEmail: sig.SignerEmail, SignedAt: sig.SignedAt}
		default:
			// The signing workflow's kinds (signing_request.*, recipient.*).
			if req != nil {
				m.Data = *req
			} else if rcpt != nil {
				m.Data = *rcpt
			}
		}
		out = append(out, m)
	}
	return id, out, nil
}

func documentData(d change.Document) DocumentData {
	return DocumentData{
		DocumentID: d.ID, Title: d.Title, Status: d.Status, CreatedBy: d.CreatedBy,
		ContentType: d.ContentType, ContentSize: d.ContentSize, Version: d.Version,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

// readersOf returns the readers of the row a documents event leaves (the
// row before a delete), and whether the row carries them at all (rows
// captured before access control, and other topics, do not).
func readersOf(topic string, env change.Envelope) ([]string, bool) {
	if topic != bus.TopicDocuments {
		return nil, false
	}
	raw := env.After
	if env.Op == change.OpDelete {
		raw = env.Before
	}
	var row struct {
		Readers *[]string `json:"readers"`
	}
	if ok, err := change.Row(raw, &row); !ok || err != nil || row.Readers == nil {
		return nil, false
	}
	return *row.Readers, true
}

// changedColumns is change.ChangedColumns: what document.updated names.
func changedColumns(before, after json.RawMessage) []string {
	return change.ChangedColumns(before, after)
}
