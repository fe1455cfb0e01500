package indexer_test

// End to end: real PostgreSQL (wal_level=logical) -> CDC engine -> embedded
// NATS JetStream -> indexer -> Bleve -> search HTTP service.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/indexer"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is the real pipeline plus what the indexer reads: a content
// bucket and the directory of its index.
type stack struct {
	*cdctest.Pipeline
	blobs    *blob.Bucket
	blobURL  string // the blob base URL blobs was opened from
	indexDir string
}

// newStack makes the database, bus and bucket; the CDC engine starts with
// startCDC, so that a test can first write rows it then gets as a snapshot.
func newStack(t testing.TB) *stack {
	t.Helper()
	s := &stack{Pipeline: cdctest.New(t), blobURL: "file://" + filepath.ToSlash(t.TempDir()), indexDir: filepath.Join(t.TempDir(), "index")}
	var err error
	if s.blobs, err = blob.Open(context.Background(), s.blobURL, indexer.ContentBucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.blobs.Close() })
	return s
}

// startCDC runs the engine until the test ends and waits until it streams.
func (s *stack) startCDC(t testing.TB) {
	t.Helper()
	s.StartEngine(t, s.Config(), s.Bus)
}

// startIndexer opens the Bleve index and runs an indexer on it; stop ends
// both (the index is closed, as a process exit would).
func (s *stack) startIndexer(t testing.TB, opts ...func(*indexer.Config)) (idx *bleve.Index, stop func()) {
	t.Helper()
	idx, err := bleve.Open(s.indexDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := indexer.DefaultConfig()
	cfg.MaxWait = 50 * time.Millisecond
	for _, o := range opts {
		o(&cfg)
	}
	x := indexer.New(idx, s.Bus, s.blobs.Bucket, cfg, logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := x.Run(ctx); err != nil {
			t.Errorf("indexer: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; idx.Close() }) }
	t.Cleanup(stop)
	return idx, stop
}

// insert adds a row (and its content blob) and returns its id and the WAL
// position after the commit, as the document service's X-Commit-LSN does.
func (s *stack) insert(t testing.TB, title, content, status string) (id string, lsn uint64) {
	t.Helper()
	ctx := context.Background()
	if err := s.Pool.QueryRow(ctx, "SELECT gen_random_uuid()::text").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if content != "" {
		if err := s.blobs.WriteAll(ctx, id+"/content", []byte(content), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.exec(t, `INSERT INTO documents.documents (id, title, content_type, content_size, s3_key, status, created_by)
		VALUES ($1, $2, 'text/plain', $3, $4, $5, 'john.doe@company.com')`, id, title, len(content), id+"/content", status)
	return id, s.walLSN(t)
}

// exec runs sql and returns the WAL position after it.
func (s *stack) exec(t testing.TB, sql string, args ...any) uint64 {
	t.Helper()
	s.Exec(t, sql, args...)
	return s.walLSN(t)
}

func (s *stack) walLSN(t testing.TB) uint64 {
	t.Helper()
	var lsn uint64
	// As a write's X-Commit-LSN is read (postgres.WALPositionSQL).
	if err := s.Pool.QueryRow(context.Background(), "SELECT ("+postgres.WALPositionSQL+" - '0/0')::bigint").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

type searchBody struct {
	Total     int64 `json:"total"`
	Stale     bool  `json:"stale"`
	Documents []struct {
		ID         string              `json:"id"`
		Title      string              `json:"title"`
		Status     string              `json:"status"`
		Highlights map[string][]string `json:"highlights"`
	} `json:"documents"`
	Suggestions []string        `json:"suggestions"`
	Values      []search.Bucket `json:"values"`
}

func getJSON(t testing.TB, u string) searchBody {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	var b searchBody
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func titles(b searchBody) []string {
	out := []string{}
	for _, d := range b.Documents {
		out = append(out, d.Title)
	}
	sort.Strings(out)
	return out
}

func TestEndToEnd(t *testing.T) {
	s := newStack(t)
	// Rows that exist before CDC starts arrive as a snapshot (op r).
	s.insert(t, "Old Lease Agreement", "The tenant shall pay rent monthly.", "archived")
	s.insert(t, "Old Sales Contract", "Quarterly sales terms.", "signed")
	s.startCDC(t)
	idx, _ := s.startIndexer(t)
	srv := httptest.NewServer(search.NewServer(idx, searchConfig(5*time.Second), logging.Discard()))
	t.Cleanup(srv.Close)
	find := func(q string, minLSN uint64) searchBody {
		return getJSON(t, fmt.Sprintf("%s/search?q=%s&min_lsn=%d", srv.URL, url.QueryEscape(q), minLSN))
	}

	t.Run("snapshot rows are searchable", func(t *testing.T) {
		testenv.WaitFor(t, "snapshot indexed", func() bool { return find("old", 0).Total == 2 })
	})

	var id string
	t.Run("a new row is searchable by its content, read-your-writes", func(t *testing.T) {
		var lsn uint64
		id, lsn = s.insert(t, "Sales Agreement Q4 2025", "This agreement outlines the indemnification terms.", "created")
		b := find("indemnification", lsn)
		if b.Stale || b.Total != 1 || b.Documents[0].ID != id {
			t.Fatalf("search right after the commit (min_lsn=%d): %+v", lsn, b)
		}
		if hl := b.Documents[0].Highlights["content"]; len(hl) == 0 {
			t.Fatalf("no content highlight: %+v", b.Documents[0])
		}
	})

	t.Run("an update is searchable, the old title is gone", func(t *testing.T) {
		lsn := s.exec(t, "UPDATE documents.documents SET title = 'Sales Agreement Q4 2025 (final)', status = 'signed', version = version + 1 WHERE id = $1", id)
		b := find("final", lsn)
		if b.Stale || b.Total != 1 || b.Documents[0].Status != "signed" {
			t.Fatalf("after update: %+v", b)
		}
	})

	t.Run("fuzzy match finds a misspelt word", func(t *testing.T) {
		if b := find("agrement", 0); !slices.Contains(titles(b), "Sales Agreement Q4 2025 (final)") {
			t.Fatalf("fuzzy: %v", titles(b))
		}
	})

	t.Run("facets count by status", func(t *testing.T) {
		b := getJSON(t, srv.URL+"/aggregations/status")
		want := []search.Bucket{{Key: "signed", Count: 2}, {Key: "archived", Count: 1}}
		if !slices.Equal(b.Values, want) {
			t.Fatalf("status facets = %v, want %v", b.Values, want)
		}
	})

	t.Run("suggest completes title prefixes", func(t *testing.T) {
		b := getJSON(t, srv.URL+"/suggest?q=sal")
		if !slices.Equal(b.Suggestions, []string{"Sales Agreement Q4 2025 (final)"}) {
			t.Fatalf("suggestions = %v", b.Suggestions)
		}
	})

	t.Run("a deleted row is no longer searchable", func(t *testing.T) {
		lsn := s.exec(t, "DELETE FROM documents.documents WHERE id = $1", id)
		if b := find("indemnification", lsn); b.Stale || b.Total != 0 {
			t.Fatalf("after delete: %+v", b)
		}
	})

	t.Run("a row without content yet is skipped until it has one", func(t *testing.T) {
		var nid string
		if err := s.Pool.QueryRow(context.Background(), "SELECT gen_random_uuid()::text").Scan(&nid); err != nil {
			t.Fatal(err)
		}
		lsn := s.exec(t, "INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 'Pending Upload', 'x')", nid)
		if b := find("pending", lsn); b.Total != 0 {
			t.Fatalf("incomplete row indexed: %+v", b)
		}
		lsn = s.exec(t, "UPDATE documents.documents SET s3_key = $1 WHERE id = $2", nid+"/content", nid)
		if b := find("pending", lsn); b.Stale || b.Total != 1 {
			t.Fatalf("completed row not indexed: %+v", b)
		}
	})
}

// TestIndexerRestartMidStreamConverges stops the indexer while a writer is
// busy, keeps writing, starts a new one on the same index directory and
// checks the index equals the table.
func TestIndexerRestartMidStreamConverges(t *testing.T) {
	s := newStack(t)
	s.startCDC(t)
	idx, stop := s.startIndexer(t)

	ctx, cancel := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	var written atomic.Int64
	var writeErr error
	go func() {
		defer close(writerDone)
		// Rows without content blobs: the indexer then indexes no content.
		for i := 0; ctx.Err() == nil && i < 600; i++ {
			var id string
			err := s.Pool.QueryRow(ctx, `INSERT INTO documents.documents (id, title, s3_key, status, created_by)
				VALUES (gen_random_uuid(), $1, 'k', $2, 'w') RETURNING id::text`, fmt.Sprintf("Doc %d", i), []string{"created", "sent", "signed"}[i%3]).Scan(&id)
			switch {
			case err != nil:
			case i%5 == 1:
				_, err = s.Pool.Exec(ctx, "UPDATE documents.documents SET status = 'approved' WHERE id = $1", id)
			case i%5 == 2:
				_, err = s.Pool.Exec(ctx, "DELETE FROM documents.documents WHERE id = $1", id)
			}
			if err != nil {
				writeErr = err
				return
			}
			written.Add(1)
		}
	}()
	testenv.WaitFor(t, "some documents indexed", func() bool { n, _ := idx.Count(context.Background()); return n >= 50 })
	stop() // mid-stream: the writer keeps going
	testenv.WaitFor(t, "more writes while the indexer is down", func() bool { return written.Load() >= 300 })

	idx, _ = s.startIndexer(t)
	<-writerDone
	cancel()
	if writeErr != nil {
		t.Fatal(writeErr)
	}

	// The table, as the index should hold it.
	want := map[string]int64{}
	var total int64
	rows, err := s.Pool.Query(context.Background(), "SELECT status, count(*) FROM documents.documents WHERE s3_key IS NOT NULL GROUP BY status")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		want[st], total = n, total+n
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	// Messages the stopped indexer had fetched but not acknowledged come
	// back only after the bus's ack wait (1 minute on JetStream), so
	// convergence can take that long; the applied LSN may run ahead of them
	// meanwhile (see the package comment).
	start := time.Now()
	testenv.WaitForWithin(t, 3*time.Minute, "the index holds every row of the table", func() bool {
		n, _ := idx.Count(context.Background())
		return n == total
	})
	t.Logf("converged %v after the writer finished", time.Since(start).Round(time.Millisecond))
	buckets, err := idx.Terms(context.Background(), "status", "", 20, search.Everything)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, b := range buckets {
		got[b.Key] = b.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("index by status %v, table %v", got, want)
	}
}

// searchConfig is the search service's default configuration with another
// MaxWait.
func searchConfig(maxWait time.Duration) search.Config {
	c := search.DefaultConfig()
	c.MaxWait = maxWait
	return c
}

// TestAQuietTopicDoesNotHoldBackReadYourWrites commits one document while
// cdc.extractions carries nothing, with an idle grace far longer than the
// test: its watermark can only be applied because the bus says both of
// the indexer's consumers have handled everything stored before it.
func TestAQuietTopicDoesNotHoldBackReadYourWrites(t *testing.T) {
	s := newStack(t)
	s.startCDC(t)
	idx, _ := s.startIndexer(t, func(c *indexer.Config) { c.IdleGrace = time.Hour })
	_, lsn := s.insert(t, "Quiet topics", "nothing on cdc.extractions", "created")
	testenv.WaitFor(t, "the commit applied", func() bool {
		applied, err := idx.AppliedLSN(context.Background())
		return err == nil && applied >= lsn
	})
}
