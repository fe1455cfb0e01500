package realtime

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/testenv"
)

// workflow writes a signing request's transitions the way the signature
// service's workflow does (internal/signature/workflow.go, scheduler.go):
// each transition is one transaction. It records the messages a watcher
// of the document must get.
type workflow struct {
	s        *script
	req      string
	signers  []string // recipient ids, in signing order
	emails   []string
	reqState string
	states   map[string]string
}

func (w *workflow) create(t testing.TB, emails ...string) {
	p, doc := w.s.p, w.s.doc
	w.req, w.emails, w.states = uuid.NewString(), emails, map[string]string{}
	ctx := context.Background()
	tx, err := p.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	exec := func(sql string, args ...any) {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Created as a draft and sent in the same transaction, as Create does.
	exec(`INSERT INTO signing.signing_requests (id, document_id, owner, created_by, state, content_sha256, content_key, document_version)
		VALUES ($1, $2::uuid, 'user:alice', 'alice@x.com', 'draft', $3, $2::text || '/content', 1)`, w.req, doc, strings.Repeat("c", 64))
	for i, e := range emails {
		id := uuid.NewString()
		w.signers = append(w.signers, id)
		w.states[id] = "pending"
		exec(`INSERT INTO signing.signing_recipients (id, request_id, document_id, email, name, role, signing_order, ip_address, user_agent)
			VALUES ($1, $2, $3, $4, $5, 'signer', $6, NULL, NULL)`, id, w.req, doc, e, fmt.Sprint("Signer ", i+1), i+1)
	}
	exec(`UPDATE signing.signing_requests SET state = 'sent', sent_at = now(), updated_at = now() WHERE id = $1`, w.req)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.s.expect(TypeSigningRequestCreated, map[string]any{"request_id": w.req, "document_id": doc, "old_state": "", "state": "draft"})
	w.documentFollows("draft")
	w.s.expect(TypeSigningRequestSent, map[string]any{"request_id": w.req, "document_id": doc, "old_state": "draft", "state": "sent"})
	w.documentFollows("sent")
	w.reqState = "sent"
}

// documentFollows expects the document's own change that each request
// state change makes in its transaction (migration 00021's trigger): a
// document.updated naming signing_status, carrying the state.
func (w *workflow) documentFollows(state string) {
	w.s.expect(TypeDocumentUpdated, map[string]any{"document_id": w.s.doc, "signing_status": state})
}

// recipient moves recipient i to state, recording acted_at, viewed_at or
// notified_at and the IP and user agent as the workflow does.
func (w *workflow) recipient(t testing.TB, i int, state string) {
	col := map[string]string{"notified": "notified_at", "viewed": "viewed_at", "signed": "acted_at"}[state]
	id := w.signers[i]
	w.s.p.Exec(t, `UPDATE signing.signing_recipients SET state = $2, `+col+` = now(), ip_address = '203.0.113.5', user_agent = 'UA/secret' WHERE id = $1`, id, state)
	w.s.expect("recipient."+state, map[string]any{"recipient_id": id, "request_id": w.req, "document_id": w.s.doc,
		"email": w.emails[i], "old_state": w.states[id], "state": state})
	w.states[id] = state
}

func (w *workflow) request(t testing.TB, state string) {
	w.s.p.Exec(t, `UPDATE signing.signing_requests SET state = $2, updated_at = now() WHERE id = $1`, w.req, state)
	w.s.expect("signing_request."+state, map[string]any{"request_id": w.req, "old_state": w.reqState, "state": state})
	w.documentFollows(state)
	w.reqState = state
}

// A watcher of a document sees its signing request's every transition live,
// in commit order with the document's own changes: the request created and
// sent, two sequential signers notified, viewing and signing, the request
// in progress and completed. A watcher that reconnects with ?since= in the
// middle gets exactly the rest. No message holds a recipient's IP address
// or user agent.
func TestAWatcherSeesEverySigningTransitionInOrder(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	sc := &script{p: p, doc: uuid.NewString()}
	c := s.dial(t, sc.doc, "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	sc.create(t, "Contract")
	w := &workflow{s: sc}
	w.create(t, "bob@x.com", "carol@x.com")
	sc.status(t, TypeDocumentSent, "created", "sent")
	w.recipient(t, 0, "notified")
	w.recipient(t, 0, "viewed")
	w.request(t, "in_progress")
	sc.status(t, TypeDocumentViewed, "sent", "viewed")
	w.recipient(t, 0, "signed")
	lsns := checkNoSecrets(t, c, sc.want)
	_ = c.Close(websocket.StatusNormalClosure, "")
	testenv.WaitFor(t, "disconnect", func() bool { return s.hub.Connections() == 0 })

	// The second signer acts while the watcher is away.
	sc.want = nil
	w.recipient(t, 1, "notified")
	w.recipient(t, 1, "viewed")
	w.recipient(t, 1, "signed")
	w.request(t, "completed")
	sc.status(t, TypeDocumentSigned, "viewed", "signed")
	// A request update that keeps its state (the certificate's key) is no
	// transition.
	p.Exec(t, `UPDATE signing.signing_requests SET certificate_key = 'k', updated_at = now() WHERE id = $1`, w.req)
	sc.status(t, TypeDocumentStatusChanged, "signed", "completed")

	r := s.dial(t, sc.doc, fmt.Sprint("since=", lsns[len(lsns)-1]), 0)
	got := checkNoSecrets(t, r, sc.want)
	all := append(lsns, got...)
	for i := 1; i < len(all); i++ {
		if all[i] < all[i-1] {
			t.Fatalf("cursors decrease: %v", all)
		}
	}
	// Nothing more: a ping is answered next.
	if err := r.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, r); m.Type != "pong" {
		t.Fatalf("after the last transition got %s %s, want pong", m.Type, m.Data)
	}
}

// checkNoSecrets is check, and no message may hold the IP address or user
// agent the workflow recorded.
func checkNoSecrets(t testing.TB, c *websocket.Conn, want []expected) []uint64 {
	t.Helper()
	var lsns []uint64
	for i, w := range want {
		m := readMsg(t, c)
		if m.Type != w.typ {
			t.Fatalf("message %d is %s (%s), want %s %v", i, m.Type, m.Data, w.typ, w.data)
		}
		assertJSON(t, m.Data, w.data)
		for _, secret := range []string{"203.0.113.5", "UA/secret", "ip_address", "user_agent"} {
			if strings.Contains(string(m.Data), secret) {
				t.Fatalf("message %s %s holds %q", m.Type, m.Data, secret)
			}
		}
		lsns = append(lsns, m.LSN)
	}
	return lsns
}

// The signing workflow's events carry no readers; they follow the
// document's access: a stranger cannot subscribe, and a grantee replaying
// from before its share gets none of the transitions made while it was not
// a reader (judged by the document's readers at that point of the stream),
// only those after.
func TestSigningTransitionsFollowTheDocumentsAccess(t *testing.T) {
	p := startPipeline(t)
	s := startServer(t, serverOpts{hub: Options{Bus: p.Bus}, cfg: ServerConfig{Access: NewPGAccess(p.Pool)}})
	testenv.WaitFor(t, "live consumer", func() bool { return s.hub.Ready(context.Background()) == nil })
	sc := &script{p: p, doc: uuid.NewString()}
	p.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by, owner, readers)
		VALUES ($1, 'Private deal', 5, $2, 'alice@x.com', 'user:alice', '{user:alice}')`, sc.doc, sc.doc+"/content")
	w := &workflow{s: sc}
	w.create(t, "dave@x.com", "erin@x.com")
	w.recipient(t, 0, "notified")
	if _, code, _ := s.dialAs(t, sc.doc, s.tokenFor(t, bob)); code != 404 {
		t.Fatalf("bob, no reader: %d, want 404", code)
	}
	p.Exec(t, `UPDATE documents.documents SET readers = '{user:alice,user:bob}', access_version = access_version + 1 WHERE id = $1`, sc.doc)
	w.recipient(t, 0, "viewed")
	testenv.WaitFor(t, "the writes dispatched", func() bool { return s.hub.Stats(0).Consumer.Events >= 10 })

	cb, code, body := s.dialAsQuery(t, sc.doc, "since=1", s.tokenFor(t, bob))
	if code != 101 {
		t.Fatalf("bob after the share: %d %s", code, body)
	}
	if m := readMsg(t, cb); m.Type != "recipient.viewed" {
		t.Fatalf("bob's first replayed message: %s %s, want recipient.viewed (nothing from before the share)", m.Type, m.Data)
	}
	// Alice, replaying the same history, gets all of it.
	ca, _, _ := s.dialAsQuery(t, sc.doc, "since=1", s.tokenFor(t, alice))
	for _, want := range []string{TypeDocumentCreated, "signing_request.created", TypeDocumentUpdated, "signing_request.sent", TypeDocumentUpdated,
		"recipient.notified", "recipient.viewed"} {
		if m := readMsg(t, ca); m.Type != want {
			t.Fatalf("alice's replay: %s %s, want %s", m.Type, m.Data, want)
		}
	}
	// Live, both get the next transition.
	w.recipient(t, 0, "signed")
	for _, c := range []*websocket.Conn{ca, cb} {
		if m := readMsg(t, c); m.Type != "recipient.signed" {
			t.Fatalf("live: %s %s", m.Type, m.Data)
		}
	}
}
