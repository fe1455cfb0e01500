package document

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// InvalidatorConfig tunes the Invalidator; zero values take the defaults.
type InvalidatorConfig struct {
	// Group is the durable consumer group on cdc.documents. Every document
	// instance joins the same group: Redis is shared, so each event needs
	// applying once (default "document-cache").
	Group    string
	MaxBatch int           // events per batch (default 500)
	MaxWait  time.Duration // age of a partial batch (default 100ms)
	// RetryMax caps the backoff between attempts to apply a batch (default
	// 5s); RetryFor is how long one delivery keeps retrying before handing
	// the batch back to the bus (default 20s, under the bus's ack wait).
	RetryMax time.Duration
	RetryFor time.Duration
}

func (c *InvalidatorConfig) defaults() {
	if c.Group == "" {
		c.Group = "document-cache"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 20 * time.Second
	}
}

var (
	invalidationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_document_cache_invalidations_total",
		Help: "Change events handled by the cache invalidator, by result: applied, superseded (a later change of the same document in the batch), skipped (creates: nothing can be cached yet), invalid. Repeats are counted in docstream_bus_repeats_dropped_total{consumer=\"document-cache\"}.",
	}, []string{"result"})
	invalidationLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_document_cache_invalidation_lag_seconds",
		Help:    "From the transaction's commit (source.ts_ms) to its invalidation being applied in Redis.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	invalidatorFailing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_document_cache_invalidator_failing",
		Help: "1 while the cache invalidator cannot apply events to Redis (they stay on the bus and are retried).",
	})
)

// Invalidator makes the change stream the source of cache coherence: it
// consumes cdc.documents as a durable group and applies every update and
// deletion to the Redis cache (Cache.Apply). The write path's own
// invalidation is the fast path; this one is the guarantee. An
// invalidation missed while Redis was down, by an instance that then
// restarted, or by an instance that never saw the change, is healed as
// soon as Redis answers, because the events wait on the bus until a batch
// is applied.
//
// Idempotent by construction (invalidations compare versions in Redis),
// and repeats are dropped by LSN (bus.Dedup) before they cost a round
// trip. The in-process cache (LocalCache) cannot use this shared group:
// it has a broadcast subscription per instance.
type Invalidator struct {
	cache *Cache
	cfg   InvalidatorConfig
	log   *slog.Logger

	dedup *bus.Dedup

	mu      sync.Mutex
	lastErr error   // of the latest attempt; nil once a batch applied
	stopped bool    // Run returned
	bus     bus.Bus // set by Run
}

// NewInvalidator returns an invalidator applying to cache; the document
// server over that cache reports its health. Create it before NewServer.
func NewInvalidator(cache *Cache, cfg InvalidatorConfig, log *slog.Logger) *Invalidator {
	cfg.defaults()
	v := &Invalidator{cache: cache, cfg: cfg, log: log, dedup: bus.NewDedup("document-cache")}
	cache.invalidator = v
	return v
}

// Run consumes until ctx is done; it returns nil then, and a fatal bus
// error otherwise.
func (v *Invalidator) Run(ctx context.Context, b bus.Bus) error {
	defer func() {
		v.mu.Lock()
		v.stopped = true
		v.mu.Unlock()
	}()
	v.mu.Lock()
	v.bus = b
	v.mu.Unlock()
	err := b.Group(bus.Named(ctx, v.cfg.Group), bus.TopicDocuments, v.cfg.Group, bus.GroupOptions{MaxBatch: v.cfg.MaxBatch, MaxWait: v.cfg.MaxWait}, v.dedup.Wrap(v.HandleBatch))
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Health is the invalidator's readiness detail: an error once it stopped or
// while it cannot apply events (Redis down). Events are not lost
// meanwhile; the check says the cache may be stale.
func (v *Invalidator) Health(context.Context) error {
	v.mu.Lock()
	b := v.bus
	switch {
	case v.stopped:
		v.mu.Unlock()
		return errors.New("cache invalidator stopped")
	case v.lastErr != nil:
		err := v.lastErr
		v.mu.Unlock()
		return fmt.Errorf("cache invalidator cannot apply changes: %w", err)
	}
	v.mu.Unlock()
	if b != nil {
		// A stalled subscription leaves the cache to this instance's own
		// invalidations: detail (the service still serves), not a 503.
		return bus.CheckConsumers(b, v.cfg.Group)
	}
	return nil
}

// HandleBatch applies one batch of change events (a bus.Handler). It
// returns nil only once Redis has every invalidation of the batch;
// meanwhile it retries with backoff, and after RetryFor hands the batch
// back to the bus.
func (v *Invalidator) HandleBatch(ctx context.Context, msgs []bus.Message) error {
	invs, commits := v.decode(msgs)
	if len(invs) > 0 {
		if err := v.apply(ctx, invs); err != nil {
			return err
		}
	}
	v.mu.Lock()
	v.lastErr = nil
	v.mu.Unlock()
	invalidatorFailing.Set(0)
	invalidationsTotal.WithLabelValues("applied").Add(float64(len(invs)))
	now := time.Now()
	for _, ms := range commits {
		invalidationLag.Observe(now.Sub(time.UnixMilli(ms)).Seconds())
	}
	return nil
}

// decode turns events into invalidations, dropping creates (no entry can
// exist for a new id) and undecodable events (retrying cannot fix them,
// and holding the batch would stop invalidation for every document).
// Within a batch only the latest invalidation of a document is kept.
func (v *Invalidator) decode(msgs []bus.Message) (invs []Invalidation, commits []int64) {
	at := map[string]int{}
	var lsns []uint64
	for _, m := range msgs {
		inv, lsn, ts, err := invalidation(m)
		switch {
		case err != nil:
			invalidationsTotal.WithLabelValues("invalid").Inc()
			v.log.Error("cache invalidator: undecodable change event dropped", "position", m.Position, "key", string(m.Key), "err", err)
			continue
		case inv.ID == "":
			invalidationsTotal.WithLabelValues("skipped").Inc()
			continue
		}
		if ts > 0 {
			commits = append(commits, ts)
		}
		if i, ok := at[inv.ID]; ok {
			if lsn > lsns[i] {
				invs[i], lsns[i] = inv, lsn
			}
			invalidationsTotal.WithLabelValues("superseded").Inc()
			continue
		}
		at[inv.ID] = len(invs)
		invs, lsns = append(invs, inv), append(lsns, lsn)
	}
	return invs, commits
}

// apply writes invs, retrying with exponential backoff (100ms doubling to
// RetryMax) for up to RetryFor.
func (v *Invalidator) apply(ctx context.Context, invs []Invalidation) error {
	deadline := time.Now().Add(v.cfg.RetryFor)
	wait := 100 * time.Millisecond
	for {
		err := v.cache.Apply(ctx, invs)
		if err == nil {
			return nil
		}
		v.mu.Lock()
		first := v.lastErr == nil
		v.lastErr = err
		v.mu.Unlock()
		invalidatorFailing.Set(1)
		if first {
			v.log.Warn("cache invalidator: redis unavailable; changes wait on the bus", "pending", len(invs), "err", err)
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("cache invalidator: apply %d invalidations: %w", len(invs), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, v.cfg.RetryMax)
	}
}

// invalidation decodes one change event. A zero ID means nothing to do.
func invalidation(m bus.Message) (inv Invalidation, lsn uint64, commitMs int64, err error) {
	env, err := change.Decode(m.Value)
	if err != nil {
		return inv, 0, 0, err
	}
	lsn = env.Source.LSN
	if lsn == 0 {
		lsn, _ = strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
	}
	if lsn == 0 {
		return inv, 0, 0, errors.New("event has no lsn")
	}
	if env.Source.Snapshot == "false" {
		commitMs = env.Source.TsMs
	}
	var row struct {
		change.Document
		// A share change moves access_version alone: the cache must see it
		// although version stays.
		AccessVersion *int64 `json:"access_version"`
	}
	switch env.Op {
	case change.OpCreate:
		return inv, lsn, 0, nil
	case change.OpDelete:
		var k change.Key
		if json.Unmarshal(m.Key, &k) != nil || k.ID == "" {
			if _, err := change.Row(env.Before, &row); err != nil || row.ID == "" {
				return inv, 0, 0, errors.New("delete without key or before row")
			}
			k.ID = row.ID
		}
		return Invalidation{ID: k.ID, Deleted: true}, lsn, commitMs, nil
	case change.OpUpdate, change.OpRead:
		// A snapshot read is applied too: after a re-snapshot it is the only
		// news of changes made while the stream was broken.
		present, err := change.Row(env.After, &row)
		if err != nil || !present || row.ID == "" {
			return inv, 0, 0, fmt.Errorf("no after row: %v", err)
		}
		inv = Invalidation{ID: row.ID, Version: 1}
		if row.Version != nil {
			inv.Version = *row.Version
		}
		if row.AccessVersion != nil {
			inv.AccessVersion = *row.AccessVersion
		}
		return inv, lsn, commitMs, nil
	default:
		return inv, 0, 0, fmt.Errorf("unknown op %q", env.Op)
	}
}
