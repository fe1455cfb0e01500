// Package indexer keeps the search index equal to documents.documents: it
// consumes the change events on cdc.documents as a durable group (several
// indexer processes share the work), turns them into versioned index
// operations and writes them in batches.
//
//   - c, u and r (snapshot) events upsert the row; d deletes it. Rows
//     without an s3_key (content not stored yet) are skipped; the later
//     update that sets it is indexed.
//   - The version of every write is the event's LSN, so redeliveries and
//     replays are idempotent and can never move a document backwards.
//     Repeats of events already handled are dropped before that, by LSN
//     (bus.Dedup), so they cost no content read and no index write.
//   - Each document's owner and readers are indexed with it, for the
//     search service's access filter. A share or a revocation is a
//     readers-only update of the row (same version): a change like any
//     other, with its own LSN, so it re-indexes the document and a search
//     that waits for its commit LSN sees the new readers.
//   - For text/* documents the content is read from the "documents"
//     bucket (up to Config.ContentCap bytes) and indexed with the title.
//   - A batch is acknowledged only after the index has durably written it.
//     A failing backend is retried with exponential backoff; the events stay
//     unacknowledged meanwhile, so after any outage the index converges.
//
// Applied LSN. The search service's read-your-writes needs "every change
// committed at or before LSN L is searchable". Event LSNs alone cannot say
// that (the commit LSN a client holds is past its change's LSN), so the
// indexer follows the CDC engine's watermarks (cdc.watermarks: everything up
// to W is on the bus) and promotes a watermark W to "applied" once it has
// applied everything published before W:
//
//  1. as soon as a batch it applied holds a message stored after W (the
//     group delivers in stream order, so everything before W came first), or
//  2. when the bus says its consumer has caught up (a bus with
//     GroupCaughtUp, NATS): no batch in flight, none failed, and nothing
//     pending or unacknowledged on the server when asked after W arrived
//     — every message stored before W was applied. This is what lets a
//     watermark be trusted at once on a topic without traffic
//     (cdc.extractions most of the time, cdc.documents after the last
//     write), instead of after IdleGrace; or
//  3. when it is idle: no batch in flight, none failed, and none started
//     for IdleGrace (more than the bus's batch gathering time) since W
//     arrived and since the last batch ended — the consumer would have
//     been handed anything published before W by then.
//
// The applied LSN is written into the index itself (Index.SetAppliedLSN),
// so a search service in another process reads it from there. The rule is
// exact for one indexer instance; with several in one group, each promotes
// watermarks on the strength of its own share only.
package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/search"
)

// ContentBucket is the bucket the document service stores content in.
const ContentBucket = "documents"

// The indexer's subscriptions, as named in readiness and the
// docstream_bus_consumer_* metrics.
const (
	ConsumerName            = "indexer"
	ExtractionsConsumerName = "indexer-extractions"
	WatermarkConsumerName   = "indexer-watermarks"
)

var (
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_indexer_events_total",
		Help: "Change events handled by the indexer, by result: applied, stale (older than the indexed version), skipped (no s3_key yet), invalid.",
	}, []string{"result"})
	batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_indexer_batch_duration_seconds",
		Help:    "Time to build and durably write one batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})
	retriesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docstream_indexer_write_retries_total",
		Help: "Failed attempts to write a batch to the index (retried with backoff).",
	})
	appliedLSNGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_indexer_applied_lsn",
		Help: "LSN up to which every change is searchable.",
	})
	lagSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_indexer_commit_to_index_seconds",
		Help:    "From the transaction's commit (source.ts_ms) to the batch being searchable.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
)

// Indexer applies change events to an index.
type Indexer struct {
	idx   search.Index
	bus   bus.Bus
	blobs *blob.Bucket // may be nil: no content indexed
	cfg   Config
	log   *slog.Logger

	// applyMu runs the two consumers' batches one at a time, reading and
	// writing included: a document's batch reads its extracted text and
	// an extraction's batch adds text to the indexed document, and either
	// interleaving of read and write between them could drop the text.
	applyMu sync.Mutex

	mu      sync.Mutex
	pending []mark // watermarks received, not yet applied, in arrival order
	// streams are the two group consumers: cdc.documents and
	// cdc.extractions. A watermark is applied once each has passed it.
	streams [2]stream
	applied uint64 // highest LSN written with SetAppliedLSN
	dedup   *bus.Dedup
	// dedupX drops repeats on cdc.extractions.
	dedupX *bus.Dedup
}

// Indices of Indexer.streams.
const (
	streamDocuments = iota
	streamExtractions
)

// stream is one group consumer's progress, for promoting watermarks.
type stream struct {
	inflight     int
	failing      bool
	lastBatchEnd time.Time
	newest       time.Time // latest stored time of a message applied
}

// past reports whether the consumer has applied everything stored before
// w: it applied a message stored after w (the group delivers in stream
// order), or it is idle (no batch in flight, none failed, none ended for
// grace since w arrived).
func (s *stream) past(w mark, now time.Time, grace time.Duration) bool {
	if !s.newest.IsZero() && !w.stored.After(s.newest) {
		return true
	}
	return s.inflight == 0 && !s.failing && now.Sub(w.received) >= grace && now.Sub(s.lastBatchEnd) >= grace
}

// mark is one watermark and when it was stored on the bus and received.
type mark struct {
	lsn      uint64
	stored   time.Time
	received time.Time
}

// New returns an indexer consuming b, writing to idx and reading content
// from blobs. cfg must be valid (Config.Validate).
func New(idx search.Index, b bus.Bus, blobs *blob.Bucket, cfg Config, log *slog.Logger) *Indexer {
	if cfg.IdleGrace <= 0 {
		cfg.IdleGrace = 2*cfg.MaxWait + 100*time.Millisecond
	}
	return &Indexer{idx: idx, bus: b, blobs: blobs, cfg: cfg, log: log, dedup: bus.NewDedup("indexer"), dedupX: bus.NewDedup("indexer-extractions")}
}

// Run consumes until ctx is done: the change events as a group member, the
// watermarks as a broadcast (from the applied LSN stored in the index), and
// a ticker promoting watermarks when idle. It returns nil once ctx is done
// and the batch in hand is acknowledged or handed back.
func (x *Indexer) Run(ctx context.Context) error {
	b := x.bus
	applied, err := x.idx.AppliedLSN(ctx)
	if err != nil {
		return fmt.Errorf("indexer: read applied lsn: %w", err)
	}
	x.mu.Lock()
	x.applied = applied
	// Count start-up as activity, so no watermark is trusted before the
	// group consumers had their chance to deliver the backlog.
	for i := range x.streams {
		x.streams[i].lastBatchEnd = time.Now()
	}
	x.mu.Unlock()
	appliedLSNGauge.Set(float64(applied))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return b.Group(bus.Named(ctx, ConsumerName), bus.TopicDocuments, x.cfg.Group, bus.GroupOptions{MaxBatch: x.cfg.MaxBatch, MaxWait: x.cfg.MaxWait}, x.dedup.Wrap(x.HandleBatch))
	})
	g.Go(func() error {
		return b.Group(bus.Named(ctx, ExtractionsConsumerName), bus.TopicExtractions, x.cfg.Group, bus.GroupOptions{MaxBatch: x.cfg.MaxBatch, MaxWait: x.cfg.MaxWait}, x.dedupX.Wrap(x.HandleExtractions))
	})
	g.Go(func() error {
		return b.Broadcast(bus.Named(ctx, WatermarkConsumerName), bus.TopicWatermarks, bus.Start{Kind: bus.StartAfterLSN, LSN: applied}, x.HandleWatermarks)
	})
	g.Go(func() error {
		t := time.NewTicker(x.cfg.MaxWait / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				x.promote(ctx)
			}
		}
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// HandleWatermarks records CDC watermarks (a bus.Handler).
func (x *Indexer) HandleWatermarks(ctx context.Context, msgs []bus.Message) error {
	now := time.Now()
	x.mu.Lock()
	for _, m := range msgs {
		var w change.Watermark
		if err := json.Unmarshal(m.Value, &w); err != nil {
			x.log.Warn("indexer: undecodable watermark ignored", "position", m.Position, "err", err)
			continue
		}
		if w.LSN > x.applied {
			x.pending = append(x.pending, mark{lsn: w.LSN, stored: m.Time, received: now})
		}
	}
	x.mu.Unlock()
	return nil
}

// HandleBatch indexes one batch of change events (a bus.Handler). It
// returns nil only once the batch is durably in the index.
func (x *Indexer) HandleBatch(ctx context.Context, msgs []bus.Message) error {
	return x.handle(ctx, streamDocuments, msgs, x.operations)
}

// HandleExtractions indexes the text of extractions that turned done (a
// bus.Handler on cdc.extractions): the document's content is replaced by
// {id}/text, its other fields kept, at the version of the extraction's
// change. It returns nil only once the batch is durably in the index.
func (x *Indexer) HandleExtractions(ctx context.Context, msgs []bus.Message) error {
	return x.handle(ctx, streamExtractions, msgs, x.extractionOps)
}

func (x *Indexer) handle(ctx context.Context, si int, msgs []bus.Message, build func(context.Context, []bus.Message) ([]search.Op, error)) error {
	x.mu.Lock()
	x.streams[si].inflight++
	x.mu.Unlock()
	var err error
	var newest time.Time
	defer func() {
		x.mu.Lock()
		st := &x.streams[si]
		st.inflight--
		st.failing = err != nil
		st.lastBatchEnd = time.Now()
		if err == nil && newest.After(st.newest) {
			st.newest = newest
		}
		x.mu.Unlock()
		if err == nil {
			// By order and by idleness only: the bus cannot call this
			// stream caught up while the batch is still unacknowledged
			// (the ack follows the return), so asking it here would be a
			// round trip per batch that always answers no. The ticker asks.
			x.advance(ctx, [len(streamTopics)]time.Time{})
		}
	}()

	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	start := time.Now()
	var ops []search.Op
	ops, err = build(ctx, msgs)
	if err != nil {
		return err
	}
	var res search.BulkResult
	res, err = x.write(ctx, ops)
	if err != nil {
		return err
	}
	batchSeconds.Observe(time.Since(start).Seconds())
	eventsTotal.WithLabelValues("applied").Add(float64(res.Applied))
	eventsTotal.WithLabelValues("stale").Add(float64(res.Stale))
	now := time.Now()
	for _, m := range msgs {
		if m.Time.After(newest) {
			newest = m.Time
		}
		if env, e := change.Decode(m.Value); e == nil && env.Source.TsMs > 0 && env.Source.Snapshot == "false" {
			lagSeconds.Observe(now.Sub(time.UnixMilli(env.Source.TsMs)).Seconds())
		}
	}
	return nil
}

// write applies ops, retrying with exponential backoff (100ms doubling to
// RetryMax) for up to RetryFor; after that the error goes back to the bus,
// which redelivers the batch later.
func (x *Indexer) write(ctx context.Context, ops []search.Op) (search.BulkResult, error) {
	deadline := time.Now().Add(x.cfg.RetryFor)
	wait := 100 * time.Millisecond
	for {
		res, err := x.idx.Apply(ctx, ops)
		if err == nil {
			return res, nil
		}
		retriesTotal.Inc()
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return res, fmt.Errorf("indexer: write batch of %d: %w", len(ops), err)
		}
		x.log.Warn("indexer: index write failed; retrying", "ops", len(ops), "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, x.cfg.RetryMax)
	}
}

// operations turns events into index operations, reading text content with
// bounded concurrency. Undecodable events are logged and dropped: retrying
// them cannot succeed, and holding the batch would stop the index.
func (x *Indexer) operations(ctx context.Context, msgs []bus.Message) ([]search.Op, error) {
	ops := make([]search.Op, 0, len(msgs))
	for _, m := range msgs {
		op, ok, err := decode(m)
		if err != nil {
			eventsTotal.WithLabelValues("invalid").Inc()
			x.log.Error("indexer: undecodable change event dropped", "position", m.Position, "key", string(m.Key), "err", err)
			continue
		}
		if !ok {
			eventsTotal.WithLabelValues("skipped").Inc()
			continue
		}
		ops = append(ops, op)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range ops {
		if ops[i].Delete || !x.wantsContent(ops[i].Doc) {
			continue
		}
		g.Go(func() error {
			text, err := x.documentContent(gctx, ops[i].Doc)
			ops[i].Doc.Content = text
			return err
		})
	}
	return ops, g.Wait()
}

func (x *Indexer) wantsContent(d search.Document) bool {
	return x.blobs != nil && x.cfg.ContentCap > 0 && d.S3Key != ""
}

// directText reports whether a content type is indexed from the content
// itself: text/* but HTML and Markdown, which the extractor turns into
// text without their markup (extract.Detect's FormatText).
func directText(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.HasPrefix(ct, "text/") && !strings.HasPrefix(ct, "text/html") &&
		!strings.HasPrefix(ct, "text/markdown") && !strings.HasPrefix(ct, "text/x-markdown")
}

// textKey is where the extractor stores a document's text (see
// internal/extractor), beside its content.
func textKey(id string) string { return id + "/text" }

// documentContent is the text indexed with a document: its content for
// plain text, else the extractor's text when there is one yet (a document
// change after the extraction must keep it; before, the extraction's own
// event brings it).
func (x *Indexer) documentContent(ctx context.Context, d search.Document) (string, error) {
	if directText(d.ContentType) {
		return x.content(ctx, d.S3Key, true)
	}
	return x.content(ctx, textKey(d.ID), false)
}

// extractionOps turns extraction events into content-only operations:
// rows whose status is done get their text indexed; the others (pending,
// failed…) change nothing in the index.
func (x *Indexer) extractionOps(ctx context.Context, msgs []bus.Message) ([]search.Op, error) {
	var ops []search.Op
	for _, m := range msgs {
		env, err := change.Decode(m.Value)
		if err != nil {
			eventsTotal.WithLabelValues("invalid").Inc()
			x.log.Error("indexer: undecodable extraction event dropped", "position", m.Position, "err", err)
			continue
		}
		var row struct {
			DocumentID string `json:"document_id"`
			Status     string `json:"status"`
		}
		if env.Op == change.OpDelete {
			continue // the document's own delete removes it from the index
		}
		if ok, err := change.Row(env.After, &row); err != nil || !ok || row.DocumentID == "" {
			eventsTotal.WithLabelValues("invalid").Inc()
			continue
		}
		if row.Status != "done" {
			eventsTotal.WithLabelValues("skipped").Inc()
			continue
		}
		lsn := env.Source.LSN
		if lsn == 0 {
			lsn, _ = strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
		}
		if lsn == 0 {
			eventsTotal.WithLabelValues("invalid").Inc()
			continue
		}
		ops = append(ops, search.Op{ID: row.DocumentID, Version: lsn, ContentOnly: true, Doc: search.Document{ID: row.DocumentID}})
	}
	if x.blobs == nil || x.cfg.ContentCap <= 0 {
		return nil, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range ops {
		g.Go(func() error {
			text, err := x.content(gctx, textKey(ops[i].ID), true)
			ops[i].Doc.Content = text
			return err
		})
	}
	return ops, g.Wait()
}

// content reads up to ContentCap bytes of the blob. A missing blob indexes
// no content (the row is still searchable by title; warned when expected);
// other errors fail the batch so it is retried.
func (x *Indexer) content(ctx context.Context, key string, expected bool) (string, error) {
	r, err := x.blobs.NewRangeReader(ctx, key, 0, x.cfg.ContentCap, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		if expected {
			x.log.Warn("indexer: content blob missing; indexing without content", "key", key)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("indexer: read content %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("indexer: read content %s: %w", key, err)
	}
	// A cap may cut a multi-byte character; drop the broken tail.
	return strings.ToValidUTF8(string(b), ""), nil
}

// decode turns one event into an operation; ok is false for rows that are
// not indexed yet (no s3_key).
func decode(m bus.Message) (op search.Op, ok bool, err error) {
	env, err := change.Decode(m.Value)
	if err != nil {
		return op, false, err
	}
	op.Version = env.Source.LSN
	if op.Version == 0 {
		op.Version, _ = strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
	}
	if op.Version == 0 {
		return op, false, errors.New("event has no lsn")
	}
	var row change.Document
	switch env.Op {
	case change.OpDelete:
		present, err := change.Row(env.Before, &row)
		if err != nil {
			return op, false, fmt.Errorf("before: %w", err)
		}
		if !present {
			var k change.Key
			if err := json.Unmarshal(m.Key, &k); err != nil || k.ID == "" {
				return op, false, errors.New("delete without before row or key")
			}
			row.ID = k.ID
		}
		op.ID, op.Delete = row.ID, true
		return op, true, nil
	case change.OpCreate, change.OpUpdate, change.OpRead:
		present, err := change.Row(env.After, &row)
		if err != nil {
			return op, false, fmt.Errorf("after: %w", err)
		}
		if !present || row.ID == "" {
			return op, false, errors.New("no after row")
		}
		if row.S3Key == nil || *row.S3Key == "" {
			return op, false, nil
		}
		op.ID = row.ID
		op.Doc, err = document(row)
		return op, err == nil, err
	default:
		return op, false, fmt.Errorf("unknown op %q", env.Op)
	}
}

func document(r change.Document) (search.Document, error) {
	d := search.Document{ID: r.ID, Title: r.Title, Status: r.Status, CreatedBy: r.CreatedBy, S3Key: *r.S3Key, ContentType: "text/plain",
		Readers: r.Readers}
	if r.Owner != nil {
		d.Owner = *r.Owner
	}
	if r.SigningStatus != nil {
		d.SigningStatus = *r.SigningStatus
	}
	if r.ContentType != nil {
		d.ContentType = *r.ContentType
	}
	if r.ContentSize != nil {
		d.ContentSize = *r.ContentSize
	}
	if r.Version != nil {
		d.Version = *r.Version
	}
	for _, f := range []struct {
		in  *string
		out **time.Time
	}{{r.CreatedAt, &d.CreatedAt}, {r.UpdatedAt, &d.UpdatedAt}} {
		if f.in == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.in)
		if err != nil {
			return d, fmt.Errorf("timestamp %q: %w", *f.in, err)
		}
		*f.out = &t
	}
	return d, nil
}

// caughtUpAsker is a bus that can tell whether a group's consumer has
// handled everything stored so far (the NATS bus).
type caughtUpAsker interface {
	GroupCaughtUp(ctx context.Context, topic, group string) (bool, error)
}

// streamTopics are the topics of Indexer.streams, by index.
var streamTopics = [...]string{streamDocuments: bus.TopicDocuments, streamExtractions: bus.TopicExtractions}

// promote marks watermarks applied (see the package comment: each of the
// two group consumers must have passed the watermark, by order, by the
// bus's word or by idleness) and stores the new applied LSN.
func (x *Indexer) promote(ctx context.Context) { x.advance(ctx, x.caughtUp(ctx)) }

// advance is promote with the bus's word already asked: caughtUp[i] is
// when stream i was found caught up (zero: not asked, or not caught up).
func (x *Indexer) advance(ctx context.Context, caughtUp [len(streamTopics)]time.Time) {
	now := time.Now()
	x.mu.Lock()
	var best uint64
	keep := x.pending[:0]
	for _, w := range x.pending {
		past := true
		for i := range x.streams {
			byBus := !caughtUp[i].IsZero() && !w.received.After(caughtUp[i])
			past = past && (byBus || x.streams[i].past(w, now, x.cfg.IdleGrace))
		}
		if past {
			best = max(best, w.lsn)
			continue
		}
		keep = append(keep, w)
	}
	x.pending = keep
	if best <= x.applied {
		x.mu.Unlock()
		return
	}
	x.mu.Unlock()

	if err := x.idx.SetAppliedLSN(ctx, best); err != nil {
		if ctx.Err() == nil {
			x.log.Warn("indexer: store applied lsn", "lsn", best, "err", err)
		}
		// Keep the watermark for the next attempt.
		x.mu.Lock()
		x.pending = append(x.pending, mark{lsn: best, received: now.Add(-x.cfg.IdleGrace)})
		x.mu.Unlock()
		return
	}
	x.mu.Lock()
	x.applied = max(x.applied, best)
	x.mu.Unlock()
	appliedLSNGauge.Set(float64(best))
}

// caughtUp asks the bus, for each stream that holds back a waiting
// watermark although it has no batch in flight and none failed, whether
// its consumer has handled everything stored so far. The result is when
// it was asked, zero when not asked or not caught up: a watermark received
// before that time was stored before it, so the stream has passed it.
func (x *Indexer) caughtUp(ctx context.Context) (at [len(streamTopics)]time.Time) {
	asker, ok := x.bus.(caughtUpAsker)
	if !ok {
		return at
	}
	now := time.Now()
	var ask [len(streamTopics)]bool
	x.mu.Lock()
	for _, w := range x.pending {
		for i := range x.streams {
			st := &x.streams[i]
			ask[i] = ask[i] || st.inflight == 0 && !st.failing && !st.past(w, now, x.cfg.IdleGrace)
		}
	}
	x.mu.Unlock()
	for i, a := range ask {
		if !a {
			continue
		}
		asked := time.Now()
		done, err := asker.GroupCaughtUp(ctx, streamTopics[i], x.cfg.Group)
		if err != nil {
			continue // not subscribed yet, or the bus is away: the other rules apply
		}
		if done {
			at[i] = asked
		}
	}
	return at
}

var registerMetrics sync.Once

// RegisterMetrics puts this package's metrics on the default registry
// (served by every /metrics). The app calls it when it starts the target,
// so a process exports the metrics of the targets it runs and no others (a
// CDC-only process has no docstream_document_redis_up to alert on). Safe
// to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(eventsTotal, batchSeconds, retriesTotal, appliedLSNGauge, lagSeconds)
	})
}
