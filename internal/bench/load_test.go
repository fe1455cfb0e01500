package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"

	blobstore "github.com/docstream/docstream/internal/blob"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestLoadWritesRowsAndTheirContent: every row the loader COPYs is a
// document the services can serve: its content in the bucket under its
// s3_key with the recorded size and SHA-256, the corpus's title, creator
// and created_at.
func TestLoadWritesRowsAndTheirContent(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	blobURL := "file://" + filepath.ToSlash(t.TempDir())
	var progress strings.Builder
	res, err := Load(ctx, LoadOptions{DatabaseURL: dbURL, BlobURL: blobURL, Documents: 1234, From: 10, Batch: 500, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != 1234 || !strings.Contains(progress.String(), "loaded 1234/1234 documents") {
		t.Fatalf("%+v, progress %q", res, progress.String())
	}
	pool, err := postgres.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	bucket, err := blobstore.Open(ctx, blobURL, "documents")
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	rows, err := pool.Query(ctx, `SELECT title, created_by, status, s3_key, content_size, content_sha256, created_at, owner, readers,
		(SELECT array_agg(grantee || ':' || level) FROM documents.shares WHERE document_id = d.id)
		FROM documents.documents d ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i, shares := 10, 0
	for ; rows.Next(); i++ {
		var title, by, status, key, sum, owner string
		var size int64
		var at any
		var readers, grants []string
		if err := rows.Scan(&title, &by, &status, &key, &size, &sum, &at, &owner, &readers, &grants); err != nil {
			t.Fatal(err)
		}
		d := Document(i)
		if title != d.Title || by != d.CreatedBy || status != d.Status || owner != d.Owner || !slices.Equal(readers, d.Readers()) {
			t.Fatalf("row %d: %q %q %q %q %v, want %+v", i, title, by, status, owner, readers, d)
		}
		if d.SharedWith != "" {
			shares++
		}
		if want := []string{d.SharedWith + ":view"}; d.SharedWith != "" && !slices.Equal(grants, want) || d.SharedWith == "" && grants != nil {
			t.Fatalf("row %d: shares %v, want one to %q", i, grants, d.SharedWith)
		}
		if i%100 == 0 {
			b, err := bucket.ReadAll(ctx, key)
			h := sha256.Sum256(b)
			if err != nil || string(b) != d.Content || int64(len(b)) != size || hex.EncodeToString(h[:]) != sum {
				t.Fatalf("content of row %d: %v %q", i, err, b)
			}
		}
	}
	if i != 10+1234 || shares == 0 || res.Shares != shares {
		t.Fatalf("%d rows, %d shared (the load counted %d)", i-10, shares, res.Shares)
	}
}

// TestLoadWaitsForTheIndex: with a search URL the loader waits until the
// index's status buckets grew by the documents it added.
func TestLoadWaitsForTheIndex(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// 5 documents before the load, then the index catches up.
		n := min(5+int(calls.Add(1)-1)*40, 5+100)
		w.Write([]byte(`{"field":"status","values":[{"key":"created","count":` + strconv.Itoa(n-2) + `},{"key":"signed","count":2}]}`))
	}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadOptions{DatabaseURL: testenv.Database(t), BlobURL: "file://" + filepath.ToSlash(t.TempDir()),
		Documents: 100, SearchURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if res.Indexed != 100 || res.IndexTimedOut || res.IndexRate <= 0 {
		t.Fatalf("%+v", res)
	}
}

// BenchmarkLoad is the loader alone (no change stream, no indexer):
// BENCH_DOCS corpus documents (default 20,000) into a fresh database and
// file bucket, reported as docs/s and as the loader's own CPU per
// document (PostgreSQL's COPY work is in its own processes): on a shared
// machine the wall rate is whatever CPU share the loader gets, the CPU per
// document what it would need of free cores.
//
//	BENCH_DOCS=100000 go test -run '^$' -bench Load -benchtime 1x ./internal/bench/
func BenchmarkLoad(b *testing.B) {
	docs := 20_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_DOCS")); err == nil && v > 0 {
		docs = v
	}
	for range b.N {
		b.StopTimer()
		dbURL, blobURL := testenv.Database(b), "file://"+filepath.ToSlash(b.TempDir())
		b.StartTimer()
		cpu0 := testenv.CPUTime()
		res, err := Load(context.Background(), LoadOptions{DatabaseURL: dbURL, BlobURL: blobURL, Documents: docs})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.LoadRate, "docs/s")
		b.ReportMetric(float64((testenv.CPUTime()-cpu0).Microseconds())/float64(docs), "cpu_µs/doc")
	}
}
