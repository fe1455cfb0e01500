package webhooks_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client/webhook"
	"github.com/docstream/docstream/internal/testenv"
)

// pythonVerifier is an independent implementation of the Standard
// Webhooks signature check (Python's hmac, hashlib and base64, not our
// code), run by the Debian python3.
const pythonVerifier = `
import base64, hashlib, hmac, sys
secret, msg_id, ts, sigs = sys.argv[1:5]
body = sys.stdin.buffer.read()
key = base64.b64decode(secret[len("whsec_"):])
want = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256).digest()).decode()
ok = any(s.split(",", 1) == ["v1", want] for s in sigs.split(" "))
print("valid" if ok else "invalid")
`

func verifyWithPython(t *testing.T, secret string, h hit) bool {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", pythonVerifier, secret, h.ID, h.Timestamp, h.Signature)
	cmd.Stdin = strings.NewReader(string(h.Body))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python verifier: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out)) == "valid"
}

// A document's life reaches the endpoint as document.created,
// document.signed and document.deleted, in commit order, each signed so
// that an independent implementation of the specification (Python) and
// the client's webhook.Verify accept it, and a wrong secret does not;
// the payload carries the document as the API returns it and the commit
// LSN. A change of readers alone (a share) is no event.
func TestDeliveriesAreSignedPerTheSpecificationAndInCommitOrder(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated, api.WebhookDocumentSigned, api.WebhookDocumentDeleted, api.WebhookDocumentUpdated})
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("secret %q: want whsec_…", ep.Secret)
	}

	id := e.insert(t, "Contract")
	e.Exec(t, `UPDATE documents.documents SET readers = array['user:x'] WHERE id = $1`, id)
	e.Exec(t, `UPDATE documents.documents SET status = 'signed', version = version + 1 WHERE id = $1`, id)
	e.Exec(t, `DELETE FROM documents.documents WHERE id = $1`, id)

	testenv.WaitFor(t, "three deliveries", func() bool { return len(rc.accepted()) >= 3 })
	hs := rc.accepted()
	if len(hs) != 3 {
		t.Fatalf("got %d deliveries, want 3 (a share is no event)", len(hs))
	}
	var types []string
	for i, h := range hs {
		types = append(types, h.Payload.Type)
		if !verifyWithPython(t, ep.Secret, h) {
			t.Errorf("delivery %d: the independent verifier refused signature %q", i, h.Signature)
		}
		if err := webhook.Verify(ep.Secret, h.Header, h.Body); err != nil {
			t.Errorf("delivery %d: webhook.Verify: %v", i, err)
		}
		if d := h.Payload.Data.Document; d == nil || d.ID != id || d.Title != "Contract" || d.CreatedBy != "john.doe@company.com" {
			t.Errorf("delivery %d: document %+v", i, h.Payload.Data.Document)
		}
		if h.Payload.LSN == 0 || i > 0 && h.Payload.LSN <= hs[i-1].Payload.LSN {
			t.Errorf("delivery %d: lsn %d after %d: want increasing commit LSNs", i, h.Payload.LSN, hs[max(i-1, 0)].Payload.LSN)
		}
		if h.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(h.ID, "msg_") {
			t.Errorf("delivery %d: content type %q, id %q", i, h.Header.Get("Content-Type"), h.ID)
		}
	}
	if want := []string{"document.created", "document.signed", "document.deleted"}; !slices.Equal(types, want) {
		t.Fatalf("types %v, want %v", types, want)
	}
	if hs[1].Payload.Data.Document.Status != api.StatusSigned {
		t.Errorf("document.signed carries status %q", hs[1].Payload.Data.Document.Status)
	}
	other := "whsec_" + strings.Repeat("A", 43) + "="
	if verifyWithPython(t, other, hs[0]) || webhook.Verify(other, hs[0].Header, hs[0].Body) == nil {
		t.Error("a signature verified with the wrong secret")
	}
	tampered := hs[0]
	tampered.Body = append([]byte(nil), hs[0].Body...)
	tampered.Body[len(tampered.Body)-2] ^= 1
	if verifyWithPython(t, ep.Secret, tampered) || webhook.Verify(ep.Secret, tampered.Header, tampered.Body) == nil {
		t.Error("a tampered body verified")
	}

	// The secret is shown once: never in a read.
	resp := testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID, nil, nil)
	if b := readBody(resp); resp.StatusCode != 200 || strings.Contains(b, ep.Secret) || strings.Contains(b, "secret\"") {
		t.Errorf("GET /webhooks/{id}: %d %s", resp.StatusCode, b)
	}
}

// An endpoint answering 500 twice then 200 gets the event three times
// with one webhook-id, and the deliveries list shows the three attempts
// and the delivery as delivered.
func TestRetriesKeepTheWebhookIDAndStopAtTheFirstSuccess(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, func(n int, _ hit) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	e.insert(t, "Retried")
	testenv.WaitFor(t, "a successful delivery", func() bool { return len(rc.accepted()) == 1 })
	var ds api.Deliveries
	testenv.WaitFor(t, "the delivery recorded as delivered", func() bool {
		testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID+"/deliveries", nil, &ds)
		return len(ds.Deliveries) == 1 && ds.Deliveries[0].Status == api.DeliveryDelivered
	})
	hs := rc.all()
	if len(hs) != 3 {
		t.Fatalf("got %d requests, want 3", len(hs))
	}
	for _, h := range hs {
		if h.ID != hs[0].ID {
			t.Fatalf("webhook-id changed across retries: %q then %q", hs[0].ID, h.ID)
		}
	}
	d := ds.Deliveries[0]
	if d.WebhookID != hs[0].ID || d.Attempts != 3 || len(d.History) != 3 || d.History[0].StatusCode != 500 || d.History[2].StatusCode != 200 {
		t.Fatalf("delivery %+v", d)
	}
	if d.History[2].Response != "ok" {
		t.Errorf("response snippet %q", d.History[2].Response)
	}
}

// A receiver that is down (503, then refusing connections) for a while
// gets every event after it comes back, in commit order, once each
// accepted.
func TestAReceiverDownForAWhileGetsEverythingInOrder(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	var up atomicBool
	rc := newReceiver(t, func(int, hit) int {
		if !up.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var want []string
	for i := range 20 {
		want = append(want, e.insert(t, fmt.Sprintf("doc %d", i)))
	}
	testenv.WaitFor(t, "failed attempts while the receiver is down", func() bool { return len(rc.all()) >= 3 })
	// The queue is held at its head: no later event was tried.
	for _, h := range rc.all() {
		if h.Payload.Data.Document.ID != want[0] {
			t.Fatalf("while the head fails, event of %s was tried", h.Payload.Data.Document.ID)
		}
	}
	var w api.Webhook
	testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID, nil, &w)
	if w.FailingSince == nil || !w.Enabled {
		t.Errorf("endpoint while failing: %+v", w)
	}
	up.Store(true)
	testenv.WaitFor(t, "all 20 events", func() bool { return len(rc.accepted()) >= 20 })
	if got := docIDs(rc.accepted()); !slices.Equal(got, want) {
		t.Fatalf("accepted %v\nwant     %v", got, want)
	}
	// The last success is recorded a moment after the receiver answered.
	testenv.WaitFor(t, "failing_since cleared by the successes", func() bool {
		var now api.Webhook
		testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID, nil, &now)
		return now.FailingSince == nil
	})
}

// A 4xx that a retry cannot change parks the delivery as failed at once,
// and the endpoint's queue moves on to the next event.
func TestANonRetriableAnswerParksTheDeliveryAndTheQueueMovesOn(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, func(n int, _ hit) int {
		if n == 0 {
			return http.StatusGone
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	a := e.insert(t, "refused")
	b := e.insert(t, "accepted")
	testenv.WaitFor(t, "the second event", func() bool { return len(rc.accepted()) == 1 })
	if got := docIDs(rc.all()); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("requests for %v, want one each for %v", got, []string{a, b})
	}
	var ds api.Deliveries
	testenv.WaitFor(t, "both deliveries finished", func() bool {
		testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID+"/deliveries?status=failed", nil, &ds)
		return len(ds.Deliveries) == 1
	})
	if d := ds.Deliveries[0]; d.Attempts != 1 || d.LastStatus != 410 || d.DocumentID != a {
		t.Fatalf("parked delivery %+v", d)
	}
	// Redelivering it sends it again with the same webhook-id.
	first := rc.all()[0].ID
	testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/deliveries/"+ds.Deliveries[0].ID+"/redeliver", nil, nil)
	testenv.WaitFor(t, "the redelivery", func() bool { return len(rc.accepted()) == 2 })
	if got := rc.accepted()[1].ID; got != first {
		t.Fatalf("redelivery id %q, want %q", got, first)
	}
}

// signature.created carries the signature as the API returns it, and an
// endpoint's created_by filter keeps only the events of documents with
// that creator (for a signature: its document's).
func TestSignatureEventsAndTheCreatedByFilter(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	john, other := newReceiver(t, nil), newReceiver(t, nil)
	for _, c := range []struct {
		rc *receiver
		by string
	}{{john, "john.doe@company.com"}, {other, "other@company.com"}} {
		resp := testenv.Do(t, "POST", tg.api+"/webhooks", api.CreateWebhookRequest{URL: c.rc.URL, Events: []string{api.WebhookSignatureCreated}, CreatedBy: c.by}, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.StatusCode, readBody(resp))
		}
	}
	johns := e.insert(t, "John's")
	var others string
	if err := e.Pool.QueryRow(t.Context(), `INSERT INTO documents.documents (id, title, status, created_by) VALUES (gen_random_uuid(), 'Other''s', 'created', 'other@company.com') RETURNING id::text`).Scan(&others); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{johns, others} {
		e.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES (gen_random_uuid(), $1::uuid, 'signer@client.com', 'Signer')`, doc)
	}
	testenv.WaitFor(t, "one signature at each endpoint", func() bool { return len(john.accepted()) == 1 && len(other.accepted()) == 1 })
	for _, c := range []struct {
		rc  *receiver
		doc string
	}{{john, johns}, {other, others}} {
		p := c.rc.accepted()[0].Payload
		if p.Type != api.WebhookSignatureCreated || p.Data.Signature == nil || p.Data.Signature.DocumentID != c.doc || p.Data.Signature.SignerEmail != "signer@client.com" {
			t.Fatalf("payload %+v", p)
		}
	}
}

// The signing workflow's transitions are webhook events an endpoint
// subscribes to by name: signing_request.sent and recipient.signed reach an
// endpoint that asked for them, in commit order, with the request or
// recipient as data and never a recipient's IP address or user agent;
// transitions it did not ask for (recipient.viewed) do not.
func TestSigningWorkflowEventsAreDelivered(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	tg.createEndpoint(t, rc.URL, []string{api.WebhookSigningRequestSent, api.WebhookRecipientSigned, api.WebhookSigningRequestCompleted})
	doc := e.insert(t, "Contract")
	rid, pid := uuid.NewString(), uuid.NewString()
	e.Exec(t, `INSERT INTO signing.signing_requests (id, document_id, created_by, state, content_sha256, content_key, document_version)
		VALUES ($1, $2::uuid, 'owner@company.com', 'draft', $3, 'k', 1)`, rid, doc, strings.Repeat("d", 64))
	e.Exec(t, `INSERT INTO signing.signing_recipients (id, request_id, document_id, email, name, role, signing_order)
		VALUES ($1, $2, $3::uuid, 'signer@client.com', 'Signer', 'signer', 1)`, pid, rid, doc)
	e.Exec(t, `UPDATE signing.signing_requests SET state = 'sent' WHERE id = $1`, rid)
	e.Exec(t, `UPDATE signing.signing_recipients SET state = 'viewed', viewed_at = now(), ip_address = '203.0.113.9', user_agent = 'UA/private' WHERE id = $1`, pid)
	e.Exec(t, `UPDATE signing.signing_recipients SET state = 'signed', acted_at = now() WHERE id = $1`, pid)
	e.Exec(t, `UPDATE signing.signing_requests SET state = 'completed', outcome = 'completed' WHERE id = $1`, rid)
	testenv.WaitFor(t, "three deliveries", func() bool { return len(rc.accepted()) >= 3 })
	hs := rc.accepted()
	if len(hs) != 3 {
		t.Fatalf("%d deliveries, want 3", len(hs))
	}
	want := []string{api.WebhookSigningRequestSent, api.WebhookRecipientSigned, api.WebhookSigningRequestCompleted}
	for i, h := range hs {
		p := h.Payload
		if p.Type != want[i] {
			t.Fatalf("delivery %d is %s, want %s: %s", i, p.Type, want[i], h.Body)
		}
		for _, secret := range []string{"203.0.113.9", "UA/private", "ip_address", "user_agent"} {
			if strings.Contains(string(h.Body), secret) {
				t.Fatalf("delivery %s holds %q: %s", p.Type, secret, h.Body)
			}
		}
		if i > 0 && p.LSN <= hs[i-1].Payload.LSN {
			t.Fatalf("deliveries out of commit order: %d after %d", p.LSN, hs[i-1].Payload.LSN)
		}
	}
	if r := hs[0].Payload.Data.SigningRequest; r == nil || r.RequestID != rid || r.DocumentID != doc || r.OldState != "draft" || r.State != "sent" {
		t.Fatalf("signing_request.sent data %s", hs[0].Body)
	}
	if r := hs[1].Payload.Data.Recipient; r == nil || r.RecipientID != pid || r.DocumentID != doc || r.Email != "signer@client.com" || r.State != "signed" || r.At == nil {
		t.Fatalf("recipient.signed data %s", hs[1].Body)
	}
}
