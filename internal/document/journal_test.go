package document

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob/memblob"

	"github.com/docstream/docstream/api"
	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/testenv"
)

// journalEnv is newEnvWith with the content journal on (its flusher not
// running: each test runs or flushes it), its fsyncs recorded by l.
func journalEnv(t *testing.T, dbURL string) (*env, *syncLog) {
	e := newEnvWith(t, dbURL, noProxies())
	e.svc.SetContentJournal(64 << 10)
	l := &syncLog{}
	e.bucket.SetFsync(l.fsync)
	return e, l
}

// contentPath is where a document's content lies in e's bucket.
func (e *env) contentPath(id string) string {
	return filepath.Join(e.blobs, Bucket, filepath.FromSlash(ContentKey(id)))
}

// journalled is the content journal: its entries' bytes by key.
func (e *env) journalled(t *testing.T) map[string][]byte {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT key, bytes FROM documents.content_journal`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var b []byte
		if err := rows.Scan(&k, &b); err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// content is the body of GET /documents/{id}/content.
func (e *env) content(t *testing.T, id string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/documents/" + id + "/content")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// syncedContentOf says whether l synced the content of document id, its sidecar
// and the directory holding them.
func (l *syncLog) syncedContentOf(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var content string
	for _, p := range l.synced {
		if strings.HasSuffix(p, "/"+ContentKey(id)) {
			content = p
		}
	}
	return content != "" && slices.Contains(l.synced, content+".attrs") && slices.Contains(l.synced, filepath.ToSlash(filepath.Dir(content)))
}

// A create acknowledged with its content journalled, whose blob a power
// loss then lost or tore (its fsync never ran), is whole again after a
// restart: recovery, before the service answers, rewrites the blob from the
// journal byte for byte, syncs it and deletes the entry.
func TestRecoveryRestoresJournalledContentAPowerLossLost(t *testing.T) {
	cases := []struct {
		name string
		lose func(path string) error
	}{
		{"its directory is gone", func(p string) error { return os.RemoveAll(filepath.Dir(p)) }},
		{"its file is gone", func(p string) error { return os.Remove(p) }},
		{"its file is torn", func(p string) error { return os.Truncate(p, 100) }},
		{"its file is empty", func(p string) error { return os.Truncate(p, 0) }},
		{"its sidecar is empty", func(p string) error { return os.Truncate(p+".attrs", 0) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, l := journalEnv(t, testDB(t))
			content := strings.Repeat("the terms of the agreement, ", 40)
			d := e.create(t, "Journalled", content)
			if l.syncedContentOf(d.ID) {
				t.Fatal("the create waited for its blob's fsync: the journal was not used")
			}
			if got := e.journalled(t)[ContentKey(d.ID)]; string(got) != content {
				t.Fatalf("journal holds %d bytes for the acknowledged create; want its %d bytes", len(got), len(content))
			}
			if err := tc.lose(e.contentPath(d.ID)); err != nil {
				t.Fatal(err)
			}

			restarted := newEnvAt(t, e.dbURL, e.blobs, noProxies())
			rl := &syncLog{}
			restarted.bucket.SetFsync(rl.fsync)
			n, err := restarted.svc.Journal().Recover(context.Background())
			if err != nil || n != 1 {
				t.Fatalf("recover: rewrote %d (%v); want 1", n, err)
			}
			code, got := restarted.content(t, d.ID)
			if code != http.StatusOK || string(got) != content {
				t.Fatalf("after recovery: %d, %d bytes; want 200 and the %d bytes acknowledged", code, len(got), len(content))
			}
			if !rl.syncedContentOf(d.ID) {
				t.Error("recovery did not sync the rewritten blob before deleting its entry")
			}
			if j := restarted.journalled(t); len(j) != 0 {
				t.Errorf("%d journal entries left after recovery", len(j))
			}
		})
	}
}

// A journal entry whose bytes are not those its sha256 names is never
// written over a blob: recovery leaves the blob (here torn) as it is, and
// the document's content is not replaced by bytes it never had.
func TestRecoveryNeverWritesAnEntryWhoseBytesDoNotMatchItsSum(t *testing.T) {
	e, _ := journalEnv(t, testDB(t))
	content := strings.Repeat("the terms of the agreement, ", 40)
	d := e.create(t, "Journalled", content)
	if err := os.Truncate(e.contentPath(d.ID), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE documents.content_journal SET bytes = 'forged' WHERE key = $1`, ContentKey(d.ID)); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Journal().Recover(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("recover: rewrote %d (%v); want 0 and no error", n, err)
	}
	got, err := os.ReadFile(e.contentPath(d.ID))
	if err != nil || string(got) != content[:100] {
		t.Fatalf("blob after recovery: %q, %v; want the torn 100 bytes left as they were", got, err)
	}
	if j := e.journalled(t); len(j) != 0 {
		t.Errorf("%d journal entries left after recovery", len(j))
	}
}

// Recovery leaves a whole blob as it is: it syncs it and deletes the entry.
func TestRecoveryKeepsAWholeBlob(t *testing.T) {
	e, l := journalEnv(t, testDB(t))
	d := e.create(t, "Journalled", "whole")
	n, err := e.svc.Journal().Recover(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("recover: rewrote %d (%v); want 0", n, err)
	}
	if !l.syncedContentOf(d.ID) || len(e.journalled(t)) != 0 {
		t.Fatal("recovery did not settle the entry of a whole blob")
	}
}

// The flusher syncs journalled blobs in the background and then empties
// the journal; at shutdown a last Flush settles what came after its last
// round.
func TestTheJournalFlusherSyncsBlobsThenDeletesTheirEntries(t *testing.T) {
	e, l := journalEnv(t, testDB(t))
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { _ = e.svc.Journal().Run(ctx, 20*time.Millisecond) })
	stop := func() { cancel(); run.Wait() }
	t.Cleanup(stop)

	docs := make([]Document, 8)
	var wg sync.WaitGroup
	for i := range docs {
		wg.Go(func() { docs[i] = e.create(t, "Flushed", strings.Repeat("x", 1024)) })
	}
	wg.Wait()
	testenv.WaitFor(t, "the journal to empty", func() bool { return len(e.journalled(t)) == 0 })
	for _, d := range docs {
		if !l.syncedContentOf(d.ID) {
			t.Errorf("entry of %s deleted, its blob never synced", d.ID)
		}
	}

	stop()
	last := e.create(t, "After the last round", "shutdown")
	if len(e.journalled(t)) != 1 {
		t.Fatal("the create after the flusher stopped is not journalled")
	}
	if err := e.svc.Journal().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.syncedContentOf(last.ID) || len(e.journalled(t)) != 0 {
		t.Fatal("the shutdown flush did not settle the last entry")
	}
}

// A flush whose fsync fails keeps its entries and writes their blobs again
// from the journal: after a failed fsync the page cache may hold what the
// disk never got, and a second fsync would not say so.
func TestAFailedFlushSyncRewritesTheBlobsFromTheJournal(t *testing.T) {
	e, l := journalEnv(t, testDB(t))
	d := e.create(t, "Journalled", "kept through a failed sync")
	var fails atomic.Int32
	fails.Store(1)
	e.bucket.SetFsync(func(p string) error {
		if fails.Add(-1) >= 0 {
			return errors.New("injected fsync failure")
		}
		return l.fsync(p)
	})
	before, err := os.Stat(e.contentPath(d.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Journal().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(e.contentPath(d.ID))
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Error("the blob whose sync failed was synced again, not rewritten")
	}
	if code, got := e.content(t, d.ID); code != http.StatusOK || string(got) != "kept through a failed sync" {
		t.Fatalf("content after the rewrite: %d %q", code, got)
	}
	if !l.syncedContentOf(d.ID) || len(e.journalled(t)) != 0 {
		t.Fatal("the rewritten blob was not settled")
	}

	// A sync that keeps failing keeps the entry.
	d = e.create(t, "Journalled", "kept")
	e.bucket.SetFsync(func(string) error { return errors.New("injected fsync failure") })
	if err := e.svc.Journal().Flush(context.Background()); err == nil {
		t.Fatal("a flush whose syncs all failed succeeded")
	}
	if _, ok := e.journalled(t)[ContentKey(d.ID)]; !ok {
		t.Fatal("the entry of a blob that was never synced was deleted")
	}
}

// An entry commits with its row or not at all: a create PostgreSQL
// refused, or an idempotent repeat answered from the first create, leaves
// no entry (and no blob) behind.
func TestAFailedOrReplayedCreateLeavesNoJournalEntry(t *testing.T) {
	e, _ := journalEnv(t, testDB(t))
	ctx := context.Background()
	first, err := e.svc.Upload(ctx, "text/plain", strings.NewReader("first"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Commit(ctx, first, CreateInput{Title: "first", CreatedBy: "a@company.com"}); err != nil {
		t.Fatal(err)
	}
	dup, err := e.svc.Upload(ctx, "text/plain", strings.NewReader("same id"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dup.ID = first.ID // the insert fails on the primary key
	if _, err := e.svc.Commit(ctx, dup, CreateInput{Title: "dup", CreatedBy: "a@company.com"}); err == nil {
		t.Fatal("a create with an existing id succeeded")
	}
	if ok, _ := e.bucket.Exists(ctx, dup.Key); ok {
		t.Error("the refused create kept its blob")
	}

	body := []byte(`{"title":"once","content":"once","created_by":"a@company.com"}`)
	key := uuid.NewString()
	r1, d1, _ := e.post(t, key, "application/json", body)
	r2, d2, _ := e.post(t, key, "application/json", body)
	if r1.StatusCode != http.StatusCreated || r2.StatusCode != http.StatusCreated || d1.ID != d2.ID || r2.Header.Get(api.IdempotentReplayedHeader) != "true" {
		t.Fatalf("idempotent creates: %d %s, %d %s (replayed %q)", r1.StatusCode, d1.ID, r2.StatusCode, d2.ID, r2.Header.Get(api.IdempotentReplayedHeader))
	}

	j := e.journalled(t)
	want := []string{ContentKey(first.ID), ContentKey(d1.ID)}
	for _, k := range want {
		if _, ok := j[k]; !ok {
			t.Errorf("no journal entry for the committed %s", k)
		}
	}
	if len(j) != len(want) {
		t.Errorf("journal holds %d entries; want the %d committed creates'", len(j), len(want))
	}
}

// Deleting a document deletes its journal entry with its row: no flush
// writes its content back afterwards.
func TestDeletingAJournalledDocumentDeletesItsEntry(t *testing.T) {
	e, _ := journalEnv(t, testDB(t))
	d := e.create(t, "Journalled", "short-lived")
	if resp := e.do(t, "DELETE", "/documents/"+d.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if len(e.journalled(t)) != 0 {
		t.Fatal("the deleted document's journal entry is left")
	}
	if err := e.svc.Journal().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.contentPath(d.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted document's blob is back: %v", err)
	}
}

// Content above the bound, and every create on a bucket that needs no
// sync (S3), is not journalled: the blob is synced before the commit as
// without the journal.
func TestOnlySmallContentOnAFileBucketIsJournalled(t *testing.T) {
	e, l := journalEnv(t, testDB(t))
	e.svc.SetContentJournal(1024)
	big := e.create(t, "Big", strings.Repeat("y", 1025))
	if !l.syncedContentOf(big.ID) || len(e.journalled(t)) != 0 {
		t.Fatal("content over the bound was journalled instead of synced")
	}
	small := e.create(t, "Small", strings.Repeat("y", 1024))
	if len(e.journalled(t)) != 1 || l.syncedContentOf(small.ID) {
		t.Fatal("content at the bound was not journalled")
	}

	mem := NewService(e.svc.store, blobstore.Wrap(memblob.OpenBucket(nil)), e.svc.cache, e.svc.log)
	mem.SetContentJournal(64 << 10)
	if mem.journalMax != 0 {
		t.Fatal("a bucket that needs no sync journals content")
	}
}

// The journal is not on the change stream: the publication does not
// capture it, and the create's event does not carry the content.
func TestTheContentJournalIsNotOnTheChangeStream(t *testing.T) {
	p := cdctest.Start(t)
	e, _ := journalEnv(t, p.URL)
	var tables []string
	rows, err := e.pool.Query(context.Background(), `SELECT schemaname || '.' || tablename FROM pg_publication_tables`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	if rows.Err() != nil || !slices.Contains(tables, "documents.documents") {
		t.Fatalf("publication tables %v (%v)", tables, rows.Err())
	}
	if slices.Contains(tables, "documents.content_journal") {
		t.Fatal("the publication captures documents.content_journal")
	}

	marker := "journal-" + uuid.NewString()
	d := e.create(t, "On the stream", marker)
	var mu sync.Mutex
	var seen [][]byte
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Bus.Broadcast(ctx, bus.TopicDocuments, bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, ms []bus.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				seen = append(seen, m.Value)
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, "the create's event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(seen, func(v []byte) bool { return bytes.Contains(v, []byte(d.ID)) })
	})
	mu.Lock()
	defer mu.Unlock()
	for _, v := range seen {
		if bytes.Contains(v, []byte(marker)) {
			t.Fatalf("journalled content on the change stream: %s", v)
		}
	}
}
