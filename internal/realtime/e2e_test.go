package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/logging"
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

var slotSeq atomic.Int64

// pipeline is a real database with the CDC engine publishing its changes
// to an embedded NATS JetStream.
type pipeline struct {
	pool *pgxpool.Pool
	bus  *busnats.Bus
}

func startPipeline(t testing.TB) *pipeline {
	t.Helper()
	url := testenv.Database(t)
	slot := fmt.Sprintf("t_realtime_%d_%d", time.Now().UnixNano()%1e6, slotSeq.Add(1))
	b, err := busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: testenv.TempDir(t), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The slot must go before the database can be dropped.
		for range 50 {
			_, err := pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		pool.Close()
	})
	e, err := cdc.New(cdc.Config{DatabaseURL: url, Slot: slot, Version: "test", StatusInterval: 200 * time.Millisecond,
		WatermarkInterval: 200 * time.Millisecond, HeartbeatInterval: -1, Log: logging.Discard()}, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("cdc engine: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "cdc engine streaming", func() bool { return e.Status().Streaming })
	return &pipeline{pool: pool, bus: b}
}

func (p *pipeline) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := p.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (p *pipeline) createDocument(t testing.TB, id, title string) {
	p.exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by) VALUES ($1, $2, 5, $3, 'a@example.com')`, id, title, id+"/content")
}

func (p *pipeline) setTitle(t testing.TB, id, title string) {
	p.exec(t, `UPDATE documents.documents SET title = $2, version = version + 1 WHERE id = $1`, id, title)
}

// startInstance is a realtime service consuming the pipeline's bus, with
// both consumers running.
func (p *pipeline) startInstance(t testing.TB) *testServer {
	s := startServer(t, serverOpts{hub: Options{Bus: p.bus}})
	waitFor(t, "live consumers", func() bool { return s.hub.Ready(context.Background()) == nil })
	return s
}

func TestClientSeesRealWritesInOrder(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	doc := uuid.NewString()
	c := s.dial(t, doc, "", 0)
	waitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })

	p.createDocument(t, doc, "Sales Agreement")
	p.exec(t, `UPDATE documents.documents SET status = 'signed', version = version + 1 WHERE id = $1`, doc)
	p.setTitle(t, doc, "Sales Agreement (signed)")
	// Another document's changes must not show up.
	p.createDocument(t, uuid.NewString(), "Other")

	var lsns []uint64
	check := func(typ string, data map[string]any) {
		t.Helper()
		m := readMsg(t, c)
		if m.Type != typ {
			t.Fatalf("message %d is %s (%s), want %s", len(lsns), m.Type, m.Data, typ)
		}
		if m.LSN == 0 || m.Timestamp == "" {
			t.Fatalf("message without cursor or timestamp: %+v", m)
		}
		assertJSON(t, m.Data, data)
		lsns = append(lsns, m.LSN)
	}
	check(TypeDocumentCreated, map[string]any{"document_id": doc, "title": "Sales Agreement", "status": "created"})
	check(TypeDocumentSigned, map[string]any{"document_id": doc, "old_status": "created", "new_status": "signed", "version": 2.0})
	check(TypeDocumentUpdated, map[string]any{"title": "Sales Agreement (signed)", "old_title": "Sales Agreement"})
	// Order holds per topic; across cdc.documents and cdc.signatures the two
	// live subscriptions race, so the signature is written once the
	// document's events are in (clients can order by lsn).
	sig := uuid.NewString()
	p.exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES ($1, $2, 's@example.com', 'Sam Signer')`, sig, doc)
	check(TypeSignatureAdded, map[string]any{"signature_id": sig, "document_id": doc, "signer_name": "Sam Signer", "signer_email": "s@example.com"})
	for i := 1; i < len(lsns); i++ {
		if lsns[i] <= lsns[i-1] {
			t.Fatalf("cursors not increasing: %v", lsns)
		}
	}
}

// Two instances, one client each: both get every event (broadcast, not a
// shared group where each would get about half).
func TestEveryInstanceSeesEveryEvent(t *testing.T) {
	p := startPipeline(t)
	s1, s2 := p.startInstance(t), p.startInstance(t)
	doc := uuid.NewString()
	c1, c2 := s1.dial(t, doc, "", 0), s2.dial(t, doc, "", 0)
	waitFor(t, "subscribers", func() bool { return s1.hub.Connections() == 1 && s2.hub.Connections() == 1 })

	p.createDocument(t, doc, "t0")
	const updates = 20
	for i := 1; i <= updates; i++ {
		p.setTitle(t, doc, fmt.Sprint("t", i))
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		if m := readMsg(t, c); m.Type != TypeDocumentCreated {
			t.Fatalf("first message %+v", m)
		}
		for i := 1; i <= updates; i++ {
			m := readMsg(t, c)
			assertJSON(t, m.Data, map[string]any{"title": fmt.Sprint("t", i)})
		}
	}
}

// A client that reconnects with since=<last lsn> gets exactly what it
// missed, then live events, while writes keep coming during the replay.
func TestReconnectWithSinceGetsExactlyTheMissedEvents(t *testing.T) {
	p := startPipeline(t)
	s := p.startInstance(t)
	doc := uuid.NewString()
	c := s.dial(t, doc, "", 0)
	waitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	p.createDocument(t, doc, "t0")
	p.setTitle(t, doc, "t1")
	if m := readMsg(t, c); m.Type != TypeDocumentCreated {
		t.Fatalf("got %+v", m)
	}
	last := readMsg(t, c)
	assertJSON(t, last.Data, map[string]any{"title": "t1"})
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "disconnect", func() bool { return s.hub.Connections() == 0 })

	// Missed while away.
	for i := 2; i <= 10; i++ {
		p.setTitle(t, doc, fmt.Sprint("t", i))
	}
	// More writes race with the reconnect and its replay.
	const total = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 11; i <= total; i++ {
			p.setTitle(t, doc, fmt.Sprint("t", i))
		}
	})
	// Reconnect to a fresh instance as well: it has seen none of it live.
	fresh := p.startInstance(t)
	r1 := s.dial(t, doc, fmt.Sprint("since=", last.LSN), 0)
	r2 := fresh.dial(t, doc, fmt.Sprint("since=", last.LSN), 0)
	wg.Wait()
	for _, r := range []*websocket.Conn{r1, r2} {
		for i := 2; i <= total; i++ {
			m := readMsg(t, r)
			assertJSON(t, m.Data, map[string]any{"title": fmt.Sprint("t", i)})
		}
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
	// Live traffic on both topics lets every replay hand over to live
	// delivery (a topic quiet since the instance started keeps its replay
	// subscription, which then delivers new events itself).
	p.setTitle(t, doc, "after")
	p.exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES ($1, $2, 's@example.com', 'S')`, uuid.NewString(), doc)
	for _, r := range []*websocket.Conn{r1, r2} {
		got := map[string]bool{}
		for range 2 {
			got[readMsg(t, r).Type] = true
		}
		if !got[TypeDocumentUpdated] || !got[TypeSignatureAdded] {
			t.Fatalf("got %v", got)
		}
	}
	waitFor(t, "replays handed over", func() bool { return s.hub.Stats(0).Replaying == 0 && fresh.hub.Stats(0).Replaying == 0 })
	p.setTitle(t, doc, "final")
	for _, r := range []*websocket.Conn{r1, r2} {
		assertJSON(t, readMsg(t, r).Data, map[string]any{"title": "final"})
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
