package change_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/change"
)

func env(op, before, after string) change.Envelope {
	e := change.Envelope{Op: op, Before: json.RawMessage("null"), After: json.RawMessage("null")}
	if before != "" {
		e.Before = json.RawMessage(before)
	}
	if after != "" {
		e.After = json.RawMessage(after)
	}
	return e
}

// One table names each change for the WebSocket and for webhooks; a
// snapshot read and a readers-only update are no event for either.
func TestTheEventNameTable(t *testing.T) {
	doc := func(status, title, readers string) string {
		return `{"id":"d1","title":"` + title + `","status":"` + status + `","created_by":"a","readers":` + readers + `}`
	}
	req := func(state string) string { return `{"id":"r1","document_id":"d1","state":"` + state + `"}` }
	rcpt := func(state string) string {
		return `{"id":"p1","request_id":"r1","document_id":"d1","state":"` + state + `"}`
	}
	cases := []struct {
		name     string
		topic    string
		e        change.Envelope
		realtime []string
		webhook  string
	}{
		{"an insert is created", "cdc.documents", env("c", "", doc("created", "T", `[]`)), []string{"document.created"}, "document.created"},
		{"a snapshot read is nothing", "cdc.documents", env("r", "", doc("created", "T", `[]`)), nil, ""},
		{"a share alone is nothing", "cdc.documents", env("u", doc("created", "T", `[]`), doc("created", "T", `["user:b"]`)), nil, ""},
		{"a title edit is updated", "cdc.documents", env("u", doc("created", "T", `[]`), doc("created", "U", `[]`)), []string{"document.updated"}, "document.updated"},
		{"signing is signed", "cdc.documents", env("u", doc("pending", "T", `[]`), doc("signed", "T", `[]`)), []string{"document.signed"}, "document.signed"},
		{"sending is a status change for webhooks", "cdc.documents", env("u", doc("created", "T", `[]`), doc("sent", "T", `[]`)), []string{"document.sent"}, "document.updated"},
		{"archiving", "cdc.documents", env("u", doc("completed", "T", `[]`), doc("archived", "T", `[]`)), []string{"document.status_changed"}, "document.updated"},
		{"signing and retitling is one signed delivery", "cdc.documents", env("u", doc("pending", "T", `[]`), doc("signed", "U", `[]`)), []string{"document.signed", "document.updated"}, "document.signed"},
		{"a delete is deleted", "cdc.documents", env("d", doc("created", "T", `[]`), ""), []string{"document.deleted"}, "document.deleted"},
		{"a signature insert", "cdc.signatures", env("c", "", `{"id":"s1","document_id":"d1","signer_email":"e","signer_name":"n"}`), []string{"signature.added"}, "signature.created"},
		{"a signature update is nothing", "cdc.signatures", env("u", `{"id":"s1","document_id":"d1"}`, `{"id":"s1","document_id":"d1"}`), nil, ""},
		{"a request created as a draft", "cdc.signing_requests", env("c", "", req("draft")), []string{"signing_request.created"}, "signing_request.created"},
		{"a request created sent", "cdc.signing_requests", env("c", "", req("sent")), []string{"signing_request.sent"}, "signing_request.sent"},
		{"a draft sent", "cdc.signing_requests", env("u", req("draft"), req("sent")), []string{"signing_request.sent"}, "signing_request.sent"},
		{"a request in progress", "cdc.signing_requests", env("u", req("sent"), req("in_progress")), []string{"signing_request.in_progress"}, "signing_request.in_progress"},
		{"a request completed", "cdc.signing_requests", env("u", req("in_progress"), req("completed")), []string{"signing_request.completed"}, "signing_request.completed"},
		{"a request declined", "cdc.signing_requests", env("u", req("in_progress"), req("declined")), []string{"signing_request.declined"}, "signing_request.declined"},
		{"a request expired", "cdc.signing_requests", env("u", req("sent"), req("expired")), []string{"signing_request.expired"}, "signing_request.expired"},
		{"a request cancelled", "cdc.signing_requests", env("u", req("sent"), req("cancelled")), []string{"signing_request.cancelled"}, "signing_request.cancelled"},
		{"a request update keeping its state is nothing", "cdc.signing_requests", env("u", req("completed"), req("completed")), nil, ""},
		{"a request snapshot read is nothing", "cdc.signing_requests", env("r", "", req("sent")), nil, ""},
		{"a recipient insert is nothing", "cdc.signing_recipients", env("c", "", rcpt("pending")), nil, ""},
		{"a recipient notified", "cdc.signing_recipients", env("u", rcpt("pending"), rcpt("notified")), []string{"recipient.notified"}, "recipient.notified"},
		{"a recipient viewed", "cdc.signing_recipients", env("u", rcpt("notified"), rcpt("viewed")), []string{"recipient.viewed"}, "recipient.viewed"},
		{"a recipient signed", "cdc.signing_recipients", env("u", rcpt("viewed"), rcpt("signed")), []string{"recipient.signed"}, "recipient.signed"},
		{"a recipient approved", "cdc.signing_recipients", env("u", rcpt("viewed"), rcpt("approved")), []string{"recipient.approved"}, "recipient.approved"},
		{"a recipient declined", "cdc.signing_recipients", env("u", rcpt("viewed"), rcpt("declined")), []string{"recipient.declined"}, "recipient.declined"},
		{"a recipient delete is nothing", "cdc.signing_recipients", env("d", rcpt("pending"), ""), nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, kinds, err := change.Kinds(c.topic, c.e)
			if err != nil || id != "d1" {
				t.Fatalf("Kinds: %q %v", id, err)
			}
			var rt []string
			for _, k := range kinds {
				rt = append(rt, k.Realtime())
			}
			if !slices.Equal(rt, c.realtime) || change.WebhookEvent(kinds) != c.webhook {
				t.Fatalf("realtime %v webhook %q, want %v %q", rt, change.WebhookEvent(kinds), c.realtime, c.webhook)
			}
		})
	}
	if got := change.WebhookEvents(); !slices.Equal(got, []string{"document.created", "document.deleted", "document.signed", "document.updated",
		"recipient.approved", "recipient.declined", "recipient.notified", "recipient.signed", "recipient.viewed",
		"signature.created", "signing_request.cancelled", "signing_request.completed", "signing_request.created", "signing_request.declined",
		"signing_request.expired", "signing_request.in_progress", "signing_request.sent"}) {
		t.Fatalf("WebhookEvents %v", got)
	}
}

// The data of a workflow change never carry a recipient's IP address or
// user agent, even from a row that has them (an engine configured without
// the exclusion), and name the state before and after.
func TestWorkflowDataIsAFixedFieldList(t *testing.T) {
	before := `{"id":"p1","request_id":"r1","document_id":"d1","email":"e@x","state":"viewed","viewed_at":"2025-01-01T00:00:00.000000Z","ip_address":"203.0.113.7","user_agent":"UA/1"}`
	after := `{"id":"p1","request_id":"r1","document_id":"d1","email":"e@x","state":"signed","acted_at":"2025-01-02T00:00:00.000000Z","ip_address":"203.0.113.7","user_agent":"UA/1"}`
	_, rc, err := change.WorkflowData("cdc.signing_recipients", env("u", before, after))
	if err != nil || rc == nil {
		t.Fatalf("%v %v", rc, err)
	}
	b, _ := json.Marshal(rc)
	if rc.OldState != "viewed" || rc.State != "signed" || rc.At == nil || *rc.At != "2025-01-02T00:00:00.000000Z" || rc.DocumentID != "d1" {
		t.Fatalf("recipient data %s", b)
	}
	for _, s := range []string{"203.0.113.7", "UA/1", "ip_address", "user_agent"} {
		if strings.Contains(string(b), s) {
			t.Errorf("recipient data %s holds %q", b, s)
		}
	}
	rq, _, err := change.WorkflowData("cdc.signing_requests", env("u", `{"id":"r1","document_id":"d1","state":"sent"}`, `{"id":"r1","document_id":"d1","state":"in_progress"}`))
	if err != nil || rq.OldState != "sent" || rq.State != "in_progress" || rq.RequestID != "r1" {
		t.Fatalf("request data %+v %v", rq, err)
	}
}
