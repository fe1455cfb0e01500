package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/postgres"
)

// LoadOptions configure Load.
type LoadOptions struct {
	DatabaseURL string // PostgreSQL (directly: COPY)
	BlobURL     string // the document service's object storage (--blob-url)
	Documents   int    // how many corpus documents to add
	From        int    // the corpus number of the first
	Batch       int    // rows per COPY transaction; 0: 5,000
	Workers     int    // concurrent content writes; 0: 16
	// SearchURL, when set, is the search service: after loading, Load
	// waits until the index holds the new documents (the sum of
	// /aggregations/status), reporting the index build rate.
	SearchURL string
	Progress  io.Writer // a live progress line; nil: none
}

// LoadResult is what Load did.
type LoadResult struct {
	Documents     int           `json:"documents"`
	Load          time.Duration `json:"load_ns"`
	LoadRate      float64       `json:"load_docs_per_s"`
	Indexed       int64         `json:"indexed,omitempty"`       // documents the index gained
	IndexWait     time.Duration `json:"index_wait_ns,omitempty"` // from the first row's commit to all indexed
	IndexRate     float64       `json:"index_docs_per_s,omitempty"`
	IndexTimedOut bool          `json:"index_timed_out,omitempty"`
}

// Load adds corpus documents From … From+Documents-1 as real documents:
// each one's content written to object storage first (as the document
// service does, so that the indexer finds it), then the rows in batches
// of COPY, each batch one transaction. The change stream captures the
// rows like any insert, and the indexer indexes them with their content.
// Content is not fsynced: this is test data, and a crash mid-load leaves
// at most unreferenced blobs (the blob sweeper removes them).
func Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	var res LoadResult
	pool, err := postgres.Open(ctx, o.DatabaseURL, 4)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	bucket, err := blobstore.Open(ctx, o.BlobURL, "documents")
	if err != nil {
		return res, err
	}
	defer bucket.Close()

	var before int64
	if o.SearchURL != "" {
		if before, err = indexedCount(ctx, o.SearchURL); err != nil {
			return res, fmt.Errorf("search service at %s: %w", o.SearchURL, err)
		}
	}
	start := time.Now()
	progress := func(done int, final bool) {
		if o.Progress == nil {
			return
		}
		el := time.Since(start)
		fmt.Fprintf(o.Progress, "\rloaded %d/%d documents in %s, %.0f docs/s   ", done, o.Documents, el.Round(time.Second), float64(done)/el.Seconds())
		if final {
			fmt.Fprintln(o.Progress)
		}
	}
	tick := time.Now()
	for k := 0; k < o.Documents; k += o.Batch {
		n := min(o.Batch, o.Documents-k)
		rows := make([][]any, n)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Workers)
		for j := range n {
			i := o.From + k + j
			d := Document(i)
			id, err := uuid.NewV7()
			if err != nil {
				return res, err
			}
			sum := sha256.Sum256([]byte(d.Content))
			key := id.String() + "/content"
			at := CreatedAt(i)
			rows[j] = []any{id, d.Title, "text/plain", int64(len(d.Content)), key, d.Status, d.CreatedBy, at, at, int32(1), hex.EncodeToString(sum[:])}
			g.Go(func() error {
				return bucket.WriteAll(gctx, key, []byte(d.Content), &blob.WriterOptions{ContentType: "text/plain"})
			})
		}
		if err := g.Wait(); err != nil {
			return res, fmt.Errorf("write content: %w", err)
		}
		_, err := pool.CopyFrom(ctx, pgx.Identifier{"documents", "documents"},
			[]string{"id", "title", "content_type", "content_size", "s3_key", "status", "created_by", "created_at", "updated_at", "version", "content_sha256"},
			pgx.CopyFromRows(rows))
		if err != nil {
			return res, postgres.Error(err, "copy documents")
		}
		res.Documents += n
		if time.Since(tick) >= time.Second {
			progress(res.Documents, false)
			tick = time.Now()
		}
	}
	res.Load = time.Since(start)
	res.LoadRate = float64(res.Documents) / res.Load.Seconds()
	progress(res.Documents, true)
	if o.SearchURL == "" {
		return res, nil
	}

	// The index build rate: from the load's start (the first batch was
	// captured as soon as it committed) until the index holds them all.
	deadline := time.Now().Add(max(5*time.Minute, time.Duration(o.Documents)*time.Millisecond))
	for {
		n, err := indexedCount(ctx, o.SearchURL)
		if err == nil {
			res.Indexed = n - before
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "\rindexed %d/%d documents in %s   ", res.Indexed, o.Documents, time.Since(start).Round(time.Second))
		}
		if res.Indexed >= int64(o.Documents) || time.Now().After(deadline) {
			res.IndexTimedOut = res.Indexed < int64(o.Documents)
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}
	res.IndexWait = time.Since(start)
	res.IndexRate = float64(res.Indexed) / res.IndexWait.Seconds()
	return res, nil
}

// indexedCount is how many documents the index holds: the sum of the
// status aggregation's buckets (exact, unlike a search's total).
func indexedCount(ctx context.Context, searchURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(searchURL, "/")+"/aggregations/status?size=100", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /aggregations/status: %s", resp.Status)
	}
	var body struct {
		Values []struct {
			Count int64 `json:"count"`
		} `json:"values"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	var n int64
	for _, v := range body.Values {
		n += v.Count
	}
	return n, nil
}
