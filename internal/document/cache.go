package document

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

var (
	cacheResults = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_document_cache_total",
		Help: "Document cache lookups by result (hit, miss, skipped: Redis unavailable).",
	}, []string{"result"})
	redisUp = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_document_redis_up",
		Help: "1 while Redis answers, 0 while the document service runs without cache and analytics.",
	})
)

// Cache is the Redis side: cache-aside document entries (document:{id}),
// view counters (views:{id}) and unique viewers (unique_views:{id},
// HyperLogLog). Redis is optional: when it fails, every method degrades to
// "no cache, no analytics" for a short back-off instead of failing requests,
// and recovers by itself.
type Cache struct {
	rdb       *redis.Client // nil: no Redis configured
	ttl       time.Duration
	log       *slog.Logger
	downUntil atomic.Int64 // unix nanos; skip Redis until then after a failure

	// Invalidations that could not reach Redis are remembered and replayed
	// when it answers again, so an entry cached before an outage is not
	// served after a change made during it. Past maxPending ids, every
	// document entry is dropped on recovery instead.
	mu       sync.Mutex
	down     bool
	pending  map[string]struct{}
	overflow bool
}

const maxPending = 100_000

// tombstone marks a just-changed document for a few seconds so that a reader
// that loaded the old row before the change cannot put it back (readers
// write with SET NX, and NX fails while the tombstone is there).
const (
	tombstone    = "-"
	tombstoneTTL = 10 * time.Second
	backoff      = time.Second
)

// NewCache wraps rdb (which may be nil).
func NewCache(rdb *redis.Client, ttl time.Duration, log *slog.Logger) *Cache {
	if rdb != nil {
		redisUp.Set(1)
	}
	return &Cache{rdb: rdb, ttl: ttl, log: log}
}

func (c *Cache) usable() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.downUntil.Load()
}

func (c *Cache) failed(ctx context.Context, op string, err error) {
	if err == nil || err == redis.Nil {
		return
	}
	if c.downUntil.Swap(time.Now().Add(backoff).UnixNano()) < time.Now().UnixNano() {
		c.log.WarnContext(ctx, "redis unavailable; serving without cache and analytics", "op", op, "err", err)
	}
	c.mu.Lock()
	c.down = true
	c.mu.Unlock()
	redisUp.Set(0)
}

// remember records an invalidation Redis did not get.
func (c *Cache) remember(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]struct{}{}
	}
	if len(c.pending) >= maxPending {
		c.overflow = true
		return
	}
	c.pending[id] = struct{}{}
}

// ok is called after Redis answered. After an outage it replays the missed
// invalidations first and reports whether id was among them (so the caller
// does not trust what it just read for id).
func (c *Cache) ok(ctx context.Context, id string) (stale bool) {
	c.mu.Lock()
	if !c.down {
		c.mu.Unlock()
		return false
	}
	pending, overflow := c.pending, c.overflow
	c.pending, c.overflow, c.down = nil, false, false
	c.mu.Unlock()
	redisUp.Set(1)
	c.log.InfoContext(ctx, "redis is back; replaying missed cache invalidations", "count", len(pending), "overflow", overflow)
	_, stale = pending[id]
	var err error
	if overflow {
		err = c.dropAll(ctx)
		stale = true
	} else if len(pending) > 0 {
		_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for pid := range pending {
				p.Set(ctx, docKey(pid), tombstone, tombstoneTTL)
			}
			return nil
		})
	}
	if err != nil {
		for pid := range pending {
			c.remember(pid)
		}
		c.failed(ctx, "replay", err)
		return true
	}
	return stale
}

// dropAll removes every cached document entry (not the analytics).
func (c *Cache) dropAll(ctx context.Context) error {
	iter := c.rdb.Scan(ctx, 0, "document:*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

func docKey(id string) string    { return "document:" + id }
func viewsKey(id string) string  { return "views:" + id }
func uniqueKey(id string) string { return "unique_views:" + id }

// GetAndCountView reads the cached document and records a view by clientIP,
// all in one pipelined round trip. It returns nil on a miss (or when Redis
// is unavailable).
func (c *Cache) GetAndCountView(ctx context.Context, id, clientIP string) *Document {
	if !c.usable() {
		cacheResults.WithLabelValues("skipped").Inc()
		return nil
	}
	var get *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, docKey(id))
		p.Incr(ctx, viewsKey(id))
		p.PFAdd(ctx, uniqueKey(id), clientIP)
		return nil
	})
	if err != nil && err != redis.Nil {
		c.failed(ctx, "get", err)
		cacheResults.WithLabelValues("skipped").Inc()
		return nil
	}
	stale := c.ok(ctx, id)
	b, err := get.Bytes()
	if err != nil || string(b) == tombstone || stale {
		cacheResults.WithLabelValues("miss").Inc()
		return nil
	}
	var d Document
	if json.Unmarshal(b, &d) != nil {
		cacheResults.WithLabelValues("miss").Inc()
		return nil
	}
	cacheResults.WithLabelValues("hit").Inc()
	return &d
}

// Put caches d unless a tombstone or a newer entry is there (SET NX).
func (c *Cache) Put(ctx context.Context, d *Document) {
	if !c.usable() {
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	c.failed(ctx, "put", c.rdb.SetNX(ctx, docKey(d.ID), b, c.ttl).Err())
}

// Invalidate replaces the entry with a short-lived tombstone after a change.
func (c *Cache) Invalidate(ctx context.Context, id string) {
	if c.rdb == nil {
		return
	}
	if !c.usable() {
		c.remember(id)
		return
	}
	if err := c.rdb.Set(ctx, docKey(id), tombstone, tombstoneTTL).Err(); err != nil {
		c.remember(id)
		c.failed(ctx, "invalidate", err)
		return
	}
	c.ok(ctx, id)
}

// Forget removes everything about a deleted document, analytics included.
// A view recorded for an id that turned out not to exist is forgotten too.
func (c *Cache) Forget(ctx context.Context, id string) {
	if c.rdb == nil {
		return
	}
	if !c.usable() {
		c.remember(id)
		return
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, docKey(id), tombstone, tombstoneTTL)
		p.Del(ctx, viewsKey(id), uniqueKey(id))
		return nil
	})
	if err != nil {
		c.remember(id)
	}
	c.failed(ctx, "forget", err)
}

// Stats reads the view counters; ok is false when Redis is unavailable.
func (c *Cache) Stats(ctx context.Context, id string) (total, unique int64, ok bool) {
	if !c.usable() {
		return 0, 0, false
	}
	var views *redis.StringCmd
	var uniq *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		views = p.Get(ctx, viewsKey(id))
		uniq = p.PFCount(ctx, uniqueKey(id))
		return nil
	})
	if err != nil && err != redis.Nil {
		c.failed(ctx, "stats", err)
		return 0, 0, false
	}
	total, _ = views.Int64()
	return total, uniq.Val(), true
}

// Ping reports Redis health for /health/ready (nil when not configured).
func (c *Cache) Ping(ctx context.Context) error {
	if c.rdb == nil {
		return nil
	}
	err := c.rdb.Ping(ctx).Err()
	if err == nil {
		c.downUntil.Store(0)
		c.ok(ctx, "")
	}
	return err
}
