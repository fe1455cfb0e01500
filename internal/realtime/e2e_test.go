package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/testenv"
)

// TestMain starts PostgreSQL (wal_level=logical) and Redis once for the
// package, except in BenchmarkFanOut10k's client process, which needs
// neither.
func TestMain(m *testing.M) {
	if os.Getenv(fanoutClientsEnv) != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m)
}

// pipeline is a real database with the CDC engine publishing its changes
// to an embedded NATS JetStream.
type pipeline struct{ *cdctest.Pipeline }

func startPipeline(t testing.TB) *pipeline { return &pipeline{cdctest.Start(t)} }

func (p *pipeline) createDocument(t testing.TB, id, title string) {
	p.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by) VALUES ($1, $2, 5, $3, 'a@example.com')`, id, title, id+"/content")
}

func (p *pipeline) setTitle(t testing.TB, id, title string) {
	p.Exec(t, `UPDATE documents.documents SET title = $2, version = version + 1 WHERE id = $1`, id, title)
}

// startInstance is a realtime service consuming the pipeline's bus, with
// its live consumer running.
//
// It runs in open mode: these tests subscribe before the document exists,
// as the reference's clients may; in required mode a subscription needs a
// document the caller may view (access_test.go).
func (p *pipeline) startInstance(t testing.TB) *testServer {
	s := startServer(t, serverOpts{hub: Options{Bus: p.Bus}, open: true})
	testenv.WaitFor(t, "live consumers", func() bool { return s.hub.Ready(context.Background()) == nil })
	return s
}

// script makes writes to one document and records, in commit order, the
// messages they must produce for its subscribers.
type script struct {
	p    *pipeline
	doc  string
	want []expected
	sigs int
}

type expected struct {
	typ  string
	data map[string]any
}

func (s *script) expect(typ string, data map[string]any) {
	s.want = append(s.want, expected{typ, data})
}

func (s *script) create(t testing.TB, title string) {
	s.p.createDocument(t, s.doc, title)
	s.expect(TypeDocumentCreated, map[string]any{"document_id": s.doc, "title": title, "status": "created"})
}

func (s *script) title(t testing.TB, title string) {
	s.p.setTitle(t, s.doc, title)
	s.expect(TypeDocumentUpdated, map[string]any{"document_id": s.doc, "title": title})
}

func (s *script) status(t testing.TB, typ, old, status string) {
	s.p.Exec(t, `UPDATE documents.documents SET status = $2, version = version + 1 WHERE id = $1`, s.doc, status)
	s.expect(typ, map[string]any{"document_id": s.doc, "old_status": old, "new_status": status})
}

// sign adds a signature as the signature service does: the signature row
// in one transaction, then the document's new status in another, back to
// back (the two go to different topics).
func (s *script) sign(t testing.TB, typ, old, status string) {
	s.sigs++
	id, name := uuid.NewString(), fmt.Sprint("Signer ", s.sigs)
	s.p.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES ($1, $2, 's@example.com', $3)`, id, s.doc, name)
	s.expect(TypeSignatureAdded, map[string]any{"signature_id": id, "document_id": s.doc, "signer_name": name, "signer_email": "s@example.com"})
	if status != "" {
		s.status(t, typ, old, status)
	}
}

// check reads want from c, in order, and returns their cursors.
func check(t testing.TB, c *websocket.Conn, want []expected) []uint64 {
	t.Helper()
	var lsns []uint64
	for i, w := range want {
		m := readMsg(t, c)
		if m.Type != w.typ {
			t.Fatalf("message %d is %s (%s), want %s %v", i, m.Type, m.Data, w.typ, w.data)
		}
		if m.LSN == 0 || m.Timestamp == "" {
			t.Fatalf("message without cursor or timestamp: %+v", m)
		}
		assertJSON(t, m.Data, w.data)
		lsns = append(lsns, m.LSN)
	}
	return lsns
}

// Every write is its own transaction, so commit order is write order, and
// a client gets its document's events in that order across cdc.documents
// and cdc.signatures, even when a signature and the document's status
// change are committed back to back.
func TestClientSeesRealWritesInOrder(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	w := &script{p: p, doc: uuid.NewString()}
	c := s.dial(t, w.doc, "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })

	w.create(t, "Sales Agreement")
	w.status(t, TypeDocumentSent, "created", "sent")
	w.sign(t, TypeDocumentViewed, "sent", "viewed")
	w.sign(t, TypeDocumentSigned, "viewed", "signed")
	w.title(t, "Sales Agreement (signed)")
	w.sign(t, TypeDocumentStatusChanged, "signed", "completed")
	// Another document's changes must not show up.
	other := &script{p: p, doc: uuid.NewString()}
	other.create(t, "Other")
	other.sign(t, "", "", "")
	w.title(t, "last")

	lsns := check(t, c, w.want)
	for i := 1; i < len(lsns); i++ {
		if lsns[i] <= lsns[i-1] {
			t.Fatalf("cursors not increasing: %v", lsns)
		}
	}
	st := s.hub.Stats(0).Consumer
	if st.EventsByTopic[bus.TopicDocuments] == 0 || st.EventsByTopic[bus.TopicSignatures] == 0 || st.LSN < lsns[len(lsns)-1] {
		t.Fatalf("consumer stats %+v after cursor %d", st, lsns[len(lsns)-1])
	}
}

// Two instances, one client each: both get every event (broadcast, not a
// shared group where each would get about half), in commit order.
func TestEveryInstanceSeesEveryEvent(t *testing.T) {
	p := startPipeline(t)
	s1, s2 := p.startInstance(t), p.startInstance(t)
	w := &script{p: p, doc: uuid.NewString()}
	c1, c2 := s1.dial(t, w.doc, "", 0), s2.dial(t, w.doc, "", 0)
	testenv.WaitFor(t, "subscribers", func() bool { return s1.hub.Connections() == 1 && s2.hub.Connections() == 1 })

	w.create(t, "t0")
	for i := 1; i <= 20; i++ {
		w.title(t, fmt.Sprint("t", i))
		if i%4 == 0 {
			w.sign(t, "", "", "")
		}
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		check(t, c, w.want)
	}
}

// A client that reconnects with since=<last lsn> gets exactly what it
// missed, then live events, while writes to both topics keep coming during
// the replay.
func TestReconnectWithSinceGetsExactlyTheMissedEvents(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	w := &script{p: p, doc: uuid.NewString()}
	c := s.dial(t, w.doc, "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	w.create(t, "t0")
	w.title(t, "t1")
	lsns := check(t, c, w.want)
	last := lsns[len(lsns)-1]
	_ = c.Close(websocket.StatusNormalClosure, "")
	testenv.WaitFor(t, "disconnect", func() bool { return s.hub.Connections() == 0 })
	w.want = nil

	// Missed while away, on both topics.
	for i := 2; i <= 10; i++ {
		w.title(t, fmt.Sprint("t", i))
		if i%3 == 0 {
			w.sign(t, "", "", "")
		}
	}
	// More writes race with the reconnect and its replay.
	const total = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 11; i <= total; i++ {
			w.title(t, fmt.Sprint("t", i))
			if i%3 == 0 {
				w.sign(t, "", "", "")
			}
		}
	})
	// Reconnect to a fresh instance as well: it has seen none of it live.
	fresh := p.startInstance(t)
	r1 := s.dial(t, w.doc, fmt.Sprint("since=", last), 0)
	r2 := fresh.dial(t, w.doc, fmt.Sprint("since=", last), 0)
	wg.Wait()
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, w.want)
	}
	// Nothing more (no duplicate): a ping is answered next.
	for _, r := range []*websocket.Conn{r1, r2} {
		if err := r.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if m := readMsg(t, r); m.Type != "pong" {
			t.Fatalf("after the last event got %+v, want pong", m)
		}
	}
	// Live traffic lets every replay hand over to live delivery (until the
	// instance's live consumer has dispatched something, the replay
	// subscription delivers new events itself).
	w.want = nil
	w.sign(t, TypeDocumentSigned, "created", "signed")
	w.title(t, "after")
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, w.want)
	}
	testenv.WaitFor(t, "replays handed over", func() bool { return s.hub.Stats(0).Replaying == 0 && fresh.hub.Stats(0).Replaying == 0 })
	w.want = nil
	w.title(t, "final")
	for _, r := range []*websocket.Conn{r1, r2} {
		check(t, r, w.want)
	}
}

// assertJSON checks that the object raw has the wanted top-level values.
func assertJSON(t testing.TB, raw []byte, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %v, want %v (in %s)", k, got[k], v, raw)
		}
	}
}
