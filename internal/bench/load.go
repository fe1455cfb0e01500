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
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
	Batch       int    // rows per COPY transaction; 0: 10,000
	Workers     int    // concurrent content writes; 0: 32
	// SearchURL, when set, is the search service: after loading, Load
	// waits until the index holds the new documents (the sum of
	// /aggregations/status), reporting the index build rate.
	SearchURL string
	// IndexTimeout bounds that wait; 0: 5 minutes or 1 ms per document,
	// whichever is longer.
	IndexTimeout time.Duration
	Progress     io.Writer // a live progress line; nil: none
}

// LoadResult is what Load did.
type LoadResult struct {
	Documents     int           `json:"documents"`
	Shares        int           `json:"shares"`
	Load          time.Duration `json:"load_ns"`
	LoadRate      float64       `json:"load_docs_per_s"`
	Indexed       int64         `json:"indexed,omitempty"`       // documents the index gained
	IndexWait     time.Duration `json:"index_wait_ns,omitempty"` // from the first row's commit to all indexed
	IndexRate     float64       `json:"index_docs_per_s,omitempty"`
	IndexTimedOut bool          `json:"index_timed_out,omitempty"`
}

// loadBatch is one COPY transaction's documents: their content, then
// their rows and shares.
type loadBatch struct {
	keys, contents []string
	rows, shares   [][]any
}

var (
	documentColumns = []string{"id", "title", "content_type", "content_size", "s3_key", "status", "created_by",
		"created_at", "updated_at", "version", "content_sha256", "owner", "readers"}
	shareColumns = []string{"document_id", "grantee", "level", "created_by", "created_at"}
)

// Load adds corpus documents From … From+Documents-1 as real documents:
// each one's content written to object storage first (as the document
// service does, so that the indexer finds it), then the rows, with their
// owner, readers and shares, in batches of COPY, each batch one
// transaction. The change stream captures the rows like any insert (or
// snapshots them, when its slot is created after the load), and the
// indexer indexes them with their content.
//
// The three stages run at once on consecutive batches: while one batch's
// rows are COPYed, the next one's content is written and the one after is
// generated. Durability is batched over the whole load: content files are
// written without an fsync each (blob.Bucket.WriteUnsynced: fileblob's
// layout without its temporary file), and Load returns (reports done)
// only after one sync of the file system made them all durable
// (blob.Bucket.SyncAll). Until then a power loss can take content whose
// row is committed, which the document service never allows: this is a
// benchmark corpus, to be loaded again into a fresh system after a crash.
// One sync per batch instead kept that rule but cost seconds per batch on
// a shared disk (a file system sync also writes everything else dirty).
func Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if o.Batch <= 0 {
		o.Batch = 10_000
	}
	if o.Workers <= 0 {
		o.Workers = 32
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
	var done atomic.Int64
	stopProgress := progress(o.Progress, "loaded", int64(o.Documents), start, done.Load)

	g, gctx := errgroup.WithContext(ctx)
	generated, written := make(chan *loadBatch, 1), make(chan *loadBatch, 1)
	g.Go(func() error {
		defer close(generated)
		for k := 0; k < o.Documents; k += o.Batch {
			b, err := corpusBatch(o.From+k, min(o.Batch, o.Documents-k))
			if err != nil {
				return err
			}
			select {
			case generated <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(written)
		for b := range generated {
			w, wctx := errgroup.WithContext(gctx)
			w.SetLimit(o.Workers)
			for j, key := range b.keys {
				w.Go(func() error {
					return bucket.WriteUnsynced(wctx, key, []byte(b.contents[j]), "text/plain")
				})
			}
			if err := w.Wait(); err != nil {
				return fmt.Errorf("write content: %w", err)
			}
			select {
			case written <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		for b := range written {
			err := pgx.BeginFunc(gctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.CopyFrom(gctx, pgx.Identifier{"documents", "documents"}, documentColumns, pgx.CopyFromRows(b.rows)); err != nil {
					return err
				}
				_, err := tx.CopyFrom(gctx, pgx.Identifier{"documents", "shares"}, shareColumns, pgx.CopyFromRows(b.shares))
				return err
			})
			if err != nil {
				return postgres.Error(err, "copy documents")
			}
			res.Shares += len(b.shares)
			done.Add(int64(len(b.rows)))
		}
		return nil
	})
	err = g.Wait()
	if err == nil {
		if err = bucket.SyncAll(); err != nil {
			err = fmt.Errorf("sync content: %w", err)
		}
	}
	stopProgress()
	res.Documents = int(done.Load())
	res.Load = time.Since(start)
	res.LoadRate = float64(res.Documents) / res.Load.Seconds()
	if err != nil {
		return res, err
	}
	if o.SearchURL == "" {
		return res, nil
	}

	// The index build rate: from the load's start (the first batch was
	// captured as soon as it committed) until the index holds them all.
	timeout := o.IndexTimeout
	if timeout <= 0 {
		timeout = max(5*time.Minute, time.Duration(o.Documents)*time.Millisecond)
	}
	n, err := WaitIndexed(ctx, o.SearchURL, before+int64(o.Documents), time.Now().Add(timeout), o.Progress)
	res.Indexed = n - before
	res.IndexTimedOut = res.Indexed < int64(o.Documents)
	res.IndexWait = time.Since(start)
	res.IndexRate = float64(res.Indexed) / res.IndexWait.Seconds()
	return res, err
}

// corpusBatch generates documents from … from+n-1: their content keys and
// content, their rows (documentColumns) and their shares (shareColumns).
func corpusBatch(from, n int) (*loadBatch, error) {
	b := &loadBatch{keys: make([]string, n), contents: make([]string, n), rows: make([][]any, n)}
	for j := range n {
		i := from + j
		d := Document(i)
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(d.Content))
		b.keys[j], b.contents[j] = id.String()+"/content", d.Content
		at := CreatedAt(i)
		b.rows[j] = []any{id, d.Title, "text/plain", int64(len(d.Content)), b.keys[j], d.Status, d.CreatedBy,
			at, at, int32(1), hex.EncodeToString(sum[:]), d.Owner, d.Readers()}
		if d.SharedWith != "" {
			b.shares = append(b.shares, []any{id, d.SharedWith, "view", d.Owner, at})
		}
	}
	return b, nil
}

// WaitIndexed waits until the search service's index holds want documents
// or deadline passes, with a progress line (rate and time left), and
// returns the last count it read. The search service may not
// answer yet (a system still starting): that counts as 0 until it does.
func WaitIndexed(ctx context.Context, searchURL string, want int64, deadline time.Time, w io.Writer) (int64, error) {
	start := time.Now()
	var n atomic.Int64
	base, _ := indexedCount(ctx, searchURL)
	n.Store(base)
	stop := progress(w, "indexed", want-base, start, func() int64 { return n.Load() - base })
	defer stop()
	for n.Load() < want && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return n.Load(), ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if c, err := indexedCount(ctx, searchURL); err == nil {
			n.Store(c)
		}
	}
	return n.Load(), nil
}

// progress prints "<verb> done/total" with the rate and the time left,
// counted from start, once a second until the returned stop is called,
// which prints the final line. (schollz/progressbar, the CLI's bar for
// uploads, derives its rate from the gaps between increments, which a
// count moving by whole batches makes meaningless.)
func progress(w io.Writer, verb string, total int64, start time.Time, done func() int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	line := func() {
		n, el := done(), time.Since(start)
		rate := float64(n) / el.Seconds()
		left := "?"
		if rate > 0 {
			left = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(w, "\r%s %d/%d documents in %s, %.0f docs/s, %s left   ", verb, n, total, el.Round(time.Second), rate, left)
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line()
			case <-quit:
				line()
				fmt.Fprintln(w)
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
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
