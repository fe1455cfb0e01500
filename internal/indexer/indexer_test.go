package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/testenv"
)

// row is a documents.documents row as the CDC engine encodes it.
type row struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	ContentType string   `json:"content_type"`
	ContentSize int64    `json:"content_size"`
	S3Key       *string  `json:"s3_key"`
	Status      string   `json:"status"`
	CreatedBy   string   `json:"created_by"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
	Version     int      `json:"version"`
	Owner       *string  `json:"owner"`
	Readers     []string `json:"readers"`
	// SigningStatus is last, as migration 00021 added it.
	SigningStatus *string `json:"signing_status"`
}

func newRow(id, title string) row {
	key := id + "/content"
	now := change.FormatTime(time.Now())
	return row{ID: id, Title: title, ContentType: "text/plain", ContentSize: 10, S3Key: &key, Status: "created",
		CreatedBy: "john@company.com", CreatedAt: now, UpdatedAt: now, Version: 1}
}

// event builds a bus message the way the CDC engine does.
func event(op string, lsn uint64, before, after *row) bus.Message {
	raw := func(r *row) json.RawMessage {
		if r == nil {
			return json.RawMessage("null")
		}
		b, _ := json.Marshal(r)
		return b
	}
	snapshot := "false"
	if op == change.OpRead {
		snapshot = "true"
	}
	env := change.Envelope{Before: raw(before), After: raw(after), Op: op, TsMs: time.Now().UnixMilli(),
		Transaction: json.RawMessage("null"),
		Source: change.Source{Connector: "postgresql", Name: "cdc", TsMs: time.Now().UnixMilli(), Snapshot: snapshot,
			Schema: "documents", Table: "documents", LSN: lsn}}
	v, _ := json.Marshal(env)
	id := ""
	if after != nil {
		id = after.ID
	} else if before != nil {
		id = before.ID
	}
	k, _ := json.Marshal(change.Key{ID: id})
	return bus.Message{Topic: bus.TopicDocuments, Key: k, Value: v, Time: time.Now(),
		Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(lsn, 10), bus.HeaderOp: op}}
}

type fixture struct {
	idx   *bleve.Index
	blobs *blob.Bucket
	x     *Indexer
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	idx, err := bleve.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	b, err := blob.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir()), ContentBucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &fixture{idx: idx, blobs: b, x: New(idx, nil, b.Bucket, cfg, logging.Discard())}
}

func (f *fixture) put(t *testing.T, key, content string) {
	t.Helper()
	if err := f.blobs.WriteAll(context.Background(), key, []byte(content), nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) handle(t *testing.T, msgs ...bus.Message) {
	t.Helper()
	if err := f.x.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) titles(t *testing.T, q string) []string {
	t.Helper()
	r, err := f.idx.Search(context.Background(), search.Query{Text: q, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, h := range r.Hits {
		out = append(out, h.Title)
	}
	slices.Sort(out)
	return out
}

func TestEventsKeepTheIndexEqualToTheTable(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	a, b, c := newRow("a", "Sales Agreement"), newRow("b", "Lease Contract"), newRow("c", "Sales Memo")
	incomplete := newRow("d", "Draft Sales Plan")
	incomplete.S3Key = nil
	complete := newRow("d", "Draft Sales Plan")
	a2 := a
	a2.Title, a2.Status, a2.Version = "Sales Agreement Final", "signed", 2

	steps := []struct {
		name  string
		msgs  []bus.Message
		query string
		want  []string
	}{
		{"snapshot rows are indexed", []bus.Message{event("r", 10, nil, &a), event("r", 10, nil, &b)}, "sales", []string{"Sales Agreement"}},
		{"an insert is indexed", []bus.Message{event("c", 20, nil, &c)}, "sales", []string{"Sales Agreement", "Sales Memo"}},
		{"a row without s3_key is skipped", []bus.Message{event("c", 30, nil, &incomplete)}, "draft", []string{}},
		{"its later complete version is indexed", []bus.Message{event("u", 40, &incomplete, &complete)}, "draft", []string{"Draft Sales Plan"}},
		{"an update replaces the document", []bus.Message{event("u", 50, &a, &a2)}, "final", []string{"Sales Agreement Final"}},
		{"a delete removes it", []bus.Message{event("d", 60, &c, nil)}, "memo", []string{}},
		{"a redelivered old batch changes nothing", []bus.Message{event("r", 10, nil, &a), event("c", 20, nil, &c)}, "sales",
			[]string{"Draft Sales Plan", "Sales Agreement Final"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.handle(t, s.msgs...)
			if got := f.titles(t, s.query); !slices.Equal(got, s.want) {
				t.Fatalf("titles for %q = %v, want %v", s.query, got, s.want)
			}
		})
	}
	if n, _ := f.idx.Count(context.Background()); n != 3 {
		t.Fatalf("count = %d, want 3 (a, b, d)", n)
	}
}

func TestReadersAreIndexedAndAReadersOnlyChangeUpdatesThem(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.put(t, "a/content", "the zephyr merger")
	alice := "user:alice"
	a := newRow("a", "Merger Plan")
	a.Owner, a.Readers = &alice, []string{alice}
	shared := a
	shared.Readers = []string{alice, "group:legal"} // same version, same updated_at
	sees := func(keys ...string) int64 {
		t.Helper()
		r, err := f.idx.Search(context.Background(), search.Query{Text: "zephyr", Size: 10, Access: search.ReadersOf(keys)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Total
	}
	f.handle(t, event("c", 10, nil, &a))
	if sees(alice) != 1 || sees("group:legal") != 0 || sees("user:bob") != 0 {
		t.Fatal("after the insert only the owner may find it")
	}
	f.handle(t, event("u", 20, &a, &shared))
	if sees("group:legal") != 1 || sees(alice) != 1 {
		t.Fatal("the share (a readers-only update) did not reach the index")
	}
	f.handle(t, event("u", 30, &shared, &a))
	if sees("group:legal") != 0 || sees(alice) != 1 {
		t.Fatal("the revocation did not reach the index")
	}
	// A redelivery of the share (older LSN) must not bring it back.
	f.handle(t, event("u", 20, &a, &shared))
	if sees("group:legal") != 0 {
		t.Fatal("a redelivered share brought the revoked reader back")
	}
}

// A signing request's state reaches the index with the document's own
// change event (documents.signing_status, kept by migration 00021's
// trigger): filterable, and carried by the hit.
func TestSigningStatusIsIndexedFromTheDocumentsEvent(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	a := newRow("a", "Lease Agreement")
	sent, declined := "sent", "declined"
	out := a
	out.SigningStatus = &sent
	ended := a
	ended.SigningStatus = &declined
	find := func(state string) []string {
		t.Helper()
		r, err := f.idx.Search(context.Background(), search.Query{Text: "lease", SigningStatus: state, Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range r.Hits {
			got = append(got, h.ID+"="+h.SigningStatus)
		}
		return got
	}
	f.handle(t, event("c", 10, nil, &a), event("u", 20, &a, &out))
	if got := find("sent"); !slices.Equal(got, []string{"a=sent"}) {
		t.Fatalf("signing_status=sent finds %v", got)
	}
	f.handle(t, event("u", 30, &out, &ended))
	if got, gone := find("declined"), find("sent"); !slices.Equal(got, []string{"a=declined"}) || len(gone) != 0 {
		t.Fatalf("after the decline: declined %v, sent %v", got, gone)
	}
}

func TestTextContentIsIndexedUpToTheCap(t *testing.T) {
	f := newFixture(t, with(func(c *Config) { c.ContentCap = 64 }))
	text := newRow("t", "Notes")
	pdf := newRow("p", "Scan")
	pdf.ContentType = "application/pdf"
	missing := newRow("m", "Lost")
	f.put(t, "t/content", "the quarterly indemnification clause"+strings.Repeat(" filler", 10)+" hippopotamus")
	f.put(t, "p/content", "indemnification")
	f.handle(t, event("c", 1, nil, &text), event("c", 2, nil, &pdf), event("c", 3, nil, &missing))

	cases := []struct {
		query, why string
		want       []string
	}{
		{"indemnification", "text/* content is searchable; other types are not read", []string{"Notes"}},
		{"hippopotamus", "content past the cap is not indexed", []string{}},
		{"lost", "a missing blob still indexes the row", []string{"Lost"}},
	}
	for _, c := range cases {
		if got := f.titles(t, c.query); !slices.Equal(got, c.want) {
			t.Errorf("%s: titles for %q = %v, want %v", c.why, c.query, got, c.want)
		}
	}
}

func TestUndecodableEventsAreDroppedNotRetried(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	a := newRow("a", "Alpha")
	f.handle(t, bus.Message{Topic: bus.TopicDocuments, Value: []byte("{not json"), Time: time.Now()}, event("c", 5, nil, &a))
	if got := f.titles(t, "alpha"); !slices.Equal(got, []string{"Alpha"}) {
		t.Fatalf("titles = %v", got)
	}
}

// flaky fails its first n Apply calls, like a backend that is down.
type flaky struct {
	search.Index
	failures atomic.Int32
}

func (f *flaky) Apply(ctx context.Context, ops []search.Op) (search.BulkResult, error) {
	if f.failures.Add(-1) >= 0 {
		return search.BulkResult{}, errors.New("connection refused")
	}
	return f.Index.Apply(ctx, ops)
}

func TestWritesAreRetriedWithBackoff(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	fl := &flaky{Index: f.idx}
	fl.failures.Store(3)
	x := New(fl, nil, nil, with(func(c *Config) { c.RetryFor = time.Minute }), logging.Discard())
	a := newRow("a", "Alpha")
	if err := x.HandleBatch(context.Background(), []bus.Message{event("c", 5, nil, &a)}); err != nil {
		t.Fatal(err)
	}
	if got := f.titles(t, "alpha"); !slices.Equal(got, []string{"Alpha"}) {
		t.Fatalf("titles = %v", got)
	}

	t.Run("past RetryFor the batch goes back to the bus", func(t *testing.T) {
		fl.failures.Store(1000)
		x := New(fl, nil, nil, with(func(c *Config) { c.RetryFor = 250 * time.Millisecond }), logging.Discard())
		b := newRow("b", "Beta")
		if err := x.HandleBatch(context.Background(), []bus.Message{event("c", 6, nil, &b)}); err == nil {
			t.Fatal("HandleBatch succeeded with the index down")
		}
	})
}

func watermark(lsn uint64, stored time.Time) bus.Message {
	v, _ := json.Marshal(change.Watermark{LSN: lsn, TsMs: stored.UnixMilli()})
	return bus.Message{Topic: bus.TopicWatermarks, Value: v, Time: stored}
}

func TestWatermarksBecomeTheAppliedLSN(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, with(func(c *Config) { c.MaxWait = 50 * time.Millisecond }))
	// Stored a second ago: the watermarks the subtests store "now" are
	// later than every event here, however fast the test runs.
	t0 := time.Now().Add(-time.Second)
	a, b := newRow("a", "Alpha"), newRow("b", "Beta")
	ea := event("c", 100, nil, &a)
	ea.Time = t0
	eb := event("c", 300, nil, &b)
	eb.Time = t0.Add(2 * time.Millisecond)
	if err := f.x.HandleWatermarks(ctx, []bus.Message{watermark(200, t0.Add(time.Millisecond))}); err != nil {
		t.Fatal(err)
	}

	f.handle(t, ea)
	if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 0 {
		t.Fatalf("applied = %d before anything stored after the watermark was applied", lsn)
	}
	f.handle(t, eb)
	if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 0 {
		t.Fatalf("applied = %d while cdc.extractions has not passed the watermark (nor idled past it)", lsn)
	}
	ex := extractionEvent("a", "pending", 310)
	ex.Time = t0.Add(3 * time.Millisecond)
	if err := f.x.HandleExtractions(ctx, []bus.Message{ex}); err != nil {
		t.Fatal(err)
	}
	if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 200 {
		t.Fatalf("applied = %d, want 200 once both consumers applied a message stored after it", lsn)
	}

	t.Run("an idle indexer trusts a watermark after the grace", func(t *testing.T) {
		if err := f.x.HandleWatermarks(ctx, []bus.Message{watermark(400, time.Now())}); err != nil {
			t.Fatal(err)
		}
		f.x.promote(ctx)
		if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 200 {
			t.Fatalf("applied = %d before the grace", lsn)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			f.x.promote(ctx)
			if lsn, _ := f.idx.AppliedLSN(ctx); lsn == 400 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("watermark 400 never applied while idle")
	})

	t.Run("not while the last batch failed", func(t *testing.T) {
		fl := &flaky{Index: f.idx}
		fl.failures.Store(1000)
		x := New(fl, nil, nil, with(func(c *Config) { c.MaxWait = 20 * time.Millisecond; c.RetryFor = time.Millisecond }), logging.Discard())
		x.applied = 400
		c := newRow("c", "Gamma")
		_ = x.HandleBatch(ctx, []bus.Message{event("c", 450, nil, &c)})
		_ = x.HandleWatermarks(ctx, []bus.Message{watermark(500, time.Now())})
		time.Sleep(200 * time.Millisecond) // well past the 140ms grace
		x.promote(ctx)
		if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 400 {
			t.Fatalf("applied = %d while the batch before the watermark is not indexed", lsn)
		}
	})
}

// countingIndex counts the operations written per document.
type countingIndex struct {
	search.Index
	mu  sync.Mutex
	ops map[string]int
}

func (c *countingIndex) Apply(ctx context.Context, ops []search.Op) (search.BulkResult, error) {
	res, err := c.Index.Apply(ctx, ops)
	if err == nil {
		c.mu.Lock()
		for _, op := range ops {
			c.ops[op.ID]++
		}
		c.mu.Unlock()
	}
	return res, err
}

func (c *countingIndex) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[id]
}

func TestRepeatedEventsOnTheBusAreDroppedByLSN(t *testing.T) {
	f := newFixture(t, with(func(c *Config) { c.MaxWait = 20 * time.Millisecond }))
	idx := &countingIndex{Index: f.idx, ops: map[string]int{}}
	// A short duplicate window, so the copies published below are stored,
	// as after a CDC restart later than the window.
	const window = 100 * time.Millisecond
	b, err := busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: t.TempDir(), NoListen: true,
		Options: busnats.Options{Duplicates: window}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	f.x = New(idx, b, f.blobs.Bucket, with(func(c *Config) { c.MaxWait = 20 * time.Millisecond }), logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	a1, a2, late, last := newRow(uuid.NewString(), "alpha"), newRow(uuid.NewString(), "bravo"), newRow(uuid.NewString(), "charlie"), newRow(uuid.NewString(), "delta")
	at := func(m bus.Message, commit uint64) bus.Message {
		m.Headers[bus.HeaderCommitLSN] = strconv.FormatUint(commit, 10)
		return m
	}
	lateEvent := at(event(change.OpCreate, 150, nil, &late), 150)
	lateEvent.Headers[bus.HeaderLate] = "true"
	publish := func(msgs ...bus.Message) {
		t.Helper()
		if err := b.Publish(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	publish(at(event(change.OpCreate, 100, nil, &a1), 100), at(event(change.OpCreate, 200, nil, &a2), 200))
	testenv.WaitFor(t, "both rows indexed", func() bool { return idx.count(a2.ID) == 1 })
	time.Sleep(3 * window)
	// The CDC engine publishing both again after a restart (another
	// position, same topic, lsn and key), and an event it published late.
	publish(at(event(change.OpCreate, 100, nil, &a1), 100), at(event(change.OpCreate, 200, nil, &a2), 200), lateEvent,
		at(event(change.OpCreate, 300, nil, &last), 300))
	testenv.WaitFor(t, "the last row indexed", func() bool { return idx.count(last.ID) == 1 })
	if n1, n2 := idx.count(a1.ID), idx.count(a2.ID); n1 != 1 || n2 != 1 {
		t.Errorf("repeated events reached the index: %d and %d writes, want 1 each", n1, n2)
	}
	if idx.count(late.ID) != 1 {
		t.Errorf("the late event was dropped as a repeat (%d writes)", idx.count(late.ID))
	}
	if got := f.titles(t, "charlie"); !slices.Equal(got, []string{"charlie"}) {
		t.Errorf("search charlie = %v", got)
	}
}

// with is the default configuration changed by f.
func with(f func(c *Config)) Config {
	c := DefaultConfig()
	f(&c)
	return c
}

// extractionEvent is a documents.extractions change as the CDC engine
// encodes it.
func extractionEvent(id, status string, lsn uint64) bus.Message {
	after, _ := json.Marshal(map[string]any{"document_id": id, "content_sha256": strings.Repeat("a", 64), "status": status})
	env := change.Envelope{Before: json.RawMessage("null"), After: after, Op: change.OpUpdate, TsMs: time.Now().UnixMilli(),
		Transaction: json.RawMessage("null"),
		Source: change.Source{Connector: "postgresql", Name: "cdc", TsMs: time.Now().UnixMilli(), Snapshot: "false",
			Schema: "documents", Table: "extractions", LSN: lsn}}
	v, _ := json.Marshal(env)
	k, _ := json.Marshal(map[string]string{"document_id": id})
	return bus.Message{Topic: bus.TopicExtractions, Key: k, Value: v, Time: time.Now(),
		Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(lsn, 10), bus.HeaderOp: change.OpUpdate}}
}

func TestExtractedTextIsIndexedWithTheDocumentAndKeptByLaterChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, DefaultConfig())
	d := newRow("pdf1", "Quarterly report")
	d.ContentType = "application/pdf"
	alice := "user:alice"
	d.Owner, d.Readers = &alice, []string{alice, "group:legal"}
	f.put(t, "pdf1/content", "%PDF-1.4 binary that must never be indexed as text")
	f.handle(t, event("c", 100, nil, &d))
	if got := f.titles(t, "binary"); len(got) != 0 {
		t.Fatalf("the raw PDF was indexed: %v", got)
	}

	// Pending and failed extractions change nothing.
	if err := f.x.HandleExtractions(ctx, []bus.Message{extractionEvent("pdf1", "pending", 150), extractionEvent("pdf1", "failed", 160)}); err != nil {
		t.Fatal(err)
	}
	f.put(t, "pdf1/text", "the platypus clause on page two")
	if err := f.x.HandleExtractions(ctx, []bus.Message{extractionEvent("pdf1", "done", 200)}); err != nil {
		t.Fatal(err)
	}
	if got := f.titles(t, "platypus"); !slices.Equal(got, []string{"Quarterly report"}) {
		t.Fatalf("search platypus = %v, want the PDF", got)
	}
	r, err := f.idx.Search(ctx, search.Query{Text: "platypus", Size: 1})
	if err != nil || len(r.Hits) != 1 || !strings.Contains(strings.Join(r.Hits[0].Highlights["content"], ""), "<mark>platypus</mark>") {
		t.Fatalf("no content highlight: %+v %v", r.Hits, err)
	}
	if r.Hits[0].ContentType != "application/pdf" || r.Hits[0].CreatedBy != "john@company.com" {
		t.Fatalf("the other fields were not kept: %+v", r.Hits[0].Document)
	}
	// Its readers too: the access filter still lets them, and only them, see it.
	for keys, want := range map[string]int{"group:legal": 1, "user:alice": 1, "user:mallory": 0} {
		r, err := f.idx.Search(ctx, search.Query{Text: "platypus", Size: 1, Access: search.ReadersOf([]string{keys})})
		if err != nil || len(r.Hits) != want {
			t.Fatalf("reader %s finds %d, want %d (%v)", keys, len(r.Hits), want, err)
		}
	}

	// A later title change re-reads the extracted text: the words stay.
	d.Title, d.Version = "Quarterly report v2", 2
	f.handle(t, event("u", 300, nil, &d))
	if got := f.titles(t, "platypus"); !slices.Equal(got, []string{"Quarterly report v2"}) {
		t.Fatalf("after an update, search platypus = %v", got)
	}
	// A replayed (older) extraction event is stale.
	f.put(t, "pdf1/text", "an older text about wombats")
	if err := f.x.HandleExtractions(ctx, []bus.Message{extractionEvent("pdf1", "done", 200)}); err != nil {
		t.Fatal(err)
	}
	if got := f.titles(t, "wombats"); len(got) != 0 {
		t.Fatalf("a stale extraction event was applied: %v", got)
	}
	// An extraction of a deleted document does not bring it back.
	f.handle(t, event("d", 400, &d, nil))
	if err := f.x.HandleExtractions(ctx, []bus.Message{extractionEvent("pdf1", "done", 500)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.idx.Count(ctx); n != 0 {
		t.Fatalf("count = %d after delete and a late extraction", n)
	}
}

// Markdown is not indexed raw from its content (link targets, markup and
// raw HTML would be searchable words): the extractor turns it into text,
// which is indexed when its extraction is done. Plain text stays on the
// direct path.
func TestMarkdownIsIndexedFromItsExtractedTextNotItsSource(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, DefaultConfig())
	md := newRow("md1", "Notes")
	md.ContentType = "text/markdown; charset=utf-8"
	f.put(t, "md1/content", "# Wombat notes\n\nSee [the burrow](https://hiddenhost.example/tunnel) and <span class=\"secretclass\">x</span>.")
	txt := newRow("txt1", "Plain")
	f.put(t, "txt1/content", "plain quokka words")
	f.handle(t, event("c", 100, nil, &md))
	f.handle(t, event("c", 110, nil, &txt))
	for _, q := range []string{"wombat", "hiddenhost", "secretclass"} {
		if got := f.titles(t, q); len(got) != 0 {
			t.Fatalf("search %s = %v before the extraction: the Markdown source was indexed", q, got)
		}
	}
	if got := f.titles(t, "quokka"); !slices.Equal(got, []string{"Plain"}) {
		t.Fatalf("search quokka = %v, want the plain text indexed from its content", got)
	}
	f.put(t, "md1/text", "Wombat notes\nSee the burrow and x.\n")
	if err := f.x.HandleExtractions(ctx, []bus.Message{extractionEvent("md1", "done", 200)}); err != nil {
		t.Fatal(err)
	}
	if got := f.titles(t, "burrow"); !slices.Equal(got, []string{"Notes"}) {
		t.Fatalf("search burrow = %v, want the Markdown's extracted text", got)
	}
	if got := f.titles(t, "hiddenhost"); len(got) != 0 {
		t.Fatalf("search hiddenhost = %v: a link target was indexed", got)
	}
}

// askingBus is a bus that says every group has caught up, counting the
// times it is asked.
type askingBus struct {
	bus.Bus
	asked atomic.Int64
}

func (b *askingBus) GroupCaughtUp(context.Context, string, string) (bool, error) {
	b.asked.Add(1)
	return true, nil
}

// A batch's end promotes by order and idleness only: the bus cannot say
// the batch's own stream caught up before the batch is acknowledged, so
// only the ticker's promote asks it (and then trusts its word).
func TestOnlyTheTickerAsksTheBusWhetherAGroupCaughtUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, DefaultConfig())
	b := &askingBus{}
	x := New(f.idx, b, f.blobs.Bucket, with(func(c *Config) { c.IdleGrace = time.Hour }), logging.Discard())
	a := newRow("a", "Alpha")
	ea := event("c", 100, nil, &a)
	ea.Time = time.Now().Add(-time.Second)
	if err := x.HandleWatermarks(ctx, []bus.Message{watermark(200, time.Now())}); err != nil {
		t.Fatal(err)
	}
	if err := x.HandleBatch(ctx, []bus.Message{ea}); err != nil {
		t.Fatal(err)
	}
	if n := b.asked.Load(); n != 0 {
		t.Fatalf("the batch's end asked the bus %d times", n)
	}
	if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 0 {
		t.Fatalf("applied = %d with nothing stored after the watermark, no word from the bus and no idleness", lsn)
	}
	x.promote(ctx)
	if n := b.asked.Load(); n != int64(len(streamTopics)) {
		t.Fatalf("the ticker's promote asked the bus %d times, want once per stream (%d)", n, len(streamTopics))
	}
	if lsn, _ := f.idx.AppliedLSN(ctx); lsn != 200 {
		t.Fatalf("applied = %d, want 200 on the bus's word", lsn)
	}
}
