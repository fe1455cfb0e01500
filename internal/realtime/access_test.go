package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/testenv"
)

// fakeAccess is DocumentAccess over a map: a document in docs has those
// readers; any other exists with def as readers, or does not exist when
// def is nil.
type fakeAccess struct {
	docs map[string][]string
	def  []string
	err  error
}

func (f fakeAccess) DocumentAccess(_ context.Context, id string) (string, []string, bool, error) {
	if f.err != nil {
		return "", nil, false, f.err
	}
	if r, ok := f.docs[id]; ok {
		return "", r, true, nil
	}
	return "", f.def, f.def != nil, nil
}

func (s *testServer) tokenFor(t testing.TB, req auth.TokenRequest) string {
	t.Helper()
	tok, _, err := s.auth.IssueToken(req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dialAs opens doc's WebSocket with tok; on a refused handshake it returns
// the answer's status and body.
func (s *testServer) dialAs(t testing.TB, doc, tok string) (*websocket.Conn, int, string) {
	t.Helper()
	return s.dialAsQuery(t, doc, "", tok)
}

func (s *testServer) dialAsQuery(t testing.TB, doc, query, tok string) (*websocket.Conn, int, string) {
	t.Helper()
	c, res, err := websocket.Dial(context.Background(), s.wsURL(doc, query), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		if res == nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		return nil, res.StatusCode, string(b)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, http.StatusSwitchingProtocols, ""
}

var (
	alice = auth.TokenRequest{Subject: "alice", Email: "alice@x.com", EmailVerified: true}
	bob   = auth.TokenRequest{Subject: "bob", Email: "bob@x.com", EmailVerified: true}
	carol = auth.TokenRequest{Subject: "carol", Groups: []string{"legal"}}
	root  = auth.TokenRequest{Subject: "root", Admin: true}
)

func TestASubscriptionNeedsADocumentTheCallerMayView(t *testing.T) {
	private, shared, missing := uuid.NewString(), uuid.NewString(), uuid.NewString()
	s := startServer(t, serverOpts{cfg: ServerConfig{Access: fakeAccess{docs: map[string][]string{
		private: {"user:alice"},
		shared:  {"user:alice", "group:legal", "email:bob@x.com"},
	}}}})
	cases := []struct {
		name string
		who  auth.TokenRequest
		doc  string
		want int
	}{
		{"bob may not watch alice's private document", bob, private, 404},
		{"nor one that does not exist", bob, missing, 404},
		{"alice watches her own", alice, private, 101},
		{"a legal group member watches the shared one", carol, shared, 101},
		{"bob watches one shared with his verified email", bob, shared, 101},
		{"an admin watches any", root, private, 101},
		{"but nobody one that does not exist", root, missing, 404},
	}
	bodies := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, code, body := s.dialAs(t, c.doc, s.tokenFor(t, c.who))
			if code != c.want {
				t.Fatalf("status %d %s, want %d", code, body, c.want)
			}
			if code == 404 {
				bodies[c.doc] = strings.ReplaceAll(body, c.doc, "<id>")
			}
		})
	}
	// A refusal says nothing about existence: the same answer for a
	// document that exists and one that does not.
	if bodies[private] == "" || bodies[private] != bodies[missing] {
		t.Fatalf("refusals differ:\n%s\n%s", bodies[private], bodies[missing])
	}
	// And no token at all is 401 before any of this.
	res, err := http.Get(s.url + "/ws/" + private)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("no token: %d", res.StatusCode)
	}
}

func TestASubscriptionIsRefusedWhenAccessCannotBeChecked(t *testing.T) {
	s := startServer(t, serverOpts{cfg: ServerConfig{Access: fakeAccess{err: errors.New("connection refused")}}})
	if _, code, body := s.dialAs(t, uuid.NewString(), s.token(t)); code != 503 {
		t.Fatalf("status %d %s, want 503", code, body)
	}
}

// accessEvent is a readers-only change of doc (a share or a revocation):
// same title, status and version, new readers and access_version.
func accessEvent(t testing.TB, doc string, n uint64, before, after []string) Event {
	t.Helper()
	row := func(readers []string, av int) json.RawMessage {
		var m map[string]any
		_ = json.Unmarshal(docRow(doc, "title", "created", 3), &m)
		m["owner"], m["readers"], m["access_version"] = "user:alice", readers, av
		b, _ := json.Marshal(m)
		return b
	}
	ev, err := Decode(envelopeMsg(bus.TopicDocuments, "u", row(before, 1), row(after, 2), n, n))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestAReadersOnlyChangeIsNoMessageAndReadersAreNeverPushed(t *testing.T) {
	doc := uuid.NewString()
	ev := accessEvent(t, doc, 7, []string{"user:alice"}, []string{"user:alice", "user:bob"})
	if len(ev.Frames) != 0 || !ev.HasReaders || len(ev.Readers) != 2 {
		t.Fatalf("a share decoded to %d frames, readers %v (%v)", len(ev.Frames), ev.Readers, ev.HasReaders)
	}
	// A create and an edit carrying readers: messages, none naming them.
	var created map[string]any
	_ = json.Unmarshal(docRow(doc, "Plan", "created", 1), &created)
	created["owner"], created["readers"] = "user:alice", []string{"user:alice", "group:legal"}
	edited := map[string]any{}
	for k, v := range created {
		edited[k] = v
	}
	edited["title"], edited["readers"], edited["access_version"] = "Plan v2", []string{"user:alice"}, 1
	c, _ := json.Marshal(created)
	e, _ := json.Marshal(edited)
	for _, m := range []bus.Message{envelopeMsg(bus.TopicDocuments, "c", nil, c, 8, 8), envelopeMsg(bus.TopicDocuments, "u", c, e, 9, 9)} {
		ev, err := Decode(m)
		if err != nil || len(ev.Frames) == 0 {
			t.Fatalf("decode: %v, %d frames", err, len(ev.Frames))
		}
		for _, f := range ev.Frames {
			for _, leak := range []string{"readers", "user:alice", "group:legal", "owner", "access_version"} {
				if strings.Contains(string(f), leak) {
					t.Fatalf("%q pushed: %s", leak, f)
				}
			}
		}
	}
}

func TestARevocationWhileWatchingClosesWith1008(t *testing.T) {
	doc := uuid.NewString()
	s := startServer(t, serverOpts{cfg: ServerConfig{Access: fakeAccess{docs: map[string][]string{doc: {"user:alice", "user:bob"}}}}})
	cb, _, _ := s.dialAs(t, doc, s.tokenFor(t, bob))
	ca, _, _ := s.dialAs(t, doc, s.tokenFor(t, alice))
	cr, _, _ := s.dialAs(t, doc, s.tokenFor(t, root))
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 3 })

	s.hub.Dispatch(titleEvent(t, doc, 1))
	for _, c := range []*websocket.Conn{ca, cb, cr} {
		if m := readMsg(t, c); m.Type != TypeDocumentUpdated {
			t.Fatalf("before the revocation: %+v", m)
		}
	}
	s.hub.Dispatch(accessEvent(t, doc, 2, []string{"user:alice", "user:bob"}, []string{"user:alice"}))
	s.hub.Dispatch(titleEvent(t, doc, 3)) // must not reach bob

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, frame, err := cb.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "access revoked" {
		t.Fatalf("bob read %s, %v; want close 1008 access revoked", frame, err)
	}
	// The owner and the admin keep watching, and the share's change was no
	// message to them: the next one is the title.
	for _, c := range []*websocket.Conn{ca, cr} {
		if m := readMsg(t, c); m.Type != TypeDocumentUpdated || m.LSN != 3 {
			t.Fatalf("after the revocation: %+v", m)
		}
	}
	testenv.WaitFor(t, "bob unsubscribed", func() bool { return s.hub.Connections() == 2 })
}

// End to end on PostgreSQL, the CDC engine and NATS: subscriptions are
// authorised against the table, and a share revoked while its grantee
// watches ends the grantee's subscription.
func TestRealSharesAuthoriseAndRevokeSubscriptions(t *testing.T) {
	p := startPipeline(t)
	s := startServer(t, serverOpts{hub: Options{Bus: p.Bus}, cfg: ServerConfig{Access: NewPGAccess(p.Pool)}})
	testenv.WaitFor(t, "live consumer", func() bool { return s.hub.Ready(context.Background()) == nil })
	doc := uuid.NewString()
	p.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by, owner, readers)
		VALUES ($1, 'Merger plan', 5, $2, 'alice@x.com', 'user:alice', '{user:alice}')`, doc, doc+"/content")
	// Let the live consumer pass the insert: it is no part of this test.
	testenv.WaitFor(t, "the insert dispatched", func() bool { return s.hub.Stats(0).Consumer.Events >= 1 })
	// As the document service's shares do: readers rewritten, version kept.
	share := func(readers string) {
		p.Exec(t, `UPDATE documents.documents SET readers = $2::text[], access_version = access_version + 1 WHERE id = $1`, doc, readers)
	}

	if _, code, _ := s.dialAs(t, doc, s.tokenFor(t, bob)); code != 404 {
		t.Fatalf("bob before the share: %d, want 404", code)
	}
	ca, code, _ := s.dialAs(t, doc, s.tokenFor(t, alice))
	if code != 101 {
		t.Fatalf("alice: %d", code)
	}
	share("{user:alice,user:bob}")
	cb, code, body := s.dialAs(t, doc, s.tokenFor(t, bob))
	if code != 101 {
		t.Fatalf("bob after the share: %d %s", code, body)
	}
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	p.setTitle(t, doc, "Merger plan v2")
	for _, c := range []*websocket.Conn{ca, cb} {
		if m := readMsg(t, c); m.Type != TypeDocumentUpdated {
			t.Fatalf("title change: %+v", m)
		}
	}
	share("{user:alice}")
	p.setTitle(t, doc, "Merger plan v3 (after the revocation)")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, frame, err := cb.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "access revoked" {
		t.Fatalf("bob read %s, %v; want close 1008 access revoked", frame, err)
	}
	// Alice got neither share as a message, only the titles.
	m := readMsg(t, ca)
	if m.Type != TypeDocumentUpdated || !strings.Contains(string(m.Data), "after the revocation") {
		t.Fatalf("alice: %+v %s", m, m.Data)
	}
	if _, code, _ := s.dialAs(t, doc, s.tokenFor(t, bob)); code != 404 {
		t.Fatalf("bob after the revocation: %d, want 404", code)
	}
}

// A grantee that reconnects with ?since= from before its share gets none
// of the history from while it was not a reader: the replay leaves out
// every event whose readers did not hold its keys.
func TestAReplayTellsNothingFromBeforeTheShare(t *testing.T) {
	p := startPipeline(t)
	s := startServer(t, serverOpts{hub: Options{Bus: p.Bus}, cfg: ServerConfig{Access: NewPGAccess(p.Pool)}})
	testenv.WaitFor(t, "live consumer", func() bool { return s.hub.Ready(context.Background()) == nil })
	doc := uuid.NewString()
	p.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by, owner, readers)
		VALUES ($1, 'Secret plan', 5, $2, 'alice@x.com', 'user:alice', '{user:alice}')`, doc, doc+"/content")
	p.setTitle(t, doc, "Secret plan, still private")
	p.Exec(t, `UPDATE documents.documents SET readers = '{user:alice,user:bob}', access_version = access_version + 1 WHERE id = $1`, doc)
	p.setTitle(t, doc, "Plan, shared")
	testenv.WaitFor(t, "the writes dispatched", func() bool { return s.hub.Stats(0).Consumer.Events >= 4 })

	cb, code, body := s.dialAsQuery(t, doc, "since=1", s.tokenFor(t, bob))
	if code != 101 {
		t.Fatalf("bob: %d %s", code, body)
	}
	m := readMsg(t, cb)
	if m.Type != TypeDocumentUpdated || !strings.Contains(string(m.Data), "Plan, shared") {
		t.Fatalf("bob's first replayed message: %s %s", m.Type, m.Data)
	}
	// Alice, replaying the same history, gets all of it.
	ca, _, _ := s.dialAsQuery(t, doc, "since=1", s.tokenFor(t, alice))
	for _, want := range []string{TypeDocumentCreated, TypeDocumentUpdated, TypeDocumentUpdated} {
		if m := readMsg(t, ca); m.Type != want {
			t.Fatalf("alice's replay: %s %s, want %s", m.Type, m.Data, want)
		}
	}
}
