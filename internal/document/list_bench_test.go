package document

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
)

// BenchmarkListCPU serves GET /documents (pages of 100, as `docstream bench
// list` asks: half first pages, half the page after a cursor seen earlier)
// over 5,000 documents shaped as `docstream bench load` writes them, at 64
// concurrent clients. Its figure is cpu-µs/req (see runParallelAt).
// Issue 16.
func BenchmarkListCPU(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, content_type, content_size, s3_key,
			status, created_by, created_at, updated_at, version, content_sha256, owner, readers)
		SELECT id, 'Quarterly sales agreement ' || i || ' for region ' || (i % 17), 'text/plain; charset=utf-8',
			1024 + i % 4096, id || '/content', (ARRAY['created','sent','signed','completed'])[1 + i % 4],
			'user' || (i % 100) || '@company.com', timestamptz '2025-01-01' + i * interval '1 minute',
			timestamptz '2025-06-01' + i * interval '1 second', 1 + i % 3, md5(i::text) || md5((i + 1)::text),
			'user:u' || (i % 100), ARRAY['user:u' || (i % 100)]
		FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(1, 5000) AS i) s`); err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE documents.documents"); err != nil {
		b.Fatal(err)
	}
	first := e.srv.URL + "/documents?limit=100"
	resp, err := benchClient.Get(first)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	cursor := resp.Header.Get(NextCursorHeader)
	if resp.StatusCode != 200 || cursor == "" {
		b.Fatalf("first page: status %d, cursor %q", resp.StatusCode, cursor)
	}
	next := first + "&cursor=" + url.QueryEscape(cursor)
	var n atomic.Uint64
	runParallelAt(b, 32, func() error { // 64 clients on 2 cores
		if n.Add(1)%2 == 0 {
			return get(next)
		}
		return get(first)
	})
}
