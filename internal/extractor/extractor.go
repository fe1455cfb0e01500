// Package extractor is the content pipeline: it makes the words inside
// PDFs, office files, scans and web pages searchable, and makes a
// first-page thumbnail of each.
//
// It consumes cdc.documents as a durable group (instances share the work,
// a restart resumes, repeats are dropped by LSN with bus.Dedup). For each
// document whose content is new or replaced (content_sha256 differs from
// the one its extraction row holds) it queues an extraction: a row of
// documents.extractions in status pending. Queuing is one idempotent
// statement, so a batch is acknowledged in milliseconds whatever the
// extractions cost, and the bus's ack wait never races a long OCR.
//
// Workers (Config.Workers per process, every instance) claim pending rows
// with FOR UPDATE SKIP LOCKED, copy the content from object storage to a
// temporary file, run the extraction in a child process with limits
// (internal/extract), store the text at {id}/text and the thumbnail at
// {id}/thumb.png beside the content, and record the result in the row.
// The row's change reaches the bus as cdc.extractions: the indexer reads
// {id}/text when a row turns done and indexes it with the document; a
// document's version and updated_at never move for it.
//
//   - A file that fails (a limit, a zip bomb, an encrypted PDF, corrupt
//     data) is recorded as failed with its reason and never retried by
//     itself: it would fail again. POST /documents/{id}/extract or
//     `docstream extract --failed` re-runs it.
//   - A transient failure (object storage or the database out of reach,
//     the child could not start, the child or a tool killed by a signal
//     neither the extractor nor the limits sent, such as the kernel's OOM
//     killer's) puts the row back as pending with a backoff (1 s doubling
//     to Config.RetryMax), reason storage or killed. Attempts are bounded
//     (maxAttempts): a content killed at its last one is recorded failed,
//     reason killed.
//   - A worker renews its claim every Config.Lease/3 while the extraction
//     runs (a heartbeat). A worker that dies holding a row stops renewing
//     it; once the lease has run out (30 s by default, whatever the
//     extraction's own time limit) any worker takes it again, so a killed
//     extractor loses nothing and delays it by one lease. A result is
//     recorded only by the claim that holds the row (its claimed_at
//     token), so a late worker cannot overwrite a newer run; a worker
//     whose heartbeat finds the row taken (a re-run, replaced content)
//     stops its extraction.
//   - (A session advisory lock that dies with the connection would free
//     the row at once, but PgBouncer in transaction mode, the scale-out
//     shape, does not keep sessions; a heartbeat works through it.)
//   - Plain text (text/* but HTML and Markdown) is indexed by the indexer from the
//     content itself; its row is recorded as skipped so that a client
//     waiting for any document's extraction sees it end.
//   - Deleting a document removes its derived objects (and the row goes
//     with the document, ON DELETE CASCADE). A run in progress then finds
//     its row gone: at its next heartbeat it stops, or, had it already
//     stored the text and thumbnail (after the delete's event removed
//     what was there), its result is not recorded and it removes them.
//     The document service's blob sweeper removes any left behind ({id}/
//     belongs to the document).
package extractor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/docstream/docstream/api"
	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/extract"
)

// Bucket is the bucket of the content and the derived objects.
const Bucket = "documents"

// TextKey and ThumbKey are where a document's derived objects live, beside
// its content ({id}/content).
func TextKey(id string) string  { return id + "/text" }
func ThumbKey(id string) string { return id + "/thumb.png" }

// ConsumerName names the extractor's subscription in readiness and the
// docstream_bus_consumer_* metrics.
const ConsumerName = "extractor"

// maxAttempts bounds how often one content is claimed without a result
// (its workers died each time): then it is recorded as failed.
const maxAttempts = 5

var (
	extractionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_extractor_extractions_total",
		Help: "Extractions finished, by format (pdf, image, office, html, markdown) and status (done, failed, unsupported).",
	}, []string{"format", "status"})
	failuresTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_extractor_failures_total",
		Help: "Failed extractions by reason (timeout, memory, zip_bomb, encrypted, corrupt, image_too_large, unsupported, crashed, killed), and transient failures (storage, killed) that were retried.",
	}, []string{"reason"})
	durationSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "docstream_extractor_duration_seconds",
		Help:    "Time of one extraction, copy of the content and storing of the results included, by format.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
	}, []string{"format"})
	queueDepth = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_extractor_queue",
		Help: "Extractions by status (pending: waiting for a worker; running: held by one), as last counted by this instance.",
	}, []string{"status"})
	queuedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_extractor_events_total",
		Help: "Change events handled by the extractor's consumer, by result: queued, skipped (content already extracted, or none), deleted (derived objects removed), invalid.",
	}, []string{"result"})
)

// Runner runs one extraction job in a child process with its limits
// (extract.Runner). A failed Result is the file's fault; an error is
// transient (the child could not start, ctx is done).
type Runner interface {
	Run(ctx context.Context, job extract.Job) (extract.Result, error)
}

// ContentReader opens a document's content in object storage.
type ContentReader interface {
	NewReader(ctx context.Context, key string, opts *blob.ReaderOptions) (*blob.Reader, error)
}

// Extractor is the extractor target.
type Extractor struct {
	store   *Store
	bus     bus.Bus
	blobs   *blobstore.Bucket
	content ContentReader // blobs, but for the tests that make reads fail
	cfg     Config
	log     *slog.Logger
	runner  Runner
	tools   extract.Tools
	// languages is the OCR languages configured that tesseract has data
	// for; off lists what is off beyond the missing tools (languages
	// without data), as Tools.Missing does.
	languages string
	off       map[string]string
	dedup     *bus.Dedup
	wake      chan struct{}

	mu         sync.Mutex
	sandboxErr error // the start-up probe's failure: no extraction can run
	lastErr    error // the consumer's or the workers' last database or storage failure
}

// New returns an extractor. cfg must be valid (Config.Validate).
func New(store *Store, b bus.Bus, blobs *blobstore.Bucket, cfg Config, log *slog.Logger) *Extractor {
	x := &Extractor{store: store, bus: b, blobs: blobs, content: blobs, cfg: cfg, log: log, runner: extract.Runner{Exe: cfg.Exe},
		tools: extract.DetectTools(), dedup: bus.NewDedup("extractor"), wake: make(chan struct{}, 1)}
	x.languages, x.off = cfg.Languages, x.tools.Missing()
	return x
}

// checkLanguages keeps the configured OCR languages tesseract has data
// for, and reports each other one as off; with none left, OCR is off.
func (x *Extractor) checkLanguages(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	have, missing, err := x.tools.OCRLanguages(ctx, x.cfg.Languages)
	if err != nil {
		// tesseract is there but cannot say: try the languages as configured.
		x.log.Warn("extractor: cannot list tesseract's languages", "err", err)
		return
	}
	for _, l := range missing {
		x.off["ocr-"+l] = fmt.Sprintf("tesseract has no data for OCR language %q of --extractor-ocr-languages (Debian package tesseract-ocr-%s): text in it is not recognised", l, l)
	}
	if len(missing) > 0 && len(have) == 0 {
		x.tools.Tesseract = ""
		x.off["ocr"] = fmt.Sprintf("tesseract has data for none of --extractor-ocr-languages %q: images and scanned PDF pages are not read", x.cfg.Languages)
	}
	x.languages = strings.Join(have, "+")
}

// Check asks tesseract which OCR languages it has data for and probes the
// sandbox once, logging one line per missing tool or language: a missing
// one disables what needs it (and readiness reports it off), it does not
// stop the extractor. It returns an error only when no child can run at
// all. It runs before Run and Handler, which read what it found; New runs
// no tool, so that making an extractor costs no child process.
func (x *Extractor) Check(ctx context.Context) error {
	x.checkLanguages(ctx)
	for what, why := range x.off {
		x.log.Warn("extractor: a tool or OCR language is missing; what needs it is off", "what", what, "detail", why)
	}
	if extract.IsChild() {
		// An extraction child never runs services; a binary whose main
		// forgot ChildMain would recurse here.
		return errors.New("extractor: this process is an extraction child (ChildMain was not called)")
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := x.runner.Run(pctx, extract.Job{Task: "probe", Limits: extract.Limits{Timeout: 10 * time.Second}})
	if err == nil && (res.Status != extract.StatusDone || res.Kind != "probe") {
		err = fmt.Errorf("the extraction child answered %+v (does main call extract.ChildMain?)", res)
	}
	if err != nil {
		x.mu.Lock()
		x.sandboxErr = err
		x.mu.Unlock()
		x.log.Error("extractor: the extraction sandbox does not work; nothing will be extracted", "err", err)
	}
	return nil
}

// Run consumes cdc.documents and runs the workers until ctx is done.
func (x *Extractor) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return x.bus.Group(bus.Named(ctx, ConsumerName), bus.TopicDocuments, x.cfg.Group, bus.GroupOptions{MaxBatch: 100, MaxWait: 100 * time.Millisecond}, x.dedup.Wrap(x.HandleBatch))
	})
	for i := range x.cfg.Workers {
		g.Go(func() error { x.work(ctx, i); return nil })
	}
	g.Go(func() error { x.countQueue(ctx); return nil })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// HandleBatch queues the extraction of new or replaced content and removes
// the derived objects of deleted documents (a bus.Handler). An error (the
// database or storage out of reach) hands the batch back to the bus.
func (x *Extractor) HandleBatch(ctx context.Context, msgs []bus.Message) error {
	queued := false
	for _, m := range msgs {
		env, err := change.Decode(m.Value)
		if err != nil {
			queuedTotal.WithLabelValues("invalid").Inc()
			x.log.Error("extractor: undecodable change event dropped", "position", m.Position, "err", err)
			continue
		}
		var row change.Document
		switch env.Op {
		case change.OpDelete:
			if _, err := change.Row(env.Before, &row); err != nil || row.ID == "" {
				queuedTotal.WithLabelValues("invalid").Inc()
				continue
			}
			if err := x.removeDerived(ctx, row.ID); err != nil {
				x.setErr(err)
				return err
			}
			queuedTotal.WithLabelValues("deleted").Inc()
		case change.OpCreate, change.OpUpdate, change.OpRead:
			if ok, err := change.Row(env.After, &row); err != nil || !ok || row.ID == "" {
				queuedTotal.WithLabelValues("invalid").Inc()
				continue
			}
			if row.S3Key == nil || *row.S3Key == "" || row.ContentSHA256 == nil || *row.ContentSHA256 == "" {
				queuedTotal.WithLabelValues("skipped").Inc()
				continue
			}
			ct := ""
			if row.ContentType != nil {
				ct = *row.ContentType
			}
			format, status := x.formatOf(ct)
			ok, err := x.store.Enqueue(ctx, row.ID, *row.ContentSHA256, format, status)
			if err != nil {
				x.setErr(err)
				return err
			}
			if ok {
				queuedTotal.WithLabelValues("queued").Inc()
				queued = queued || status == api.ExtractionPending
			} else {
				queuedTotal.WithLabelValues("skipped").Inc()
			}
		default:
			queuedTotal.WithLabelValues("invalid").Inc()
		}
	}
	x.setErr(nil)
	if queued {
		x.Wake()
	}
	return nil
}

// formatOf is the queue status of a content type: pending with its
// format, skipped for plain text (the indexer reads it), unsupported for
// types no extractor reads. Types that need the magic (octet-stream, zip,
// none) are pending with no format: the worker looks at the bytes.
func (x *Extractor) formatOf(contentType string) (format, status string) {
	f := extract.Detect(contentType, nil)
	switch {
	case f == extract.FormatText:
		return f, api.ExtractionSkipped
	case f == extract.FormatNone && !needsMagic(contentType):
		return f, api.ExtractionUnsupported
	}
	return f, api.ExtractionPending
}

func needsMagic(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	return ct == "" || ct == "application/octet-stream" || ct == "application/zip"
}

// FormatOf is formatOf for the re-run routes.
func (x *Extractor) FormatOf(contentType string) (string, string) { return x.formatOf(contentType) }

// Wake tells an idle worker of this process there is work.
func (x *Extractor) Wake() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *Extractor) removeDerived(ctx context.Context, id string) error {
	for _, key := range []string{TextKey(id), ThumbKey(id)} {
		if err := x.blobs.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("extractor: remove %s: %w", key, err)
		}
	}
	return nil
}

// dropOrphans removes document id's derived objects when the document is
// gone. A run that loses its row to a delete may have stored them after
// the delete's event removed what was there (the upload comes before the
// result is recorded), and nothing else would remove them until the
// sweeper. A row lost to a re-run or to replaced content keeps them: the
// newer run overwrites them.
func (x *Extractor) dropOrphans(ctx context.Context, id string, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	exists, err := x.store.Exists(ctx, id)
	if err != nil || exists {
		return
	}
	if err := x.removeDerived(ctx, id); err != nil {
		log.Warn("extractor: removing a deleted document's derived objects failed; the blob sweeper will", "err", err)
	}
}

func (x *Extractor) setErr(err error) {
	x.mu.Lock()
	x.lastErr = err
	x.mu.Unlock()
}

// Health is the readiness detail: an error while no child can run, or
// while the database or storage fails the consumer or the workers.
func (x *Extractor) Health(context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.sandboxErr != nil:
		return fmt.Errorf("extraction sandbox: %w", x.sandboxErr)
	case x.lastErr != nil:
		return x.lastErr
	}
	return nil
}

// work claims and runs extractions until ctx is done.
func (x *Extractor) work(ctx context.Context, n int) {
	backoff := x.cfg.Poll
	for ctx.Err() == nil {
		if x.sandboxBroken() {
			if !sleep(ctx, x.cfg.Poll*10, nil) {
				return
			}
			continue
		}
		c, ok, err := x.store.Claim(ctx, x.cfg.Lease)
		if err != nil {
			if ctx.Err() == nil {
				x.setErr(err)
				x.log.Warn("extractor: claim failed; retrying", "worker", n, "retry_in", backoff, "err", err)
			}
			if !sleep(ctx, backoff, nil) {
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = x.cfg.Poll
		if !ok {
			if !sleep(ctx, x.cfg.Poll, x.wake) {
				return
			}
			continue
		}
		x.process(ctx, c)
	}
}

func (x *Extractor) sandboxBroken() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sandboxErr != nil
}

// sleep waits d, or until wake fires; false when ctx is done.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// process runs claim c to a recorded result or a requeue.
func (x *Extractor) process(ctx context.Context, c Claim) {
	start := time.Now()
	log := x.log.With("document_id", c.DocumentID, "attempt", c.Attempt)
	if c.Attempt > maxAttempts {
		x.finish(ctx, c, api.ExtractionFailed, c.Format, extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonCrashed,
			Detail: fmt.Sprintf("given up after %d attempts whose workers stopped without a result", maxAttempts)}, start, log)
		return
	}
	if extract.Detect(c.ContentType, nil) == extract.FormatText {
		// Plain text (a re-run asked for it): the indexer reads it directly.
		x.finish(ctx, c, api.ExtractionSkipped, extract.FormatText, extract.Result{}, start, log)
		return
	}
	ectx, stop := context.WithCancel(ctx)
	var lost bool
	beat := make(chan struct{})
	renewed := c // the heartbeat's copy: it moves the claim's token
	go func() {
		defer close(beat)
		lost = x.heartbeat(ectx, &renewed, log)
		stop()
	}()
	res, format, err := x.extract(ectx, c)
	stop()
	<-beat
	c.Since = renewed.Since
	if lost {
		log.Info("extractor: the extraction was taken over, asked again or its document deleted meanwhile; this run stops")
		x.dropOrphans(ctx, c.DocumentID, log)
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: hand the row back at once for another worker
			// or the next start.
			_ = x.store.Retry(context.WithoutCancel(ctx), c, 0, "storage", errors.New("the extractor stopped during the extraction"))
			return
		}
		reason := "storage"
		if errors.Is(err, extract.ErrKilled) {
			// Killed from outside (the OOM killer, an operator): retried
			// like any transient failure, but not for ever: one that is
			// killed every time is recorded failed with why at its last
			// attempt.
			reason = extract.ReasonKilled
			if c.Attempt >= maxAttempts {
				res.Detail = fmt.Sprintf("%s (attempt %d of %d: not retried again)", res.Detail, c.Attempt, maxAttempts)
				x.finish(ctx, c, api.ExtractionFailed, format, res, start, log)
				return
			}
		} else {
			x.setErr(err) // storage or the sandbox: readiness detail
		}
		wait := min(time.Second<<min(c.Attempt-1, 20), x.cfg.RetryMax)
		failuresTotal.WithLabelValues(reason).Inc()
		log.Warn("extractor: transient failure; the extraction is queued again", "retry_in", wait, "reason", reason, "err", err)
		if rerr := x.store.Retry(ctx, c, wait, reason, err); rerr != nil {
			log.Warn("extractor: requeue failed; the lease will hand it out again", "err", rerr)
		}
		return
	}
	x.setErr(nil)
	status := api.ExtractionDone
	switch {
	case res.Status == extract.StatusFailed && res.Reason == extract.ReasonUnsupported:
		status = api.ExtractionUnsupported
	case res.Status == extract.StatusFailed:
		status = api.ExtractionFailed
	}
	x.finish(ctx, c, status, format, res, start, log)
}

// heartbeat renews claim c every Lease/3 until ctx is done. It returns
// true when the row is no longer c's (lost): the extraction must stop. A
// failed renewal is retried at the next beat; should the lease run out
// meanwhile, another worker may take the row, and this one's result is
// then dropped by Finish.
func (x *Extractor) heartbeat(ctx context.Context, c *Claim, log *slog.Logger) (lost bool) {
	t := time.NewTicker(x.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		held, err := x.store.Renew(ctx, c)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("extractor: renewing the lease failed; retrying at the next beat", "err", err)
		case err == nil && !held:
			return true
		}
	}
}

func (x *Extractor) finish(ctx context.Context, c Claim, status, format string, res extract.Result, start time.Time, log *slog.Logger) {
	took := time.Since(start)
	if format == "" {
		format = "unknown"
	}
	recorded, err := x.store.Finish(ctx, c, status, res, took)
	if err != nil {
		// The lease will hand it out again; the result is lost, not wrong.
		log.Warn("extractor: recording the result failed", "err", err)
		x.setErr(err)
		return
	}
	if !recorded {
		log.Info("extractor: result dropped: the extraction was taken over, the content replaced or the document deleted meanwhile")
		x.dropOrphans(ctx, c.DocumentID, log)
		return
	}
	extractionsTotal.WithLabelValues(format, status).Inc()
	durationSeconds.WithLabelValues(format).Observe(took.Seconds())
	if status == api.ExtractionFailed {
		failuresTotal.WithLabelValues(res.Reason).Inc()
		log.Info("extractor: extraction failed", "reason", res.Reason, "detail", res.Detail, "took", took)
	}
}

// extract copies the content, runs the child and stores the results. A
// non-nil error is transient (storage, the sandbox); a file's own failure
// is a failed result.
func (x *Extractor) extract(ctx context.Context, c Claim) (extract.Result, string, error) {
	dir, err := os.MkdirTemp(x.cfg.TempDir, "docstream-extract-*")
	if err != nil {
		return extract.Result{}, "", fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "content")
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		return extract.Result{}, "", err
	}
	head, err := x.download(ctx, c.S3Key, in)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonCorrupt, Detail: "the content is missing from object storage"}, c.Format, nil
	}
	if err != nil {
		return extract.Result{}, "", err
	}
	format := extract.Detect(c.ContentType, head)
	if ok, why := x.tools.Available(format); !ok {
		return extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonUnsupported, Detail: why}, format, nil
	}
	job := extract.Job{Task: "extract", Input: in, OutDir: out, ContentType: c.ContentType, Format: format,
		Tools: x.tools, Languages: x.languages, Limits: x.cfg.Limits, ThumbSize: x.cfg.ThumbSize}
	if x.tools.Tesseract == "" || x.tools.PDFToPPM == "" {
		job.Limits.OCRPages = 0
	}
	res, err := x.runner.Run(ctx, job)
	if err != nil {
		return res, format, err
	}
	if res.Status != extract.StatusDone {
		return res, format, nil
	}
	if err := x.upload(ctx, filepath.Join(out, extract.TextFile), TextKey(c.DocumentID), "text/plain; charset=utf-8"); err != nil {
		return res, format, err
	}
	if res.Thumbnail {
		err = x.upload(ctx, filepath.Join(out, extract.ThumbFile), ThumbKey(c.DocumentID), "image/png")
	} else if derr := x.blobs.Delete(ctx, ThumbKey(c.DocumentID)); derr != nil && gcerrors.Code(derr) != gcerrors.NotFound {
		err = derr // a stale thumbnail of replaced content must not stay
	}
	return res, format, err
}

// download copies key to path and returns its first 512 bytes.
func (x *Extractor) download(ctx context.Context, key, path string) ([]byte, error) {
	r, err := x.content.NewReader(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return nil, fmt.Errorf("copy content %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	head := make([]byte, 512)
	g, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	n, _ := io.ReadFull(g, head)
	return head[:n], nil
}

func (x *Extractor) upload(ctx context.Context, path, key, contentType string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := x.blobs.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return fmt.Errorf("store %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	// Durable before the row says done (file://; S3 acknowledges only
	// durable writes).
	return x.blobs.Sync(key)
}

// countQueue refreshes the queue gauges every few seconds.
func (x *Extractor) countQueue(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if q, err := x.store.Queue(ctx); err == nil {
			for _, st := range []string{api.ExtractionPending, api.ExtractionRunning} {
				queueDepth.WithLabelValues(st).Set(float64(q.ByState[st]))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
