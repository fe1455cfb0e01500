package document

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

var (
	localResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_document_local_cache_total",
		Help: "In-process document cache lookups by result: hit, miss, bypassed (its change-stream consumer lags or is disconnected).",
	}, []string{"result"})
	localHit, localMiss, localBypassed = localResults.WithLabelValues("hit"), localResults.WithLabelValues("miss"), localResults.WithLabelValues("bypassed")
	localLag                           = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_document_local_cache_lag_seconds",
		Help: "Age of the newest change-stream evidence (an event's commit or a watermark) the in-process cache has applied; past --document-local-cache-max-lag the cache is bypassed.",
	})
)

// LocalCache is the in-process document cache in front of Redis: the
// record (row and readers) and its encoded answer, so a hit costs no I/O
// and no JSON encoding. The permission check still runs per caller on the
// cached record.
//
// Coherence comes from the change stream, for this instance alone: Run
// subscribes to cdc.documents and cdc.watermarks as a broadcast (not the
// shared group of the Redis invalidator: every instance must see every
// change) and drops each changed or deleted document. This instance's own
// writes drop their entry before they answer (read-your-writes).
//
// The cache answers only while the stream is fresh: the newest evidence it
// applied (an event's commit time or a watermark's, which the CDC engine
// publishes after every batch and every second when idle) is younger than
// maxLag. A bus outage, a stopped consumer or a lagging CDC engine lets
// that evidence age; past maxLag every lookup bypasses the cache, and the
// first batch after the gap empties it before it counts as fresh again. A
// change committed elsewhere is therefore seen here within the stream's
// delay, and never later than maxLag even when the stream breaks.
//
// Each entry carries the row's (version, access version): a fill never
// replaces a newer entry, and an invalidation that meets a fill in flight
// leaves a tombstone at its stamp, so the late fill of an older row is
// refused.
type LocalCache struct {
	max    int
	maxLag time.Duration
	log    *slog.Logger

	// heard is the unix nanos of the newest evidence applied (0: none yet).
	heard atomic.Int64
	// watermark is the highest cdc.watermarks LSN applied: every change
	// committed at or below it has been applied here.
	watermark atomic.Uint64

	mu      sync.RWMutex
	entries map[string]*localEntry
	filling map[string]int // fills in flight per id
	epoch   uint64         // moved by every clear; a fill of an older epoch is refused
}

// localEntry is a cached document (rec set) or a tombstone (rec nil): the
// document is at st or later, refuse older fills.
type localEntry struct {
	st   stamp
	rec  *Record
	body []byte // the GET answer's body: the document as JSON
}

// NewLocalCache returns a cache of at most size documents (0: no cache)
// that answers only while its stream is fresher than maxLag. It answers
// nothing until Run has applied the stream's first evidence.
func NewLocalCache(size int, maxLag time.Duration, log *slog.Logger) *LocalCache {
	return &LocalCache{max: size, maxLag: maxLag, log: log, entries: map[string]*localEntry{}, filling: map[string]int{}}
}

// fresh reports whether the stream's newest evidence is younger than maxLag.
func (c *LocalCache) fresh(now time.Time) bool {
	h := c.heard.Load()
	return h != 0 && now.UnixNano()-h < int64(c.maxLag)
}

// get returns the cached document id, or nil (a miss, a tombstone, or the
// cache bypassed: not fresh, or minLSN beyond the newest watermark applied).
func (c *LocalCache) get(id string, minLSN uint64) *localEntry {
	if c == nil || c.max <= 0 {
		return nil
	}
	if !c.fresh(time.Now()) || minLSN > c.watermark.Load() {
		localBypassed.Inc()
		return nil
	}
	c.mu.RLock()
	e := c.entries[id]
	c.mu.RUnlock()
	if e == nil || e.rec == nil {
		localMiss.Inc()
		return nil
	}
	localHit.Inc()
	return e
}

// fill is a fill in flight: begin it before reading the row, end it with
// put (or abandon).
type fill struct {
	id    string
	epoch uint64
}

// begin registers a fill of id: an invalidation of id until put leaves a
// tombstone, so the row being read cannot come back once it is older.
func (c *LocalCache) begin(id string) *fill {
	if c == nil || c.max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filling[id]++
	return &fill{id: id, epoch: c.epoch}
}

// put ends f, caching r with its encoded answer body unless what the cache
// holds is as new or newer, the cache was emptied since f began, or the
// stream is not fresh.
func (c *LocalCache) put(f *fill, r *Record, body []byte) {
	if f == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done(f.id) // after the comparison: it may drop the tombstone
	if r == nil || f.epoch != c.epoch || !c.fresh(time.Now()) {
		return
	}
	st := stamp{Version: r.Version, Access: r.AccessVersion}
	cur, ok := c.entries[f.id]
	// A tombstone at st says "st or later": a fill at st is the row.
	if ok && !st.after(cur.st) && !(cur.rec == nil && st == cur.st) {
		return
	}
	if !ok && len(c.entries) >= c.max {
		c.evictOne()
	}
	c.entries[f.id] = &localEntry{st: st, rec: r, body: body}
}

// abandon ends f without caching anything (the read failed).
func (c *LocalCache) abandon(f *fill) {
	if f == nil {
		return
	}
	c.mu.Lock()
	c.done(f.id)
	c.mu.Unlock()
}

// done ends one fill of id; with none left in flight a tombstone of id has
// no fill to refuse and goes. c.mu is held.
func (c *LocalCache) done(id string) {
	if c.filling[id]--; c.filling[id] > 0 {
		return
	}
	delete(c.filling, id)
	if e, ok := c.entries[id]; ok && e.rec == nil {
		delete(c.entries, id)
	}
}

// evictOne drops one entry to make room (Go's map order: an arbitrary
// one). Dropping a tombstone could let a fill in flight restore an older
// row, so that moves the epoch and refuses every fill in flight. c.mu is
// held.
func (c *LocalCache) evictOne() {
	for id, e := range c.entries {
		delete(c.entries, id)
		if e.rec == nil {
			c.epoch++
		}
		return
	}
}

// invalidate records that document id is at st or later (gone: deleted):
// an older entry goes, and while a fill of id is in flight a tombstone
// stays in its place.
func (c *LocalCache) invalidate(id string, st stamp) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidateLocked(id, st)
}

func (c *LocalCache) invalidateLocked(id string, st stamp) {
	if cur, ok := c.entries[id]; ok && !st.after(cur.st) {
		// An entry or tombstone at st or later already: a repeat, an older
		// change, or an edit's weaker claim (access version 0).
		return
	}
	if c.filling[id] == 0 {
		delete(c.entries, id)
		return
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		c.evictOne()
	}
	c.entries[id] = &localEntry{st: st}
}

// clear empties the cache and refuses every fill in flight.
func (c *LocalCache) clear() {
	c.mu.Lock()
	c.entries = map[string]*localEntry{}
	c.epoch++
	c.mu.Unlock()
}

// Len is the number of entries (tombstones included), for tests and
// metrics.
func (c *LocalCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// LocalCacheConsumer is the name of the cache's subscription on the bus
// (bus.Named), in the docstream_bus_consumer_* metrics.
const LocalCacheConsumer = "document-local-cache"

// Run applies cdc.documents and cdc.watermarks to the cache until ctx is
// done; it returns nil then, and a fatal bus error otherwise. While it is
// not running the cache is bypassed: nothing makes the evidence fresh.
//
// flushed (may be nil) reads the database's WAL flush position. CDC
// publishes a watermark only when the WAL moved, so an idle database sends
// none; instead Run asks flushed every quarter of maxLag, and a position
// at or below the newest watermark applied says that every commit
// acknowledged before the question is applied here: evidence as good as a
// watermark. The subscription starts at the watermark of the position at
// start (the last one CDC published, when it is caught up), so an idle
// system is fresh at once.
//
// On a bus that orders only within a topic (Kafka), a watermark can
// overtake the events before it; the cache is then fresh within that
// delivery delay.
func (c *LocalCache) Run(ctx context.Context, b bus.Bus, flushed func(context.Context) (uint64, error)) error {
	if c == nil || c.max <= 0 {
		<-ctx.Done()
		return nil
	}
	start := bus.Start{Kind: bus.StartNew}
	if flushed != nil {
		if lsn, err := flushed(ctx); err == nil && lsn > 0 {
			start = bus.Start{Kind: bus.StartAfterLSN, LSN: lsn - 1}
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.probe(pctx, flushed)
	}()
	err := b.Broadcast(bus.Named(ctx, LocalCacheConsumer), bus.Topics(bus.TopicDocuments, bus.TopicWatermarks), start, c.HandleBatch)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// probe asks flushed for evidence while the stream is quiet, and reports
// the lag, until ctx is done.
func (c *LocalCache) probe(ctx context.Context, flushed func(context.Context) (uint64, error)) {
	t := time.NewTicker(max(c.maxLag/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		asked := time.Now()
		if flushed != nil && c.watermark.Load() > 0 {
			qctx, cancel := context.WithTimeout(ctx, c.maxLag/4)
			lsn, err := flushed(qctx)
			cancel()
			if err == nil && lsn <= c.watermark.Load() {
				c.heardAt(asked.UnixNano())
			}
		}
		if h := c.heard.Load(); h != 0 {
			localLag.Set(time.Since(time.Unix(0, h)).Seconds())
		}
	}
}

// heardAt records evidence as of ev (unix nanos), if newer than what c has.
func (c *LocalCache) heardAt(ev int64) {
	for {
		h := c.heard.Load()
		if ev <= h || c.heard.CompareAndSwap(h, ev) {
			return
		}
	}
}

// HandleBatch applies one batch of the stream (a bus.Handler; it never
// fails: an undecodable event is logged and dropped, as the Redis
// invalidator does).
func (c *LocalCache) HandleBatch(_ context.Context, msgs []bus.Message) error {
	now := time.Now()
	// After a gap the cache may have missed changes: empty it before the
	// new evidence makes it answer again.
	if !c.fresh(now) {
		c.clear()
	}
	var newest int64
	var mark uint64
	c.mu.Lock()
	for _, m := range msgs {
		if m.Topic == bus.TopicWatermarks {
			var w change.Watermark
			if err := json.Unmarshal(m.Value, &w); err != nil {
				c.log.Error("local document cache: undecodable watermark dropped", "position", m.Position, "err", err)
				continue
			}
			mark = max(mark, w.LSN)
			newest = max(newest, w.TsMs)
			continue
		}
		inv, _, commitMs, err := invalidation(m)
		if err != nil {
			c.log.Error("local document cache: undecodable change event dropped", "position", m.Position, "key", string(m.Key), "err", err)
			continue
		}
		newest = max(newest, commitMs)
		if inv.ID == "" {
			continue
		}
		st := stamp{Version: inv.Version, Access: inv.AccessVersion}
		if inv.Deleted {
			st = gone
		}
		c.invalidateLocked(inv.ID, st)
	}
	c.mu.Unlock()
	if mark > c.watermark.Load() {
		c.watermark.Store(mark)
	}
	if newest > 0 {
		// Evidence is as old as what it says, and never newer than its
		// arrival (another host's clock may run ahead of ours).
		c.heardAt(min(time.UnixMilli(newest).UnixNano(), now.UnixNano()))
		localLag.Set(now.Sub(time.Unix(0, c.heard.Load())).Seconds())
	}
	return nil
}
