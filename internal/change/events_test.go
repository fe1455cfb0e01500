package change_test

import (
	"encoding/json"
	"slices"
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
	if got := change.WebhookEvents(); !slices.Equal(got, []string{"document.created", "document.deleted", "document.signed", "document.updated", "signature.created"}) {
		t.Fatalf("WebhookEvents %v", got)
	}
}
