package document

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
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

	// Invalidations that could not reach Redis are remembered (id → the
	// version the entry must reach; gone for a deletion) and replayed when
	// it answers again: the fast path after a short outage. What this
	// memory loses (a restart, another instance's entries) the
	// Invalidator heals from the change stream. Past maxPending ids, every
	// document entry is dropped on recovery instead.
	// invalidator, if one applies the change stream to this cache, is
	// reported under /health/ready.
	invalidator *Invalidator

	mu       sync.Mutex
	down     bool
	pending  map[string]int32
	overflow bool
}

const maxPending = 100_000

// Entries carry their version, and every write to document:{id} is a
// compare on it inside Redis (a Lua script), so no order of fills and
// invalidations can replace a row with an older one:
//
//   - an entry is the document's JSON, whose "version" field is compared;
//   - a tombstone "-N" says "the row is at version N or later": a fill
//     with an older row is refused, one with N or newer replaces it;
//   - a tombstone "-" (deleted; also any tombstone that does not parse)
//     refuses every fill until it expires.
//
// Tombstones live as long as an entry would (the cache TTL): a fill that
// read the row before a change and arrives after the tombstone expired
// would have to be a whole TTL late.
const (
	tombstonePrefix = "-"
	gone            = int32(-1) // pending version of a deleted document
	backoff         = time.Second
)

// fillScript sets KEYS[1] to ARGV[2] (a document of version ARGV[1]) for
// ARGV[3] ms unless what is there is as new or newer. Returns 1 if set.
var fillScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[1])
if cur then
  if string.sub(cur, 1, 1) == '-' then
    local min = tonumber(string.sub(cur, 2))
    if min == nil or v < min then return 0 end
  else
    local ok, doc = pcall(cjson.decode, cur)
    if ok and type(doc) == 'table' and tonumber(doc.version) ~= nil and tonumber(doc.version) >= v then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// invalidateScript replaces KEYS[1] with the tombstone "-ARGV[1]" for
// ARGV[2] ms unless it already holds version ARGV[1] or newer (an entry or
// a tombstone). Returns 1 if it wrote the tombstone.
var invalidateScript = redis.NewScript(invalidateLua)

const invalidateLua = `
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[1])
if cur then
  if string.sub(cur, 1, 1) == '-' then
    local min = tonumber(string.sub(cur, 2))
    if min == nil or min >= v then return 0 end
  else
    local ok, doc = pcall(cjson.decode, cur)
    if ok and type(doc) == 'table' and tonumber(doc.version) ~= nil and tonumber(doc.version) >= v then return 0 end
  end
end
redis.call('SET', KEYS[1], '-' .. ARGV[1], 'PX', ARGV[2])
return 1`

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

// remember records an invalidation Redis did not get: the document must
// be at version or later (gone: deleted).
func (c *Cache) remember(id string, version int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]int32{}
	}
	if len(c.pending) >= maxPending {
		c.overflow = true
		return
	}
	if cur, ok := c.pending[id]; !ok || (cur != gone && (version == gone || version > cur)) {
		c.pending[id] = version
	}
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
			for pid, v := range pending {
				c.queueInvalidate(ctx, p, pid, v)
			}
			return nil
		})
	}
	if err != nil {
		for pid, v := range pending {
			c.remember(pid, v)
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
	if err != nil || strings.HasPrefix(string(b), tombstonePrefix) || stale {
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

// Put caches d unless what is cached is as new or newer (a later fill, or
// the tombstone of a change d predates).
func (c *Cache) Put(ctx context.Context, d *Document) {
	if !c.usable() {
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	err = fillScript.Run(ctx, c.rdb, []string{docKey(d.ID)}, d.Version, b, c.ttl.Milliseconds()).Err()
	c.failed(ctx, "put", err)
}

// Invalidate records that document id is now at version (or later): an
// older entry is replaced by a tombstone that refuses older fills.
func (c *Cache) Invalidate(ctx context.Context, id string, version int32) {
	if c.rdb == nil {
		return
	}
	if !c.usable() {
		c.remember(id, version)
		return
	}
	if err := invalidateScript.Run(ctx, c.rdb, []string{docKey(id)}, version, c.ttl.Milliseconds()).Err(); err != nil && err != redis.Nil {
		c.remember(id, version)
		c.failed(ctx, "invalidate", err)
		return
	}
	c.ok(ctx, id)
}

// DropViews undoes the view just counted for an id that turned out not to
// exist. It writes no tombstone: a flood of reads of random ids must not
// fill Redis with keys.
func (c *Cache) DropViews(ctx context.Context, id string) {
	if !c.usable() {
		return
	}
	c.failed(ctx, "drop views", c.rdb.Del(ctx, viewsKey(id), uniqueKey(id)).Err())
}

// Forget removes everything about a deleted document, analytics included,
// and refuses fills of it until the tombstone expires.
func (c *Cache) Forget(ctx context.Context, id string) {
	if c.rdb == nil {
		return
	}
	if !c.usable() {
		c.remember(id, gone)
		return
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		c.queueInvalidate(ctx, p, id, gone)
		return nil
	})
	if err != nil {
		c.remember(id, gone)
	}
	c.failed(ctx, "forget", err)
}

// queueInvalidate adds the commands of one invalidation to p. Scripts in a
// pipeline go as EVAL (not EVALSHA): a Redis that just restarted has no
// scripts loaded, and a pipeline cannot fall back per command.
func (c *Cache) queueInvalidate(ctx context.Context, p redis.Pipeliner, id string, version int32) {
	if version == gone {
		p.Set(ctx, docKey(id), tombstonePrefix, c.ttl)
		p.Del(ctx, viewsKey(id), uniqueKey(id))
		return
	}
	p.Eval(ctx, invalidateLua, []string{docKey(id)}, version, c.ttl.Milliseconds())
}

// Apply writes a batch of invalidations in one round trip, bypassing the
// request path's back-off (the caller retries). It reports Redis errors.
// Invalidations are idempotent: applying one twice, or an older one after
// a newer, changes nothing.
func (c *Cache) Apply(ctx context.Context, invs []Invalidation) error {
	if c.rdb == nil || len(invs) == 0 {
		return nil
	}
	cmds, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, inv := range invs {
			v := inv.Version
			if inv.Deleted {
				v = gone
			}
			c.queueInvalidate(ctx, p, inv.ID, v)
		}
		return nil
	})
	if err == nil {
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil && e != redis.Nil {
				err = e
				break
			}
		}
	}
	if err != nil && err != redis.Nil {
		c.failed(ctx, "apply", err)
		return err
	}
	c.ok(ctx, "")
	return nil
}

// Invalidation says that document ID is at Version or later, or deleted.
type Invalidation struct {
	ID      string
	Version int32
	Deleted bool
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
