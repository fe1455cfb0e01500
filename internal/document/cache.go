package document

import (
	"context"
	"encoding/json"
	"log/slog"
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
}

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
	redisUp.Set(0)
}

func (c *Cache) ok() { redisUp.Set(1) }

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
	c.ok()
	b, err := get.Bytes()
	if err != nil || string(b) == tombstone {
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
	if !c.usable() {
		return
	}
	c.failed(ctx, "invalidate", c.rdb.Set(ctx, docKey(id), tombstone, tombstoneTTL).Err())
}

// Forget removes everything about a deleted document, analytics included.
// A view recorded for an id that turned out not to exist is forgotten too.
func (c *Cache) Forget(ctx context.Context, id string) {
	if !c.usable() {
		return
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, docKey(id), tombstone, tombstoneTTL)
		p.Del(ctx, viewsKey(id), uniqueKey(id))
		return nil
	})
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
		c.ok()
	}
	return err
}
