package cdc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/docstream/docstream/internal/testenv"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

func keyID(m bus.Message) string {
	var k change.Key
	_ = json.Unmarshal(m.Key, &k)
	return k.ID
}

func insertDoc(ctx context.Context, f *fixture, id string) error {
	_, err := f.Pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 'doc', 'w@example.com')`, id)
	return err
}

// writer inserts documents one per transaction until stopped and records
// the ids whose commit succeeded.
type writer struct {
	mu        sync.Mutex
	committed []string
	stop      func()
	done      chan struct{}
}

func startWriter(t *testing.T, f *fixture, limit int) *writer {
	w := &writer{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = func() { cancel(); <-w.done }
	go func() {
		defer close(w.done)
		for i := 0; i < limit && ctx.Err() == nil; i++ {
			id := uuid.Must(uuid.NewV7()).String()
			if err := insertDoc(ctx, f, id); err != nil {
				if ctx.Err() == nil {
					t.Errorf("insert: %v", err)
				}
				return
			}
			w.mu.Lock()
			w.committed = append(w.committed, id)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writer) ids() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.committed...)
}

// waitAll waits until every id has at least one event on topic.
func waitAll(t *testing.T, c *collector, topic string, ids []string) map[string][]bus.Message {
	t.Helper()
	var byID map[string][]bus.Message
	testenv.WaitFor(t, fmt.Sprintf("events for %d committed rows", len(ids)), func() bool {
		byID = map[string][]bus.Message{}
		for _, m := range c.topic(topic) {
			byID[keyID(m)] = append(byID[keyID(m)], m)
		}
		for _, id := range ids {
			if len(byID[id]) == 0 {
				return false
			}
		}
		return true
	})
	return byID
}

func TestSnapshotWithConcurrentWritesSeesEveryRowExactlyOnce(t *testing.T) {
	f := newFixture(t)
	var before []string
	for i := 0; i < 3000; i++ {
		before = append(before, uuid.Must(uuid.NewV7()).String())
	}
	f.Exec(t, `INSERT INTO documents.documents (id, title, created_by) SELECT x::uuid, 'old', 'a@example.com' FROM unnest($1::text[]) x`, before)
	c := collect(t, f.Bus, bus.TopicDocuments)
	w := startWriter(t, f, 1<<30)
	// Writes run before, during and after the snapshot.
	testenv.WaitFor(t, "writes before the engine starts", func() bool { return len(w.ids()) > 50 })
	cfg := f.Config()
	cfg.MaxBatch = 200 // several snapshot batches while the writer runs
	f.StartEngine(t, cfg, f.Bus)
	during := len(w.ids())
	testenv.WaitFor(t, "writes after streaming starts", func() bool { return len(w.ids()) > during+200 })
	w.stop()

	all := append(before, w.ids()...)
	byID := waitAll(t, c, bus.TopicDocuments, all)
	var reads, creates int
	for _, id := range all {
		if n := len(byID[id]); n != 1 {
			t.Fatalf("row %s has %d events, want exactly 1", id, n)
		}
		switch op := byID[id][0].Headers[bus.HeaderOp]; op {
		case change.OpRead:
			reads++
		case change.OpCreate:
			creates++
		default:
			t.Fatalf("row %s: op %q", id, op)
		}
	}
	if reads < len(before) || creates == 0 {
		t.Fatalf("reads %d (want >= %d), creates %d (want > 0)", reads, len(before), creates)
	}
	// Also rows whose commit the writer did not see (stopped mid-call):
	// one event each.
	seen := map[string]bool{}
	for _, m := range c.topic(bus.TopicDocuments) {
		if seen[keyID(m)] {
			t.Fatalf("row %s delivered twice", keyID(m))
		}
		seen[keyID(m)] = true
	}
}

// recordingBus remembers every message the engine got acked, with the run
// (engine instance) that published it.
type recordingBus struct {
	bus.Bus
	mu  sync.Mutex
	run int
	pub []published
}

type published struct {
	run int
	msg bus.Message
}

func (r *recordingBus) Publish(ctx context.Context, msgs ...bus.Message) error {
	if err := r.Bus.Publish(ctx, msgs...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.pub = append(r.pub, published{r.run, m})
	}
	return nil
}

func (f *fixture) confirmedLSN(t *testing.T) uint64 {
	t.Helper()
	var s string
	if err := f.Pool.QueryRow(context.Background(), "SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1", f.Slot).Scan(&s); err != nil {
		t.Fatal(err)
	}
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		t.Fatal(err)
	}
	return hi<<32 | lo
}

func TestEngineStoppedAtRandomPointsLosesNothingAndRepeatsOnlyUnconfirmed(t *testing.T) {
	f := newFixture(t)
	rec := &recordingBus{Bus: f.Bus}
	c := collect(t, f.Bus, bus.TopicDocuments)
	w := startWriter(t, f, 8000)
	confirmedAtStart := map[int]uint64{}
	for run := 0; run < 6; run++ {
		rec.mu.Lock()
		rec.run = run
		rec.mu.Unlock()
		if run > 0 {
			confirmedAtStart[run] = f.confirmedLSN(t)
		}
		e, stop := f.StartEngine(t, f.Config(), rec)
		time.Sleep(time.Duration(50+mrand.IntN(250)) * time.Millisecond)
		stop()
		t.Logf("run %d: engine acked %d, slot confirmed %d", run, e.Status().ConfirmedLSN, f.confirmedLSN(t))
	}
	w.stop()
	rec.mu.Lock()
	rec.run = 6
	rec.mu.Unlock()
	confirmedAtStart[6] = f.confirmedLSN(t)
	f.StartEngine(t, f.Config(), rec)
	ids := w.ids()
	if len(ids) < 500 {
		t.Fatalf("writer committed only %d rows", len(ids))
	}
	waitAll(t, c, bus.TopicDocuments, ids)

	// Every re-publication happened in a later run and is above what was
	// confirmed when that run started.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	first := map[string]int{}
	dups := 0
	for _, p := range rec.pub {
		if p.msg.Topic != bus.TopicDocuments {
			continue
		}
		k := p.msg.Headers[bus.HeaderLSN] + "|" + string(p.msg.Key)
		r, seen := first[k]
		if !seen {
			first[k] = p.run
			continue
		}
		dups++
		if r == p.run {
			t.Fatalf("run %d published %s twice", r, k)
		}
		if commit, _ := strconv.ParseUint(p.msg.Headers[bus.HeaderCommitLSN], 10, 64); commit < confirmedAtStart[p.run] {
			t.Fatalf("run %d re-published %s of a transaction committed at %d, below the confirmed %d", p.run, k, commit, confirmedAtStart[p.run])
		}
	}
	t.Logf("%d rows, %d re-published events over 7 runs", len(ids), dups)
}

func TestHotStandbyTakesOverWhenTheActiveEngineStops(t *testing.T) {
	f := newFixture(t)
	c := collect(t, f.Bus, bus.TopicDocuments)
	a, stopA := f.StartEngine(t, f.Config(), f.Bus)
	b, err := newEngine(f.Config(), f.Bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if st := b.WaitStarted(ctx, 10*time.Second); st.Active || !st.Standby {
		t.Fatalf("second engine while the first holds the slot: %+v; want a standby", st)
	}
	id1 := uuid.Must(uuid.NewV7()).String()
	if err := insertDoc(ctx, f, id1); err != nil {
		t.Fatal(err)
	}
	waitAll(t, c, bus.TopicDocuments, []string{id1})

	stopA()
	if a.Status().Active {
		t.Fatal("stopped engine still active")
	}
	start := time.Now()
	testenv.WaitFor(t, "standby streaming", func() bool { return b.Status().Streaming })
	if st := b.Status(); st.Standby || !st.Active {
		t.Fatalf("after takeover: %+v", st)
	}
	t.Logf("standby took over in %v", time.Since(start).Round(time.Millisecond))
	id2 := uuid.Must(uuid.NewV7()).String()
	if err := insertDoc(ctx, f, id2); err != nil {
		t.Fatal(err)
	}
	byID := waitAll(t, c, bus.TopicDocuments, []string{id1, id2})
	if len(byID[id1]) != 1 {
		t.Fatalf("row written before the takeover delivered %d times", len(byID[id1]))
	}
}

func TestColumnAddedAtRunTimeAppearsInLaterEvents(t *testing.T) {
	f := newFixture(t)
	c := collect(t, f.Bus, bus.TopicDocuments)
	f.StartEngine(t, f.Config(), f.Bus)
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	if err := insertDoc(ctx, f, id); err != nil {
		t.Fatal(err)
	}
	c.waitCount(t, bus.TopicDocuments, 1)
	f.Exec(t, "ALTER TABLE documents.documents ADD COLUMN priority int")
	f.Exec(t, "UPDATE documents.documents SET priority = 5 WHERE id = $1", id)
	msgs := c.waitCount(t, bus.TopicDocuments, 2)
	env, err := change.Decode(msgs[1].Value)
	if err != nil {
		t.Fatal(err)
	}
	// The new column comes last, after every column the migrations made.
	if !strings.HasSuffix(string(env.After), `,"priority":5}`) ||
		!strings.HasSuffix(string(env.Before), `,"priority":null}`) {
		t.Fatalf("update after ADD COLUMN:\nbefore %s\nafter %s", env.Before, env.After)
	}
}

func TestUnchangedToastColumnIsFilledFromBefore(t *testing.T) {
	f := newFixture(t)
	c := collect(t, f.Bus, bus.TopicSignatures)
	f.StartEngine(t, f.Config(), f.Bus)
	doc := uuid.Must(uuid.NewV7()).String()
	if err := insertDoc(context.Background(), f, doc); err != nil {
		t.Fatal(err)
	}
	// Random hex does not compress: stored out of line (TOAST).
	raw := make([]byte, 40000)
	_, _ = rand.Read(raw)
	big := hex.EncodeToString(raw)
	sig := uuid.Must(uuid.NewV7()).String()
	f.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name, signature_data) VALUES ($1, $2, 'a@b.c', 'A', $3)`, sig, doc, big)
	f.Exec(t, `UPDATE signatures.signatures SET signer_name = 'B' WHERE id = $1`, sig)
	msgs := c.waitCount(t, bus.TopicSignatures, 2)
	env, err := change.Decode(msgs[1].Value)
	if err != nil {
		t.Fatal(err)
	}
	var after change.Signature
	if _, err := change.Row(env.After, &after); err != nil {
		t.Fatal(err)
	}
	if after.SignerName != "B" || after.SignatureData == nil || *after.SignatureData != big {
		t.Fatalf("after: signer %q, signature_data filled=%v", after.SignerName, after.SignatureData != nil && *after.SignatureData == big)
	}
}

func TestWatermarksCoverPublishedChangesAndAdvanceWhenIdle(t *testing.T) {
	f := newFixture(t)
	c := collect(t, f.Bus, bus.TopicDocuments, bus.TopicWatermarks)
	f.StartEngine(t, f.Config(), f.Bus)
	if err := insertDoc(context.Background(), f, uuid.Must(uuid.NewV7()).String()); err != nil {
		t.Fatal(err)
	}
	ev := c.waitCount(t, bus.TopicDocuments, 1)[0]
	testenv.WaitFor(t, "a watermark at or above the change", func() bool {
		for _, m := range c.topic(bus.TopicWatermarks) {
			var wm change.Watermark
			if json.Unmarshal(m.Value, &wm) == nil && wm.LSN >= lsnOf(ev) {
				return true
			}
		}
		return false
	})
	// WAL written outside the captured tables moves the watermark on too.
	var walNow string
	if err := f.Pool.QueryRow(context.Background(), "CREATE TABLE public.other (x int); INSERT INTO public.other VALUES (1); SELECT pg_current_wal_lsn()::text").Scan(&walNow); err != nil {
		// multi-statement QueryRow is not allowed with the extended protocol
		f.Exec(t, "CREATE TABLE public.other (x int)")
		f.Exec(t, "INSERT INTO public.other VALUES (1)")
		if err := f.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&walNow); err != nil {
			t.Fatal(err)
		}
	}
	var hi, lo uint64
	_, _ = fmt.Sscanf(walNow, "%X/%X", &hi, &lo)
	target := hi<<32 | lo
	testenv.WaitFor(t, "an idle watermark past "+walNow, func() bool {
		for _, m := range c.topic(bus.TopicWatermarks) {
			var wm change.Watermark
			if json.Unmarshal(m.Value, &wm) == nil && wm.LSN >= target {
				return true
			}
		}
		return false
	})
}

// A publication made by an earlier version (without documents.extractions
// and the signing tables) gets the tables added at start, and their
// changes reach cdc.extractions and cdc.signing_requests with no new slot.
func TestATableMissingFromAnExistingPublicationIsAdded(t *testing.T) {
	f := newFixture(t)
	cfg := f.Config()
	f.Exec(t, "CREATE PUBLICATION "+cfg.Publication+" FOR TABLE documents.documents, signatures.signatures")
	c := collect(t, f.Bus, bus.TopicExtractions, bus.TopicSigningRequests)
	f.StartEngine(t, cfg, f.Bus)
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	if err := insertDoc(ctx, f, id); err != nil {
		t.Fatal(err)
	}
	f.Exec(t, "INSERT INTO documents.extractions (document_id, content_sha256) VALUES ($1, $2)", id, strings.Repeat("a", 64))
	msgs := c.waitCount(t, bus.TopicExtractions, 1)
	env, err := change.Decode(msgs[0].Value)
	if err != nil || env.Op != change.OpCreate || !strings.Contains(string(env.After), `"status":"pending"`) {
		t.Fatalf("extraction event %s: %v", msgs[0].Value, err)
	}
	rid := uuid.Must(uuid.NewV7()).String()
	f.Exec(t, `INSERT INTO signing.signing_requests (id, document_id, created_by, state, content_sha256, content_key, document_version)
		VALUES ($1, $2, 'a@example.com', 'sent', $3, 'k', 1)`, rid, id, strings.Repeat("a", 64))
	msgs = c.waitCount(t, bus.TopicSigningRequests, 1)
	if env, err := change.Decode(msgs[0].Value); err != nil || env.Op != change.OpCreate || !strings.Contains(string(env.After), rid) {
		t.Fatalf("signing request event %s: %v", msgs[0].Value, err)
	}
}
