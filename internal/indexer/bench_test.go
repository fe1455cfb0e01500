package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corpus "github.com/docstream/docstream/internal/bench"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/indexer"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/testenv"
)

var words = []string{"agreement", "contract", "lease", "sales", "invoice", "policy", "report", "memo", "proposal", "quarterly",
	"annual", "terms", "renewal", "tenant", "employee", "vendor", "supply", "service", "license", "partnership"}

func phrase(r *rand.Rand, n int) string {
	b := make([]byte, 0, n*10)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, words[r.IntN(len(words))]...)
	}
	return string(b)
}

// syntheticEvent is a CDC insert event for row i, as the engine encodes it.
func syntheticEvent(r *rand.Rand, i int, lsn uint64) bus.Message {
	now := change.FormatTime(time.Now())
	id := fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
	key := id + "/content"
	ct := "application/pdf"
	size := int64(1000)
	after, _ := json.Marshal(change.Document{ID: id, Title: phrase(r, 4) + " " + strconv.Itoa(i), ContentType: &ct, ContentSize: &size,
		S3Key: &key, Status: []string{"created", "sent", "signed", "archived"}[i%4], CreatedBy: fmt.Sprintf("user%d@company.com", i%50),
		CreatedAt: &now, UpdatedAt: &now})
	env, _ := json.Marshal(change.Envelope{Before: json.RawMessage("null"), After: after, Op: "c", TsMs: time.Now().UnixMilli(),
		Transaction: json.RawMessage("null"), Source: change.Source{Snapshot: "false", LSN: lsn, TsMs: time.Now().UnixMilli()}})
	return bus.Message{Topic: bus.TopicDocuments, Value: env, Time: time.Now(), Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(lsn, 10)}}
}

// BenchmarkIndexingThroughput feeds batches of 500 insert events to the
// indexer's batch handler over an on-disk Bleve index (durable batches).
func BenchmarkIndexingThroughput(b *testing.B) {
	idx, err := bleve.Open(filepath.Join(b.TempDir(), "index"))
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	x := indexer.New(idx, nil, nil, indexer.DefaultConfig(), logging.Discard())
	r := rand.New(rand.NewPCG(1, 2))
	const batch = 500
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		msgs := make([]bus.Message, batch)
		for i := range msgs {
			k := n*batch + i
			msgs[i] = syntheticEvent(r, k, uint64(k+1))
		}
		b.StartTimer()
		if err := x.HandleBatch(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCommitToSearchable writes rows at a steady rate through the whole
// pipeline (PostgreSQL -> CDC -> NATS -> indexer -> Bleve) and measures, per
// write, from the commit returning to the indexer's applied LSN covering it
// (what read-your-writes waits for: the row is searchable).
func BenchmarkCommitToSearchable(b *testing.B) {
	s := newStack(b)
	s.startCDC(b)
	idx, _ := s.startIndexer(b)
	const rate = 50 // writes per second
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		<-tick.C
		_, lsn := s.insert(b, fmt.Sprintf("Latency probe %d", n), "", "created")
		committed := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				applied, _ := idx.AppliedLSN(context.Background())
				if applied >= lsn {
					break
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			lats = append(lats, time.Since(committed))
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(pct(lats, 50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(lats, 99).Microseconds())/1000, "p99_ms")
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)]
}

var (
	bigIndexOnce sync.Once
	bigIndex     *bleve.Index
	bigBuild     time.Duration
)

// BenchmarkSearch100k runs searches (two words, fuzzy, one filter on half
// of them) against an on-disk Bleve index of 100,000 documents, built once
// per run through the indexer (its build time is reported).
func BenchmarkSearch100k(b *testing.B) {
	const docs = 100_000
	bigIndexOnce.Do(func() {
		// Not b.TempDir: the index outlives this first run of the benchmark;
		// testenv removes its directory when the package's tests end.
		idx, err := bleve.Open(filepath.Join(testenv.Dir(), "bench-index-100k"))
		if err != nil {
			b.Fatal(err)
		}
		x := indexer.New(idx, nil, nil, indexer.DefaultConfig(), logging.Discard())
		r := rand.New(rand.NewPCG(3, 4))
		start := time.Now()
		for k := 0; k < docs; k += 500 {
			msgs := make([]bus.Message, 0, 500)
			for i := k; i < k+500; i++ {
				msgs = append(msgs, syntheticEvent(r, i, uint64(i+1)))
			}
			if err := x.HandleBatch(context.Background(), msgs); err != nil {
				b.Fatal(err)
			}
		}
		bigBuild = time.Since(start)
		bigIndex = idx
	})
	if n, _ := bigIndex.Count(context.Background()); n != docs {
		b.Fatalf("index holds %d documents", n)
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 5))
		var local []time.Duration
		for i := 0; pb.Next(); i++ {
			q := search.Query{Text: phrase(r, 2), Size: 10}
			if i%2 == 0 {
				q.Status = "signed"
			}
			t0 := time.Now()
			if _, err := bigIndex.Search(context.Background(), q); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	b.ReportMetric(float64(pct(lats, 50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(lats, 99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(bigBuild.Seconds(), "build_100k_s")
}

// BenchmarkIndexBuild measures building the index through the production
// path from a snapshot: BENCH_DOCS corpus documents (internal/bench) are
// in the table with their content in a file bucket before the CDC engine
// starts; the engine's snapshot publishes them as "r" events and the
// indexer reads each one's content and indexes it. Timed from the engine's
// start to the index holding every document; a progress line goes to the
// benchmark log every few seconds.
//
//	BENCH_DOCS=100000 go test -run '^$' -bench IndexBuild -benchtime 1x ./internal/indexer/
func BenchmarkIndexBuild(b *testing.B) {
	docs := 20_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_DOCS")); err == nil && v > 0 {
		docs = v
	}
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		s := newStack(b)
		loadCorpus(b, s, docs)
		idx, _ := s.startIndexer(b)
		b.StartTimer()
		start, cpu0 := time.Now(), testenv.CPUTime()
		s.startCDC(b)
		lastReport := start
		for {
			c, err := idx.Count(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if c >= int64(docs) {
				break
			}
			if time.Since(lastReport) >= 5*time.Second {
				lastReport = time.Now()
				el := time.Since(start)
				b.Logf("indexed %d/%d in %s, %.0f docs/s", c, docs, el.Round(time.Second), float64(c)/el.Seconds())
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(float64(docs)/time.Since(start).Seconds(), "docs/s")
		// The process runs the CDC engine, the embedded bus and the
		// indexer (PostgreSQL is apart): its CPU per document is what the
		// rate would be on free cores, whatever else the machine runs.
		b.ReportMetric(float64((testenv.CPUTime()-cpu0).Microseconds())/float64(docs), "cpu_µs/doc")
	}
}

// loadCorpus writes corpus documents 0…n-1 with docstream bench load's
// loader: content to the bucket, rows by COPY.
func loadCorpus(b *testing.B, s *stack, n int) {
	if _, err := corpus.Load(context.Background(), corpus.LoadOptions{DatabaseURL: s.URL, BlobURL: s.blobURL, Documents: n}); err != nil {
		b.Fatal(err)
	}
}
