package realtime

import (
	"encoding/json"
	"fmt"
	"slices"
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
)

// statusTypes are the statuses whose change has a type of its own; any
// other status change is document.status_changed.
var statusTypes = map[string]string{
	"signed": TypeDocumentSigned,
	"viewed": TypeDocumentViewed,
	"sent":   TypeDocumentSent,
}

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
// document they are about:
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
//
// Snapshot reads (op r) are not changes and yield nothing, as do signature
// updates and deletes.
func Map(topic string, env change.Envelope) (string, []Message, error) {
	ts := change.FormatTime(time.UnixMilli(env.Source.TsMs))
	switch topic {
	case bus.TopicDocuments:
		var before, after change.Document
		hasBefore, err := change.Row(env.Before, &before)
		if err != nil {
			return "", nil, err
		}
		hasAfter, err := change.Row(env.After, &after)
		if err != nil {
			return "", nil, err
		}
		switch env.Op {
		case change.OpCreate:
			if !hasAfter {
				return "", nil, fmt.Errorf("insert without after")
			}
			return after.ID, []Message{{Type: TypeDocumentCreated, Data: documentData(after), Timestamp: ts}}, nil
		case change.OpDelete:
			if !hasBefore {
				return "", nil, fmt.Errorf("delete without before")
			}
			return before.ID, []Message{{Type: TypeDocumentDeleted, Data: documentData(before), Timestamp: ts}}, nil
		case change.OpUpdate:
			if !hasAfter {
				return "", nil, fmt.Errorf("update without after")
			}
			var out []Message
			if hasBefore && before.Status != after.Status {
				typ, ok := statusTypes[after.Status]
				if !ok {
					typ = TypeDocumentStatusChanged
				}
				out = append(out, Message{Type: typ, Timestamp: ts, Data: StatusData{
					DocumentID: after.ID, Title: after.Title, OldStatus: before.Status, NewStatus: after.Status,
					Version: after.Version, UpdatedAt: after.UpdatedAt,
				}})
			}
			changed := changedColumns(env.Before, env.After)
			if !hasBefore || len(changed) > 0 {
				old := after.Title
				if hasBefore {
					old = before.Title
				}
				out = append(out, Message{Type: TypeDocumentUpdated, Timestamp: ts, Data: UpdatedData{
					DocumentID: after.ID, Title: after.Title, OldTitle: old,
					Version: after.Version, UpdatedAt: after.UpdatedAt, Changed: changed,
				}})
			}
			return after.ID, out, nil
		default:
			id := after.ID
			if id == "" {
				id = before.ID
			}
			return id, nil, nil
		}
	case bus.TopicSignatures:
		var s change.Signature
		row := env.After
		if env.Op == change.OpDelete {
			row = env.Before
		}
		if _, err := change.Row(row, &s); err != nil {
			return "", nil, err
		}
		if env.Op != change.OpCreate {
			return s.DocumentID, nil, nil
		}
		return s.DocumentID, []Message{{Type: TypeSignatureAdded, Timestamp: ts, Data: SignatureData{
			SignatureID: s.ID, DocumentID: s.DocumentID, SignerName: s.SignerName,
			SignerEmail: s.SignerEmail, SignedAt: s.SignedAt,
		}}}, nil
	default:
		return "", nil, fmt.Errorf("unexpected topic %q", topic)
	}
}

func documentData(d change.Document) DocumentData {
	return DocumentData{
		DocumentID: d.ID, Title: d.Title, Status: d.Status, CreatedBy: d.CreatedBy,
		ContentType: d.ContentType, ContentSize: d.ContentSize, Version: d.Version,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

// ignoredColumns change on every update and say nothing by themselves,
// or are not the document's content: a change of who may read it (owner,
// readers, access_version: a share or a revocation) is no edit, and
// naming it would tell every subscriber that access changed.
var ignoredColumns = map[string]bool{"status": true, "version": true, "updated_at": true, "owner": true, "readers": true, "access_version": true}

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

// changedColumns lists the columns (other than ignoredColumns) whose JSON
// value differs between two rows, sorted, so new columns count too.
func changedColumns(before, after json.RawMessage) []string {
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
