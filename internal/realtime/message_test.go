package realtime

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// docRow is a documents row as the CDC engine writes it.
func docRow(id, title, status string, version int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"id": id, "title": title, "content_type": "text/plain", "content_size": 12,
		"s3_key": id + "/content", "status": status, "created_by": "a@example.com",
		"created_at": "2025-11-20T01:46:31.657647Z", "updated_at": "2025-11-20T01:46:31.657650Z",
		"version": version,
	})
	return b
}

func sigRow(id, docID string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"id": id, "document_id": docID, "signer_email": "s@example.com", "signer_name": "Sam Signer",
		"signed_at": "2025-11-20T01:50:00.000001Z", "signature_data": "x", "ip_address": "10.0.0.1",
	})
	return b
}

// envelopeMsg wraps rows into a bus message like the CDC engine's.
func envelopeMsg(topic, op string, before, after json.RawMessage, lsn, pos uint64) bus.Message {
	null := json.RawMessage("null")
	if before == nil {
		before = null
	}
	if after == nil {
		after = null
	}
	table := "documents"
	if topic == bus.TopicSignatures {
		table = "signatures"
	}
	env := change.Envelope{
		Before: before, After: after, Op: op, TsMs: 1763603191702, Transaction: null,
		Source: change.Source{Connector: "postgresql", Name: "cdc", TsMs: 1763603191659, Snapshot: "false",
			Schema: table, Table: table, LSN: lsn},
	}
	v, _ := json.Marshal(env)
	return bus.Message{Topic: topic, Value: v, Position: pos,
		Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(lsn, 10), bus.HeaderOp: op}}
}

func TestDecodeMapsChangesToReferenceMessages(t *testing.T) {
	const id = "0691e72f-799b-7efd-8000-e5c4e1cb7813"
	cases := []struct {
		name  string
		msg   bus.Message
		types []string
		check func(t *testing.T, data []map[string]any)
	}{
		{"an insert is document.created", envelopeMsg(bus.TopicDocuments, "c", nil, docRow(id, "T", "created", 1), 100, 1),
			[]string{TypeDocumentCreated}, func(t *testing.T, d []map[string]any) {
				if d[0]["document_id"] != id || d[0]["title"] != "T" || d[0]["status"] != "created" {
					t.Fatalf("data %v", d[0])
				}
			}},
		{"a change to signed is document.signed", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "pending", 1), docRow(id, "T", "signed", 2), 101, 2),
			[]string{TypeDocumentSigned}, func(t *testing.T, d []map[string]any) {
				if d[0]["old_status"] != "pending" || d[0]["new_status"] != "signed" || d[0]["version"] != 2.0 {
					t.Fatalf("data %v", d[0])
				}
			}},
		{"a change to viewed is document.viewed", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "sent", 1), docRow(id, "T", "viewed", 2), 102, 3),
			[]string{TypeDocumentViewed}, nil},
		{"a change to sent is document.sent", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "created", 1), docRow(id, "T", "sent", 2), 103, 4),
			[]string{TypeDocumentSent}, nil},
		{"a change to another status is document.status_changed", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "signed", 2), docRow(id, "T", "archived", 3), 104, 5),
			[]string{TypeDocumentStatusChanged}, func(t *testing.T, d []map[string]any) {
				if d[0]["old_status"] != "signed" || d[0]["new_status"] != "archived" {
					t.Fatalf("data %v", d[0])
				}
			}},
		{"a title change is document.updated", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "signed", 2), docRow(id, "T2", "signed", 3), 105, 6),
			[]string{TypeDocumentUpdated}, func(t *testing.T, d []map[string]any) {
				if d[0]["title"] != "T2" || d[0]["old_title"] != "T" {
					t.Fatalf("data %v", d[0])
				}
			}},
		{"status and title changed together give both, status first", envelopeMsg(bus.TopicDocuments, "u", docRow(id, "T", "created", 1), docRow(id, "T2", "sent", 2), 106, 7),
			[]string{TypeDocumentSent, TypeDocumentUpdated}, nil},
		{"a delete is document.deleted", envelopeMsg(bus.TopicDocuments, "d", docRow(id, "T", "signed", 2), nil, 107, 8),
			[]string{TypeDocumentDeleted}, func(t *testing.T, d []map[string]any) {
				if d[0]["document_id"] != id {
					t.Fatalf("data %v", d[0])
				}
			}},
		{"a snapshot read says nothing", envelopeMsg(bus.TopicDocuments, "r", nil, docRow(id, "T", "created", 1), 108, 9),
			nil, nil},
		{"a signature insert is signature.added", envelopeMsg(bus.TopicSignatures, "c", nil, sigRow("sig-1", id), 109, 10),
			[]string{TypeSignatureAdded}, func(t *testing.T, d []map[string]any) {
				want := map[string]any{"signature_id": "sig-1", "document_id": id, "signer_name": "Sam Signer",
					"signer_email": "s@example.com", "signed_at": "2025-11-20T01:50:00.000001Z"}
				for k, v := range want {
					if d[0][k] != v {
						t.Fatalf("%s = %v, want %v", k, d[0][k], v)
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if ev.DocumentID != id || ev.Position != tc.msg.Position {
				t.Fatalf("event %+v", ev)
			}
			if len(ev.Frames) != len(tc.types) {
				t.Fatalf("%d frames, want %v", len(ev.Frames), tc.types)
			}
			var data []map[string]any
			for i, f := range ev.Frames {
				var m struct {
					Type      string         `json:"type"`
					Data      map[string]any `json:"data"`
					Timestamp string         `json:"timestamp"`
					LSN       uint64         `json:"lsn"`
				}
				if err := json.Unmarshal(f, &m); err != nil {
					t.Fatal(err)
				}
				if m.Type != tc.types[i] {
					t.Fatalf("type %q, want %q", m.Type, tc.types[i])
				}
				if m.LSN != ev.LSN || m.LSN == 0 {
					t.Fatalf("lsn %d", m.LSN)
				}
				if _, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil {
					t.Fatalf("timestamp %q: %v", m.Timestamp, err)
				}
				data = append(data, m.Data)
			}
			if tc.check != nil {
				tc.check(t, data)
			}
		})
	}
}

func TestDecodeRefusesWhatIsNotAnEnvelope(t *testing.T) {
	ev, err := Decode(bus.Message{Topic: bus.TopicDocuments, Value: []byte("{nope"), Position: 7})
	if err == nil {
		t.Fatal("no error")
	}
	if ev.Position != 7 || len(ev.Frames) != 0 {
		t.Fatalf("event %+v: must keep the position and carry nothing", ev)
	}
}
