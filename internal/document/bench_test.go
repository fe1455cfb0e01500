package document

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// Benchmarks run with `make bench`. Each hot path is measured beside its
// floor on the same machine in the same run: GET (cache hit) beside a bare
// net/http handler returning the same bytes; POST beside raw single-row
// INSERT commits with pgx. 32 concurrent clients (SetParallelism(16) on 2
// cores); p50/p99 reported per request.

const benchParallelism = 16

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// latencies collects per-request durations from parallel goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	q := func(p float64) float64 { return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func runParallel(b *testing.B, op func() error) {
	runParallelAt(b, benchParallelism, op)
}

// runParallelAt runs op from parallelism × GOMAXPROCS clients and reports
// latency percentiles, req/s and cpu-µs/req: this process's user+system
// time per op (server and client; PostgreSQL is another process), which
// compares across machine load where wall time does not.
func runParallelAt(b *testing.B, parallelism int, op func() error) {
	var lat latencies
	b.SetParallelism(parallelism)
	b.ResetTimer()
	cpu0 := testenv.CPUTime()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
	b.ReportMetric(float64((testenv.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

func get(url string) error {
	resp, err := benchClient.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return &statusErr{resp.StatusCode}
	}
	return nil
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return http.StatusText(e.code) }

func BenchmarkGetDocumentCacheHit(b *testing.B) {
	e := newEnv(b)
	d := e.create(b, "Benchmark document", strings.Repeat("x", 1024))
	url := e.srv.URL + "/documents/" + d.ID
	if err := get(url); err != nil { // warm the cache
		b.Fatal(err)
	}
	runParallel(b, func() error { return get(url) })
}

// GET answered by the in-process cache, its change stream running as in
// docstream dev: no Redis round trip, the answer's bytes cached.
func BenchmarkGetDocumentLocalCacheHit(b *testing.B) {
	p := cdctest.Start(b)
	e := newEnvWith(b, p.URL, noProxies())
	l := NewLocalCache(1000, 3*time.Second, logging.Discard())
	e.svc.SetLocalCache(l)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() { _ = l.Run(ctx, p.Bus, e.svc.store.FlushedLSN) }()
	for !l.fresh(time.Now()) {
		time.Sleep(10 * time.Millisecond)
	}
	d := e.create(b, "Benchmark document", strings.Repeat("x", 1024))
	url := e.srv.URL + "/documents/" + d.ID
	for l.get(d.ID, 0) == nil { // fill it once the create's event has passed
		if err := get(url); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runParallel(b, func() error { return get(url) })
}

func BenchmarkFloorBareHTTPHandler(b *testing.B) {
	e := newEnv(b)
	d := e.create(b, "Benchmark document", strings.Repeat("x", 1024))
	body, _ := json.Marshal(d)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	runParallel(b, func() error { return get(srv.URL) })
}

// BenchmarkCreateDocument1KiB is a create whose content is synced before
// its commit (no content journal: --document-content-journal-max 0).
func BenchmarkCreateDocument1KiB(b *testing.B) {
	benchCreate(b, newEnv(b))
}

// A create whose content is journalled with its row (the default), the
// journal's flusher syncing the blobs in the background as in production.
func BenchmarkCreateDocument1KiBJournal(b *testing.B) {
	e := newEnv(b)
	e.svc.SetContentJournal(64 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	var flusher sync.WaitGroup
	flusher.Go(func() { _ = e.svc.Journal().Run(ctx, JournalFlushEvery) })
	b.Cleanup(func() { cancel(); flusher.Wait() })
	benchCreate(b, e)
}

// The ceiling of any way of making content durable other than its own
// fsyncs: the create with its blob's fsyncs skipped (not durable).
func BenchmarkCreateDocument1KiBNoBlobSync(b *testing.B) {
	e := newEnv(b)
	e.bucket.SetFsync(func(string) error { return nil })
	benchCreate(b, e)
}

func benchCreate(b *testing.B, e *env) {
	body, _ := json.Marshal(map[string]string{"title": "Benchmark", "content": strings.Repeat("x", 1024), "created_by": "bench@company.com"})
	runParallel(b, func() error {
		resp, err := benchClient.Post(e.srv.URL+"/documents", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			return &statusErr{resp.StatusCode}
		}
		return nil
	})
}

// The floor for POST: one INSERT of the same row shape per commit, from the
// same pool settings, no HTTP, no blob, no hashing.
func BenchmarkFloorRawInsertCommit(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	runParallel(b, func() error {
		id, _ := uuid.NewV7()
		_, err := e.pool.Exec(ctx, `INSERT INTO documents.documents
			(id, title, content_type, content_size, s3_key, status, created_by, content_sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id.String(), "Benchmark", "text/plain", 1024, id.String()+"/content", "created", "bench@company.com", strings.Repeat("0", 64))
		return err
	})
}

// The floor as pgbench measures it: the same one-row INSERT (prepared,
// one commit each) from 32 pgbench clients on the same PostgreSQL, in the
// same run. The figure is pgbench's tps (without connection time), also
// reported as req/s; ns/op is meaningless here (pgbench runs 3 s per
// b.N round).
func BenchmarkFloorPgbenchInsert(b *testing.B) {
	pgbench, err := localstack.PostgresBinary("pgbench")
	if err != nil {
		b.Skip("pgbench not installed:", err)
	}
	url := testenv.Database(b)
	script := filepath.Join(b.TempDir(), "insert.sql")
	if err := os.WriteFile(script, []byte(`INSERT INTO documents.documents
	(id, title, content_type, content_size, s3_key, status, created_by, content_sha256)
	VALUES (gen_random_uuid(), 'Benchmark', 'text/plain', 1024, gen_random_uuid()::text || '/content', 'created', 'bench@company.com', repeat('0', 64));
`), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var tps float64
	for range b.N {
		out, err := exec.Command(pgbench, "-n", "-M", "prepared", "-c", "32", "-j", "2", "-T", "3", "-f", script, url).CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("no tps in pgbench's output:\n%s", out)
		}
		tps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	b.ReportMetric(tps, "req/s")
}

// The floor under a Redis cache hit (the in-process cache bypassed): one
// GET round trip and the entry's decoding, as Cache.Get does, without HTTP.
func BenchmarkFloorRedisPipelineRoundTrip(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	d := e.create(b, "Benchmark document", strings.Repeat("x", 1024))
	if err := get(e.srv.URL + "/documents/" + d.ID); err != nil { // cache it
		b.Fatal(err)
	}
	runParallel(b, func() error {
		if e.svc.cache.Get(ctx, d.ID) == nil {
			return &statusErr{404}
		}
		return nil
	})
}

// benchAccessEnv is the service behind a middleware that puts a fixed
// principal on every request (no parsing: what is measured is the
// service's access decisions, not token verification, which the auth
// package benchmarks), in mode m.
func benchAccessEnv(b *testing.B, m auth.Mode, p auth.Principal) *env {
	e := newEnv(b)
	e.svc.SetMode(m)
	h := NewServer(e.svc, noProxies(), logging.Discard())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	}))
	b.Cleanup(srv.Close)
	e.srv = srv
	return e
}

var benchOwner = auth.Principal{Kind: auth.KindUser, Subject: "owner", Email: "owner@company.com", EmailVerified: true, Groups: []string{"sales", "emea"}}

// GET cache hit with the principal on the request: open mode (nothing
// checked) against required mode (the readers check in Go).
func BenchmarkAccessGetCacheHit(b *testing.B) {
	for _, m := range []auth.Mode{auth.ModeOpen, auth.ModeRequired} {
		b.Run(string(m), func(b *testing.B) {
			e := benchAccessEnv(b, m, benchOwner)
			d := e.create(b, "Benchmark document", strings.Repeat("x", 1024))
			url := e.srv.URL + "/documents/" + d.ID
			if err := get(url); err != nil { // warm the cache
				b.Fatal(err)
			}
			runParallel(b, func() error { return get(url) })
		})
	}
}

// GET /documents?limit=100 over 20,000 documents of 100 owners, each
// shared with one of 7 groups: open mode (every document) against
// required mode for a caller who may view 200 of them (own) plus 1/7 of
// the rest (a group share), the readers && $keys filter on the GIN index.
func BenchmarkAccessList(b *testing.B) {
	for _, m := range []auth.Mode{auth.ModeOpen, auth.ModeRequired} {
		b.Run(string(m), func(b *testing.B) {
			caller := auth.Principal{Kind: auth.KindUser, Subject: "u7", Groups: []string{"g3"}}
			e := benchAccessEnv(b, m, caller)
			ctx := context.Background()
			if _, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, owner, readers)
				SELECT gen_random_uuid(), 'doc ' || i, 'created', 'user' || (i % 100) || '@company.com',
					timestamptz '2025-01-01' + i * interval '1 minute', now(),
					'user:u' || (i % 100), ARRAY['user:u' || (i % 100), 'group:g' || (i % 7)]
				FROM generate_series(1, 20000) AS i`); err != nil {
				b.Fatal(err)
			}
			if _, err := e.pool.Exec(ctx, "ANALYZE documents.documents"); err != nil {
				b.Fatal(err)
			}
			url := e.srv.URL + "/documents?limit=100"
			runParallel(b, func() error { return get(url) })
		})
	}
}
