package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/testenv"
)

// listURL is the list feed's address with query.
func (s *testServer) listURL(query string) string {
	u := "ws" + strings.TrimPrefix(s.url, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dialList opens the list feed with tok in the Authorization header (none
// when tok is ""); on a refused handshake it returns the status and body.
func (s *testServer) dialList(t testing.TB, query, tok string) (*websocket.Conn, int, string) {
	t.Helper()
	var h http.Header
	if tok != "" {
		h = http.Header{"Authorization": {"Bearer " + tok}}
	}
	c, res, err := websocket.Dial(context.Background(), s.listURL(query), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if res == nil {
			t.Fatal(err)
		}
		var er apperr.Body
		_ = json.NewDecoder(res.Body).Decode(&er)
		return nil, res.StatusCode, string(er.Error.Code)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, http.StatusSwitchingProtocols, ""
}

// docOf is the document id of a message.
func docOf(t testing.TB, m wireMessage) string {
	t.Helper()
	var d struct {
		DocumentID string `json:"document_id"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil || d.DocumentID == "" {
		t.Fatalf("message without document_id: %+v", m)
	}
	return d.DocumentID
}

// pingPong checks that nothing more is queued for c: its ping is answered
// next.
func pingPong(t testing.TB, c *websocket.Conn) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, c); m.Type != "pong" {
		t.Fatalf("got %s %s, want pong (nothing more)", m.Type, m.Data)
	}
}

// In open mode the list feed carries every document's events (anonymous
// callers included), in order; signature rows stay on the documents' own
// streams.
func TestListFeedInOpenModeCarriesEveryDocument(t *testing.T) {
	s := startServer(t, serverOpts{open: true})
	c, code, body := s.dialList(t, "", "")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("anonymous list feed in open mode: %d %s", code, body)
	}
	testenv.WaitFor(t, "list subscriber", func() bool { return s.hub.Stats(0).ListSubscribers == 1 })
	a, b := uuid.NewString(), uuid.NewString()
	s.hub.Dispatch(titleEvent(t, a, 1))
	sig, err := Decode(envelopeMsg(bus.TopicSignatures, "c", nil, sigRow(uuid.NewString(), a), 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	s.hub.Dispatch(sig)
	s.hub.Dispatch(titleEvent(t, b, 3))
	for _, want := range []struct {
		doc string
		lsn uint64
	}{{a, 1}, {b, 3}} {
		m := readMsg(t, c)
		if m.Type != TypeDocumentUpdated || m.LSN != want.lsn || docOf(t, m) != want.doc {
			t.Fatalf("got %+v, want %s at %d", m, want.doc, want.lsn)
		}
	}
	pingPong(t, c)
	if st := s.hub.Stats(0); st.TotalConnections != 1 || st.DocumentsWithSubscribers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The handshake is refused as /ws/{id}'s is: 401 without a credential in
// required mode, 422 for a since that is not an LSN; an API key without
// the read scope is 403.
func TestListFeedHandshakeRefusals(t *testing.T) {
	s := startServer(t, serverOpts{})
	if _, code, _ := s.dialList(t, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if _, code, ecode := s.dialList(t, "since=abc", s.tokenFor(t, alice)); code != http.StatusUnprocessableEntity {
		t.Fatalf("since=abc: %d %s, want 422", code, ecode)
	}
	srv := &Server{auth: s.auth}
	writeOnly := auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeWrite}}
	if _, err := srv.authorizeList(writeOnly); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("an API key without read: %v, want forbidden", err)
	}
	reader := auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeRead}}
	if v, err := srv.authorizeList(reader); err != nil || !v.restricted || !v.mayView([]string{"apikey:k1"}) || v.mayView([]string{"user:alice"}) {
		t.Fatalf("an API key with read: %+v %v", v, err)
	}
}

// End to end in required mode on PostgreSQL, the CDC engine and NATS: bob
// never gets an event of alice's private document until it is shared with
// him, then does; once the share is revoked, nothing again. Alice and an
// admin get everything.
func TestListFeedFiltersEachEventByTheCallersAccess(t *testing.T) {
	p := startPipeline(t)
	s := startServer(t, serverOpts{hub: Options{Bus: p.Bus}, cfg: ServerConfig{Access: NewPGAccess(p.Pool)}})
	testenv.WaitFor(t, "live consumer", func() bool { return s.hub.Ready(context.Background()) == nil })
	ca, _, _ := s.dialList(t, "", s.tokenFor(t, alice))
	cb, _, _ := s.dialList(t, "", s.tokenFor(t, bob))
	cr, _, _ := s.dialList(t, "", s.tokenFor(t, root))
	testenv.WaitFor(t, "list subscribers", func() bool { return s.hub.Stats(0).ListSubscribers == 3 })

	private, bobs := uuid.NewString(), uuid.NewString()
	insert := func(id, title, owner string) {
		p.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by, owner, readers)
			VALUES ($1, $2, 5, $3, 'x@x.com', $4::text, ARRAY[$4::text])`, id, title, id+"/content", owner)
	}
	readers := func(id, r string) {
		p.Exec(t, `UPDATE documents.documents SET readers = $2::text[], access_version = access_version + 1 WHERE id = $1`, id, r)
	}
	insert(private, "Merger plan", "user:alice")
	p.setTitle(t, private, "Merger plan v2")
	insert(bobs, "Bob's notes", "user:bob")
	readers(private, "{user:alice,user:bob}")
	p.setTitle(t, private, "Merger plan v3 (shared)")
	readers(private, "{user:alice}")
	p.setTitle(t, private, "Merger plan v4 (private again)")
	p.Exec(t, `DELETE FROM documents.documents WHERE id = $1`, private)

	type want struct{ typ, doc, title string }
	all := []want{
		{TypeDocumentCreated, private, "Merger plan"}, {TypeDocumentUpdated, private, "Merger plan v2"},
		{TypeDocumentCreated, bobs, "Bob's notes"}, {TypeDocumentUpdated, private, "Merger plan v3 (shared)"},
		{TypeDocumentUpdated, private, "Merger plan v4 (private again)"}, {TypeDocumentDeleted, private, "Merger plan v4 (private again)"},
	}
	check := func(name string, c *websocket.Conn, ws []want) {
		t.Helper()
		for _, w := range ws {
			m := readMsg(t, c)
			var d struct{ Title string }
			_ = json.Unmarshal(m.Data, &d)
			if m.Type != w.typ || docOf(t, m) != w.doc || d.Title != w.title {
				t.Fatalf("%s got %s %s, want %s %q", name, m.Type, m.Data, w.typ, w.title)
			}
			for _, leak := range []string{"readers", "owner", "user:"} {
				if strings.Contains(string(m.Data), leak) {
					t.Fatalf("%s: a message names %q: %s", name, leak, m.Data)
				}
			}
		}
		pingPong(t, c)
	}
	check("alice", ca, []want{all[0], all[1], all[3], all[4], all[5]})
	check("bob", cb, []want{all[2], all[3]})
	check("admin", cr, all)
}

// A list client that reconnects with since=<last lsn> gets exactly what it
// missed across every document, then live events, while writes keep coming
// during the replay, on the instance it left and on a fresh one.
func TestListFeedResumesWithoutGapOrDuplicate(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	c, _, _ := s.dialList(t, "", "")
	testenv.WaitFor(t, "list subscriber", func() bool { return s.hub.Connections() == 1 })
	docs := []*script{{p: p, doc: uuid.NewString()}, {p: p, doc: uuid.NewString()}, {p: p, doc: uuid.NewString()}}
	var mu sync.Mutex
	var want []expected
	// record runs one write and notes what it must produce in order.
	record := func(f func(*script)) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range docs {
			d.want = nil
		}
		for _, d := range docs {
			f(d)
			want = append(want, d.want...)
			d.want = nil
		}
	}
	record(func(d *script) { d.create(t, "t0") })
	lsns := check(t, c, want)
	last := lsns[len(lsns)-1]
	_ = c.Close(websocket.StatusNormalClosure, "")
	testenv.WaitFor(t, "disconnect", func() bool { return s.hub.Connections() == 0 })
	want = nil

	for i := 1; i <= 5; i++ {
		record(func(d *script) { d.title(t, fmt.Sprint("t", i)) })
	}
	// A signature (another topic) and a status change: the status change
	// is on the list, the signature is not.
	record(func(d *script) {
		d.sign(t, TypeDocumentSent, "created", "sent")
		d.want = d.want[1:]
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 6; i <= 20; i++ {
			record(func(d *script) { d.title(t, fmt.Sprint("t", i)) })
		}
	})
	fresh := p.startInstance(t)
	r1, _, _ := s.dialList(t, fmt.Sprint("since=", last), "")
	r2, _, _ := fresh.dialList(t, fmt.Sprint("since=", last), "")
	wg.Wait()
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, want)
		pingPong(t, r)
	}
	// Live traffic hands every replay over to live delivery.
	want = nil
	record(func(d *script) { d.title(t, "after") })
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, want)
	}
	testenv.WaitFor(t, "replays handed over", func() bool { return s.hub.Stats(0).Replaying == 0 && fresh.hub.Stats(0).Replaying == 0 })
	want = nil
	record(func(d *script) { d.title(t, "final") })
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, want)
	}
}

// A list client whose queue overflows is closed with 1013 like a
// document's subscriber (it gets what was queued first), while another
// connection keeps receiving.
func TestSlowListClientIsCutOffWith1013(t *testing.T) {
	s := startServer(t, serverOpts{open: true, hub: Options{QueueSize: 2}})
	other := uuid.NewString()
	c, _, _ := s.dialList(t, "", "")
	single := s.dial(t, other, "", 0)
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	drops := testutil.ToFloat64(queueDrops)
	// A burst far larger than the queue, until the list client is cut off
	// (bounded in count all the same).
	doc := uuid.NewString()
	for n := uint64(1); n <= 200_000 && s.hub.Connections() == 2; n++ {
		s.hub.Dispatch(titleEvent(t, doc, n))
	}
	if got := testutil.ToFloat64(queueDrops) - drops; got != 1 {
		t.Fatalf("queue drops %v, want 1", got)
	}
	if st := s.hub.Stats(0); st.ListSubscribers != 0 || st.DocumentsWithSubscribers != 1 {
		t.Fatalf("stats after the cut: %+v", st)
	}
	s.hub.Dispatch(titleEvent(t, other, 300_000))
	if m := readMsg(t, single); m.LSN != 300_000 {
		t.Fatalf("the other connection got %+v", m)
	}
	var last uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
				t.Fatalf("closed with %v (%v), want 1013", code, err)
			}
			return
		}
		var m wireMessage
		_ = json.Unmarshal(b, &m)
		if m.LSN != last+1 {
			t.Fatalf("list client got lsn %d after %d", m.LSN, last)
		}
		last = m.LSN
	}
}
