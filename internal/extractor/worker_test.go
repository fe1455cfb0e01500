package extractor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"gocloud.dev/blob"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
	blobstore "github.com/docstream/docstream/internal/blob"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/extract/extracttest"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// workEnv is an extractor's workers over real PostgreSQL, NATS and object
// storage, with the document service in open mode to create and delete
// documents. The extraction child is a fakeRunner the test answers, so
// what a worker does at each step is the test's choice, not the clock's.
type workEnv struct {
	bucket *blobstore.Bucket
	bus    *busnats.Bus
	docs   *document.Service
	store  *extractor.Store
}

func newWorkEnv(t *testing.T) *workEnv {
	t.Helper()
	ctx := context.Background()
	log := logging.Discard()
	pool, err := postgres.Open(ctx, testenv.Database(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	bucket, err := blobstore.Open(ctx, "file://"+filepath.ToSlash(testenv.TempDir(t)), extractor.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	ns, err := localstack.StartNATSServer(ctx, testenv.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	b, err := busnats.Connect(ctx, ns.URL(), busnats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis().Addr()})
	t.Cleanup(func() { rdb.Close() })
	docs := document.NewService(document.NewStore(pool), bucket, document.NewCache(rdb, time.Minute, log), log)
	return &workEnv{bucket: bucket, bus: b, docs: docs, store: extractor.NewStore(pool)}
}

// config is a fast-polling configuration for the tests.
func (e *workEnv) config() extractor.Config {
	cfg := extractor.DefaultConfig()
	cfg.Workers = 1
	cfg.Poll = 20 * time.Millisecond
	cfg.TempDir = "" // the system's
	return cfg
}

// create stores a document with content and queues its extraction, as the
// consumer would on its create event.
func (e *workEnv) create(t *testing.T, title, contentType string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	d, err := e.docs.Create(ctx, document.CreateInput{Title: title, ContentType: contentType, CreatedBy: "test@company.com"}, bytes.NewReader(data), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func (e *workEnv) queue(t *testing.T, x *extractor.Extractor, id string) {
	t.Helper()
	ctx := context.Background()
	d, err := e.store.Document(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	format, status := x.FormatOf(d.ContentType)
	if _, err := e.store.Enqueue(ctx, id, d.SHA256, format, status); err != nil {
		t.Fatal(err)
	}
	x.Wake()
}

func (e *workEnv) extraction(t *testing.T, id string) *api.Extraction {
	t.Helper()
	x, _, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("extraction of %s: %v", id, err)
	}
	return x
}

func (e *workEnv) waitStatus(t *testing.T, id, status string) *api.Extraction {
	t.Helper()
	var x *api.Extraction
	testenv.WaitFor(t, "the extraction of "+id+" is "+status, func() bool {
		var err error
		x, _, err = e.store.Get(context.Background(), id)
		return err == nil && x.Status == status
	})
	return x
}

func (e *workEnv) hasObject(t *testing.T, key string) bool {
	t.Helper()
	ok, err := e.bucket.Exists(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// start runs x's consumer and workers until the test ends.
func start(t *testing.T, x *extractor.Extractor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extractor: %v", err)
		}
	})
}

// fakeRunner stands in for the extraction child: each Run is handed to
// the test as a runCall, and returns what the test answers, or ctx.Err()
// once ctx is done (as the real child, whose process group is killed).
type fakeRunner struct {
	calls chan *runCall
}

type runCall struct {
	ctx   context.Context
	job   extract.Job
	reply chan runReply
}

type runReply struct {
	res extract.Result
	err error
}

func newFakeRunner() *fakeRunner { return &fakeRunner{calls: make(chan *runCall)} }

func (f *fakeRunner) Run(ctx context.Context, job extract.Job) (extract.Result, error) {
	c := &runCall{ctx: ctx, job: job, reply: make(chan runReply, 1)}
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return extract.Result{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.res, r.err
	case <-ctx.Done():
		return extract.Result{}, ctx.Err()
	}
}

// next waits for the next extraction a worker starts.
func (f *fakeRunner) next(t *testing.T) *runCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(time.Minute):
		t.Fatal("no extraction started within a minute")
		return nil
	}
}

// none reports that no extraction is being started now.
func (f *fakeRunner) none() bool {
	select {
	case c := <-f.calls:
		c.reply <- runReply{err: errors.New("unexpected extraction")}
		return false
	default:
		return true
	}
}

// done answers c as a successful extraction of words, with a thumbnail,
// writing the files a child writes.
func (c *runCall) done(t *testing.T, words string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.job.OutDir, extract.TextFile), []byte(words), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.job.OutDir, extract.ThumbFile), pngOf(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c.reply <- runReply{res: extract.Result{Status: extract.StatusDone, Kind: "pdf", Pages: 1, TextSize: int64(len(words)), Thumbnail: true}}
}

// metric is the value of a docstream metric with exactly these labels (a
// histogram's sample count), 0 when it has none yet.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !sameLabels(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// counters reads several metrics at once, to compare before and after.
type counters map[string]float64

func read(t *testing.T, names map[string]struct {
	name   string
	labels map[string]string
}) counters {
	t.Helper()
	out := counters{}
	for k, m := range names {
		out[k] = metric(t, m.name, m.labels)
	}
	return out
}

// A worker killed mid-extraction stops renewing its lease; once the lease
// has run out another worker takes the row over (attempt 2). Deleting the
// document then must stop that run at its next heartbeat — not let it run
// to its time limit — and leave no row and no derived objects; the worker
// is then free for the next document.
func TestADeletedDocumentStopsItsTakenOverExtraction(t *testing.T) {
	e := newWorkEnv(t)
	ctx := context.Background()
	cfg := e.config()
	cfg.Lease = 3 * time.Second // the minimum: a heartbeat every second
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)

	id := e.create(t, "long scan", "application/pdf", extracttest.PDF("Numbat"))
	e.queue(t, x, id)
	// The killed worker: it claimed the row and will never renew it.
	if _, ok, err := e.store.Claim(ctx, cfg.Lease); err != nil || !ok {
		t.Fatalf("the first worker's claim: %v %v", ok, err)
	}
	start(t, x)
	run := f.next(t)
	if got := e.extraction(t, id); got.Status != api.ExtractionRunning || got.Attempts != 2 {
		t.Fatalf("the taken-over extraction: %+v, want running, attempt 2", got)
	}

	if err := e.docs.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the deleted document's extraction still runs a minute after the delete (heartbeat every second)")
	}
	if _, _, err := e.store.Get(ctx, id); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("the deleted document's extraction: %v, want not_found", err)
	}

	// The worker is free again: the next document is extracted.
	next := e.create(t, "next", "application/pdf", extracttest.PDF("Bilby"))
	e.queue(t, x, next)
	f.next(t).done(t, "Bilby")
	e.waitStatus(t, next, api.ExtractionDone)
	for _, key := range []string{extractor.TextKey(id), extractor.ThumbKey(id)} {
		if e.hasObject(t, key) {
			t.Errorf("%s exists after its document was deleted", key)
		}
	}
}

// A run whose document is deleted while its child finishes stores the
// text and thumbnail after the delete's event removed the derived objects
// (the upload comes before the result is recorded). The result is not
// recorded, and the worker removes what it stored: nothing of the deleted
// document is left in object storage.
func TestARunWhoseDocumentIsDeletedMeanwhileLeavesNoDerivedObjects(t *testing.T) {
	e := newWorkEnv(t)
	ctx := context.Background()
	cfg := e.config()
	cfg.Lease = time.Hour // no heartbeat during the test: the upload path, not the stop
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	start(t, x)

	id := e.create(t, "deleted while read", "application/pdf", extracttest.PDF("Quoll"))
	e.queue(t, x, id)
	run := f.next(t)
	if err := e.docs.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	run.done(t, "Quoll")

	// The worker has finished with it once it starts the next one.
	next := e.create(t, "next", "application/pdf", extracttest.PDF("Bilby"))
	e.queue(t, x, next)
	nextRun := f.next(t)
	for _, key := range []string{extractor.TextKey(id), extractor.ThumbKey(id)} {
		if e.hasObject(t, key) {
			t.Errorf("%s exists after its document was deleted", key)
		}
	}
	nextRun.done(t, "Bilby")
	e.waitStatus(t, next, api.ExtractionDone)
	if !e.hasObject(t, extractor.TextKey(next)) {
		t.Errorf("%s missing: a live document's text was removed", extractor.TextKey(next))
	}
}

// failingReads is object storage whose next n reads of content fail.
type failingReads struct {
	*blobstore.Bucket
	n     atomic.Int32
	mu    sync.Mutex
	fails []time.Time
}

func (r *failingReads) NewReader(ctx context.Context, key string, opts *blob.ReaderOptions) (*blob.Reader, error) {
	if r.n.Add(-1) >= 0 {
		r.mu.Lock()
		r.fails = append(r.fails, time.Now())
		r.mu.Unlock()
		return nil, fmt.Errorf("read %s: connection reset by peer", key)
	}
	return r.Bucket.NewReader(ctx, key, opts)
}

// A transient failure — object storage failing a read, then the child
// unable to start (extract.ErrSandbox) — puts the extraction back with a
// backoff of 1 s, then 2 s, and the third attempt succeeds. Each retry is
// counted under reason "storage"; the success once under its format.
func TestATransientFailureIsRetriedWithBackoffUntilItSucceeds(t *testing.T) {
	e := newWorkEnv(t)
	cfg := e.config()
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	reads := &failingReads{Bucket: e.bucket}
	reads.n.Store(1)
	x.SetContentReader(reads)
	type m = struct {
		name   string
		labels map[string]string
	}
	watched := map[string]m{
		"storage": {"docstream_extractor_failures_total", map[string]string{"reason": "storage"}},
		"done":    {"docstream_extractor_extractions_total", map[string]string{"format": "pdf", "status": "done"}},
		"timed":   {"docstream_extractor_duration_seconds", map[string]string{"format": "pdf"}},
	}
	before := read(t, watched)
	start(t, x)

	id := e.create(t, "flaky", "application/pdf", extracttest.PDF("Dunnart"))
	e.queue(t, x, id)
	// Attempt 1 fails reading the content; attempt 2 reaches the child,
	// which cannot start.
	second := f.next(t)
	secondAt := time.Now()
	reads.mu.Lock()
	firstFailed := reads.fails[0]
	reads.mu.Unlock()
	if got := e.extraction(t, id); got.Attempts != 2 || got.Reason != "storage" {
		t.Fatalf("the second attempt's row: %+v, want attempt 2 after a storage failure", got)
	}
	failedAt := time.Now()
	second.reply <- runReply{err: fmt.Errorf("%w: start docstream: resource temporarily unavailable", extract.ErrSandbox)}
	third := f.next(t)
	thirdAt := time.Now()
	third.done(t, "Dunnart")
	got := e.waitStatus(t, id, api.ExtractionDone)

	// The backoff: each attempt waits its second, then two, after the
	// failure before it (lower bounds: the row is not due before then).
	if gap := secondAt.Sub(firstFailed); gap < time.Second {
		t.Errorf("attempt 2 came %v after the first failure, want ≥ 1s of backoff", gap)
	}
	if gap := thirdAt.Sub(failedAt); gap < 2*time.Second {
		t.Errorf("attempt 3 came %v after the second failure, want ≥ 2s of backoff", gap)
	}
	if got.Attempts != 3 || got.Reason != "" || got.Error != "" {
		t.Errorf("the extraction: %+v, want done at attempt 3 with no reason left", got)
	}
	if !e.hasObject(t, extractor.TextKey(id)) {
		t.Error("no text stored")
	}
	after := read(t, watched)
	for k, want := range map[string]float64{"storage": 2, "done": 1, "timed": 1} {
		if d := after[k] - before[k]; d != want {
			t.Errorf("%s %v went up by %v, want %v", watched[k].name, watched[k].labels, d, want)
		}
	}
}

// A file that fails (corrupt data) is recorded once, failed with its
// reason and detail, and never claimed again by itself: only a re-run
// queues it.
func TestAFileThatFailsIsRecordedOnceAndNotRetried(t *testing.T) {
	e := newWorkEnv(t)
	ctx := context.Background()
	cfg := e.config()
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	type m = struct {
		name   string
		labels map[string]string
	}
	watched := map[string]m{
		"corrupt": {"docstream_extractor_failures_total", map[string]string{"reason": "corrupt"}},
		"storage": {"docstream_extractor_failures_total", map[string]string{"reason": "storage"}},
		"failed":  {"docstream_extractor_extractions_total", map[string]string{"format": "pdf", "status": "failed"}},
	}
	before := read(t, watched)
	start(t, x)

	id := e.create(t, "corrupt", "application/pdf", extracttest.PDF("cut short")[:200])
	e.queue(t, x, id)
	f.next(t).reply <- runReply{res: extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonCorrupt, Detail: "pdftotext: Syntax Error: Couldn't read xref table"}}
	got := e.waitStatus(t, id, api.ExtractionFailed)
	if got.Reason != extract.ReasonCorrupt || got.Error != "pdftotext: Syntax Error: Couldn't read xref table" || got.Attempts != 1 {
		t.Fatalf("the failed extraction: %+v, want reason corrupt with its detail, one attempt", got)
	}
	// The worker goes on to the next document, and nothing else is
	// started on the way: the failed one is not claimed again.
	next := e.create(t, "next", "application/pdf", extracttest.PDF("Bilby"))
	e.queue(t, x, next)
	f.next(t).done(t, "Bilby")
	e.waitStatus(t, next, api.ExtractionDone)
	if !f.none() {
		t.Fatal("an extraction started after the last document's")
	}
	if _, ok, err := e.store.Claim(ctx, 0); err != nil || ok {
		t.Fatalf("a claim after the failure: %v %v, want nothing due (the failed row is not retried)", ok, err)
	}
	if got := e.extraction(t, id); got.Status != api.ExtractionFailed || got.Attempts != 1 {
		t.Fatalf("the failed extraction later: %+v", got)
	}
	after := read(t, watched)
	for k, want := range map[string]float64{"corrupt": 1, "storage": 0, "failed": 1} {
		if d := after[k] - before[k]; d != want {
			t.Errorf("%s %v went up by %v, want %v", watched[k].name, watched[k].labels, d, want)
		}
	}
}

// The queue gauges count the rows by status: with the only worker busy on
// one document, the other two wait.
func TestTheQueueGaugesCountPendingAndRunning(t *testing.T) {
	e := newWorkEnv(t)
	x := extractor.New(e.store, e.bus, e.bucket, e.config(), logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	var ids []string
	for _, w := range []string{"Potoroo", "Bettong", "Quokka"} {
		id := e.create(t, w, "application/pdf", extracttest.PDF(w))
		e.queue(t, x, id)
		ids = append(ids, id)
	}
	start(t, x)
	run := f.next(t)
	gauge := func(status string) float64 {
		return metric(t, "docstream_extractor_queue", map[string]string{"status": status})
	}
	// The gauges are refreshed every 5 s.
	testenv.WaitFor(t, "the queue gauges read 2 pending, 1 running", func() bool {
		return gauge(api.ExtractionPending) == 2 && gauge(api.ExtractionRunning) == 1
	})
	run.done(t, "one")
	f.next(t).done(t, "two")
	f.next(t).done(t, "three")
	for _, id := range ids {
		e.waitStatus(t, id, api.ExtractionDone)
	}
	testenv.WaitFor(t, "the queue gauges read 0 pending, 0 running", func() bool {
		return gauge(api.ExtractionPending) == 0 && gauge(api.ExtractionRunning) == 0
	})
}

// POST /extractions/rerun {"all": true} (`docstream extract --all`)
// queues every document with content whatever its state — done, failed,
// and one the extractor never saw (older than the bus's retention) — and
// the workers extract each again.
func TestRerunAllQueuesEveryDocumentWithContent(t *testing.T) {
	e := newWorkEnv(t)
	ctx := context.Background()
	x := extractor.New(e.store, e.bus, e.bucket, e.config(), logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	srv := httptest.NewServer(x.Handler(nil))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	done := e.create(t, "done", "application/pdf", extracttest.PDF("Wombat"))
	failed := e.create(t, "failed", "application/pdf", extracttest.PDF("Echidna"))
	unseen := e.create(t, "never extracted", "application/pdf", extracttest.PDF("Bandicoot"))
	start(t, x)
	e.queue(t, x, done)
	f.next(t).done(t, "Wombat")
	e.waitStatus(t, done, api.ExtractionDone)
	e.queue(t, x, failed)
	f.next(t).reply <- runReply{res: extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonCorrupt, Detail: "bad"}}
	e.waitStatus(t, failed, api.ExtractionFailed)
	if _, _, err := e.store.Get(ctx, unseen); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("the unseen document has an extraction: %v", err)
	}

	res, err := c.RerunExtractions(ctx, api.ExtractRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Queued != 3 {
		t.Fatalf("rerun all queued %d, want 3", res.Queued)
	}
	words := map[string]string{}
	for range 3 {
		run := f.next(t)
		b, err := os.ReadFile(run.job.Input)
		if err != nil {
			t.Fatal(err)
		}
		w := "again " + fmt.Sprint(len(words))
		words[string(b)] = w
		run.done(t, w)
	}
	for _, id := range []string{done, failed, unseen} {
		got := e.waitStatus(t, id, api.ExtractionDone)
		if got.Attempts != 1 {
			t.Errorf("%s: %+v, want a fresh run (attempt 1)", id, got)
		}
	}
	if len(words) != 3 {
		t.Fatalf("re-extracted %d distinct contents, want 3", len(words))
	}
	if _, err := c.RerunExtractions(ctx, api.ExtractRequest{}); apperr.CodeOf(err) != apperr.Validation {
		t.Fatalf("a rerun naming nothing: %v, want validation", err)
	}
}

// With poppler and tesseract missing (a PATH without them), the extractor
// still starts and is ready (200): readiness names each disabled format
// as "off" with its Debian package, and the start-up log says the same.
// A PDF and a PNG are recorded unsupported with the reason; a DOCX, which
// needs no tool, is still extracted (in a real child).
func TestAMissingToolDisablesItsFormatsWithReadinessDetail(t *testing.T) {
	e := newWorkEnv(t)
	ctx := context.Background()
	t.Setenv("PATH", testenv.TempDir(t)) // an empty directory: no tool at all
	var logs testenv.SyncBuffer
	x := extractor.New(e.store, e.bus, e.bucket, e.config(), logging.New(&logs, "info"))
	if err := x.Check(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(x.Handler(nil))
	t.Cleanup(srv.Close)
	unsupported := map[string]string{"format": "pdf", "status": "unsupported"}
	before := metric(t, "docstream_extractor_extractions_total", unsupported)
	start(t, x)

	var h api.Health
	if resp := testenv.Do(t, "GET", srv.URL+"/health/ready", nil, &h); resp.StatusCode != 200 {
		t.Fatalf("readiness %d %+v, want 200", resp.StatusCode, h)
	}
	for check, pkg := range map[string]string{"tool-pdf": "poppler-utils", "tool-ocr": "tesseract-ocr"} {
		c := h.Checks[check]
		if c.Status != "off" || !strings.Contains(c.Error, pkg) {
			t.Errorf("readiness %s: %+v, want off naming %s", check, c, pkg)
		}
		if !strings.Contains(logs.String(), pkg) {
			t.Errorf("no log line names %s:\n%s", pkg, logs.String())
		}
	}
	if c := h.Checks["extraction"]; c.Status != "ok" {
		t.Errorf("readiness extraction: %+v, want ok (the sandbox works without the tools)", c)
	}

	pdf := e.create(t, "a pdf", "application/pdf", extracttest.PDF("Quokka"))
	png := e.create(t, "a png", "image/png", pngOf(t))
	docx := e.create(t, "a docx", extracttest.DOCXType, extracttest.DOCX([]string{"Kookaburra minutes"}))
	for _, id := range []string{pdf, png, docx} {
		e.queue(t, x, id)
	}
	for id, why := range map[string]string{pdf: "pdftotext is not installed (poppler-utils)", png: "tesseract is not installed (tesseract-ocr)"} {
		got := e.waitStatus(t, id, api.ExtractionUnsupported)
		if got.Reason != extract.ReasonUnsupported || got.Error != why {
			t.Errorf("%s: %+v, want reason unsupported: %s", id, got, why)
		}
	}
	if got := e.waitStatus(t, docx, api.ExtractionDone); got.Kind != "docx" || got.TextSize == 0 {
		t.Errorf("the DOCX: %+v, want its text", got)
	}
	if d := metric(t, "docstream_extractor_extractions_total", unsupported) - before; d != 1 {
		t.Errorf("extractions_total %v went up by %v, want 1", unsupported, d)
	}
}

// An extraction whose child is killed from outside (extract.ErrKilled:
// the OOM killer, an operator) is not the file's fault: it is queued again
// with backoff, reason killed, and succeeds at its next attempt. One
// killed at every attempt is recorded failed, reason killed, at the last
// (maxAttempts, 5) and not claimed again. (A killed child was recorded
// failed at once: "CPU limit reached", never retried.)
func TestAChildKilledFromOutsideIsRetriedWithBackoffAndBounded(t *testing.T) {
	e := newWorkEnv(t)
	cfg := e.config()
	cfg.RetryMax = 200 * time.Millisecond
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	f := newFakeRunner()
	x.SetRunner(f)
	killedTotal := func() float64 {
		return metric(t, "docstream_extractor_failures_total", map[string]string{"reason": extract.ReasonKilled})
	}
	before := killedTotal()
	start(t, x)
	killed := func(c *runCall) time.Time {
		c.reply <- runReply{res: extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonKilled, Detail: "the child was killed by killed"},
			err: fmt.Errorf("%w: the child was killed by killed", extract.ErrKilled)}
		return time.Now()
	}

	once := e.create(t, "killed once", "application/pdf", extracttest.PDF("Bilby"))
	e.queue(t, x, once)
	killedAt := killed(f.next(t))
	second := f.next(t)
	if gap := time.Since(killedAt); gap < 150*time.Millisecond {
		t.Errorf("attempt 2 came %v after the kill, want the backoff (200ms) first", gap)
	}
	if got := e.extraction(t, once); got.Attempts != 2 || got.Reason != extract.ReasonKilled || !strings.Contains(got.Error, "killed") {
		t.Fatalf("the second attempt's row: %+v, want attempt 2 after a kill", got)
	}
	second.done(t, "Bilby")
	if got := e.waitStatus(t, once, api.ExtractionDone); got.Attempts != 2 || got.Reason != "" {
		t.Fatalf("the extraction: %+v, want done at attempt 2", got)
	}

	always := e.create(t, "killed always", "application/pdf", extracttest.PDF("Numbat"))
	e.queue(t, x, always)
	for range 5 {
		killed(f.next(t))
	}
	got := e.waitStatus(t, always, api.ExtractionFailed)
	if got.Attempts != 5 || got.Reason != extract.ReasonKilled || !strings.Contains(got.Error, "not retried again") {
		t.Fatalf("the extraction: %+v, want failed at attempt 5, reason killed", got)
	}
	time.Sleep(3 * cfg.RetryMax)
	if !f.none() {
		t.Fatal("an extraction killed at its last attempt was claimed again")
	}
	if d := killedTotal() - before; d != 6 {
		t.Errorf("docstream_extractor_failures_total{reason=killed} went up by %v, want 6 (one retried; four retried and one recorded)", d)
	}
}

// An OCR language of --extractor-ocr-languages without its tesseract data
// is reported off in readiness and the start-up log, naming its Debian
// package; with none of them installed OCR is off, and an image is
// recorded unsupported with that reason (tesseract would fail each one).
func TestAnOCRLanguageWithoutItsDataIsReportedAndNoneLeftTurnsOCROff(t *testing.T) {
	if _, err := exec.LookPath("tesseract"); err != nil {
		t.Fatalf("tesseract is needed (scripts/bootstrap.sh installs tesseract-ocr): %v", err)
	}
	e := newWorkEnv(t)
	ctx := context.Background()
	ready := func(x *extractor.Extractor) api.Health {
		t.Helper()
		srv := httptest.NewServer(x.Handler(nil))
		defer srv.Close()
		var h api.Health
		if resp := testenv.Do(t, "GET", srv.URL+"/health/ready", nil, &h); resp.StatusCode != 200 {
			t.Fatalf("readiness %d %+v, want 200", resp.StatusCode, h)
		}
		return h
	}

	cfg := e.config()
	cfg.Languages = "eng+zzz"
	var logs testenv.SyncBuffer
	x := extractor.New(e.store, e.bus, e.bucket, cfg, logging.New(&logs, "info"))
	if err := x.Check(ctx); err != nil {
		t.Fatal(err)
	}
	h := ready(x)
	if c := h.Checks["tool-ocr-zzz"]; c.Status != "off" || !strings.Contains(c.Error, "tesseract-ocr-zzz") {
		t.Errorf("readiness tool-ocr-zzz: %+v, want off naming tesseract-ocr-zzz", c)
	}
	if _, ok := h.Checks["tool-ocr"]; ok {
		t.Errorf("OCR reported off while eng is installed: %+v", h.Checks["tool-ocr"])
	}
	if !strings.Contains(logs.String(), "tesseract-ocr-zzz") {
		t.Errorf("no log line names tesseract-ocr-zzz:\n%s", logs.String())
	}

	cfg.Languages = "zzz+yyy"
	y := extractor.New(e.store, e.bus, e.bucket, cfg, logging.Discard())
	if err := y.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if c := ready(y).Checks["tool-ocr"]; c.Status != "off" || !strings.Contains(c.Error, "none of --extractor-ocr-languages") {
		t.Errorf("readiness tool-ocr with no language installed: %+v", c)
	}
	start(t, y)
	png := e.create(t, "a png", "image/png", pngOf(t))
	e.queue(t, y, png)
	if got := e.waitStatus(t, png, api.ExtractionUnsupported); got.Reason != extract.ReasonUnsupported || !strings.Contains(got.Error, "tesseract") {
		t.Errorf("the PNG: %+v, want unsupported: no OCR", got)
	}
}
