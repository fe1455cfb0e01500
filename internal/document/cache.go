package document

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/internal/audit"
)

var (
	cacheResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_document_cache_total",
		Help: "Document cache lookups by result (hit, miss, skipped: Redis unavailable).",
	}, []string{"result"})
	cacheHit, cacheMiss, cacheSkipped = cacheResults.WithLabelValues("hit"), cacheResults.WithLabelValues("miss"), cacheResults.WithLabelValues("skipped")
	redisUp                           = prometheus.NewGauge(prometheus.GaugeOpts{
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
	pending  map[string]stamp
	overflow bool
}

const maxPending = 100_000

// Entries carry their version and access version, and every write to
// document:{id} is a compare on the pair (version, access_version) inside
// Redis (a Lua script), so no order of fills and invalidations can replace
// a row with an older one, nor readers with older readers (a share change
// moves access_version alone):
//
//   - an entry is the document's JSON with its readers, whose "version"
//     and "access_version" fields are compared;
//   - a tombstone "-N" or "-N.A" says "the row is at (N, A) or later"
//     (A is 0 when absent): a fill with an older row is refused, one with
//     (N, A) or newer replaces it;
//   - a tombstone "-" (deleted; also any tombstone that does not parse)
//     refuses every fill until it expires.
//
// Tombstones live as long as an entry would (the cache TTL): a fill that
// read the row before a change and arrives after the tombstone expired
// would have to be a whole TTL late.
const (
	tombstonePrefix = "-"
	backoff         = time.Second
)

// stamp orders the states of one document: (version, access version).
// gone (a deleted document) is later than every stamp.
type stamp struct {
	Version int32
	Access  int64
}

var gone = stamp{Version: -1}

func (a stamp) after(b stamp) bool {
	switch {
	case a == gone:
		return b != gone
	case b == gone:
		return false
	}
	return a.Version > b.Version || a.Version == b.Version && a.Access > b.Access
}

// stampLua defines stamp_of(cur), the (version, access version) of what
// document:{id} holds ('gone' for a deletion or a tombstone that does not
// parse; nil for an entry that does not decode, which anything replaces),
// and cmp, which orders two stamps (-1, 0, 1).
const stampLua = `
local function stamp_of(cur)
  if string.sub(cur, 1, 1) == '-' then
    local cv, ca = string.match(cur, '^%-(%d+)%.?(%d*)$')
    if cv == nil then return 'gone' end
    return tonumber(cv), tonumber(ca) or 0
  end
  local ok, doc = pcall(cjson.decode, cur)
  if not ok or type(doc) ~= 'table' or tonumber(doc.version) == nil then return nil end
  return tonumber(doc.version), tonumber(doc.access_version) or 0
end
local function cmp(v1, a1, v2, a2)
  if v1 ~= v2 then return v1 < v2 and -1 or 1 end
  if a1 ~= a2 then return a1 < a2 and -1 or 1 end
  return 0
end
`

// fillScript sets KEYS[1] to ARGV[2] (a document at (ARGV[1], ARGV[4]))
// for ARGV[3] ms unless what is there is as new or newer: an entry at the
// same stamp or later, a tombstone later than it. Returns 1 if set.
var fillScript = redis.NewScript(stampLua + `
local cur = redis.call('GET', KEYS[1])
local v, a = tonumber(ARGV[1]), tonumber(ARGV[4])
if cur then
  local cv, ca = stamp_of(cur)
  if cv == 'gone' then return 0 end
  if cv ~= nil then
    local c = cmp(v, a, cv, ca)
    if c < 0 or (c == 0 and string.sub(cur, 1, 1) ~= '-') then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// invalidateScript replaces KEYS[1] with the tombstone "-ARGV[1].ARGV[3]"
// for ARGV[2] ms unless it already holds that stamp or a newer one (an
// entry or a tombstone). Returns 1 if it wrote the tombstone.
var invalidateScript = redis.NewScript(invalidateLua)

const invalidateLua = stampLua + `
local cur = redis.call('GET', KEYS[1])
local v, a = tonumber(ARGV[1]), tonumber(ARGV[3])
if cur then
  local cv, ca = stamp_of(cur)
  if cv == 'gone' then return 0 end
  if cv ~= nil and cmp(cv, ca, v, a) >= 0 then return 0 end
end
redis.call('SET', KEYS[1], '-' .. ARGV[1] .. '.' .. ARGV[3], 'PX', ARGV[2])
return 1`

// entry is what document:{id} holds: the document and who may read it.
type entry struct {
	Document
	Readers       []string `json:"readers"`
	AccessVersion int64    `json:"access_version"`
}

func (e *entry) record() *Record {
	return &Record{Document: &e.Document, Readers: e.Readers, AccessVersion: e.AccessVersion}
}

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
// be at st or later (gone: deleted).
func (c *Cache) remember(id string, st stamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]stamp{}
	}
	if len(c.pending) >= maxPending {
		c.overflow = true
		return
	}
	if cur, ok := c.pending[id]; !ok || st.after(cur) {
		c.pending[id] = st
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

// Get reads the cached document and its readers. It returns nil on a
// miss (or when Redis is unavailable). Views are counted apart (Views).
func (c *Cache) Get(ctx context.Context, id string) *Record {
	if !c.usable() {
		cacheSkipped.Inc()
		return nil
	}
	b, err := c.rdb.Get(ctx, docKey(id)).Bytes()
	if err != nil && err != redis.Nil {
		c.failed(ctx, "get", err)
		cacheSkipped.Inc()
		return nil
	}
	stale := c.ok(ctx, id)
	if err != nil || strings.HasPrefix(string(b), tombstonePrefix) || stale {
		cacheMiss.Inc()
		return nil
	}
	var e entry
	// An entry without readers was written before entries carried them:
	// access cannot be decided from it.
	if json.Unmarshal(b, &e) != nil || e.Readers == nil {
		cacheMiss.Inc()
		return nil
	}
	cacheHit.Inc()
	return e.record()
}

// errRedisDown: Redis is in its back-off after a failure.
var errRedisDown = errors.New("redis unavailable")

// addViews adds counted views to Redis in one pipeline (INCRBY views:{id},
// PFADD unique_views:{id}). Without Redis configured there are no
// analytics and the views are dropped; while Redis is down it fails and
// the caller keeps them.
func (c *Cache) addViews(ctx context.Context, batch map[string]*pendingViews) error {
	if c.rdb == nil {
		return nil
	}
	if !c.usable() {
		return errRedisDown
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, v := range batch {
			queueViews(ctx, p, id, v)
		}
		return nil
	})
	if err != nil {
		c.failed(ctx, "add views", err)
		return err
	}
	return nil
}

// queueViews adds v to id's counters unless the document was deleted: a
// flush holds views taken before a delete, and written after the delete's
// DEL they would bring views:{id} back for a document that is gone. The
// deletion's tombstone (document:{id} = "-") says so in the same script,
// so nothing can come between the check and the write. The bound: views
// held back (Redis unreachable) for longer than the tombstone lives, the
// cache TTL, can still recreate the counters of a document deleted
// meanwhile.
func queueViews(ctx context.Context, p redis.Pipeliner, id string, v *pendingViews) {
	args := make([]any, 0, 1+len(v.viewers))
	args = append(args, v.n)
	for ip := range v.viewers {
		args = append(args, ip)
	}
	p.Eval(ctx, viewsLua, []string{docKey(id), viewsKey(id), uniqueKey(id)}, args...)
}

// viewsLua adds ARGV[1] views to KEYS[2] and the viewers ARGV[2…] to the
// HyperLogLog KEYS[3] unless KEYS[1] holds a deletion's tombstone. PFADD
// goes in slices: Lua's unpack fails past a few thousand values, and a
// document holds up to maxViewersPerFlush. Returns 1 if it counted.
const viewsLua = stampLua + `
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 1) == '-' and stamp_of(cur) == 'gone' then return 0 end
redis.call('INCRBY', KEYS[2], ARGV[1])
for i = 2, #ARGV, 1000 do
  redis.call('PFADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return 1`

// Put caches r (the document and its readers) unless what is cached is as
// new or newer (a later fill, or the tombstone of a change r predates).
func (c *Cache) Put(ctx context.Context, r *Record) {
	if !c.usable() {
		return
	}
	readers := r.Readers
	if readers == nil {
		readers = []string{}
	}
	b, err := json.Marshal(entry{Document: *r.Document, Readers: readers, AccessVersion: r.AccessVersion})
	if err != nil {
		return
	}
	err = fillScript.Run(ctx, c.rdb, []string{docKey(r.ID)}, r.Version, b, c.ttl.Milliseconds(), r.AccessVersion).Err()
	c.failed(ctx, "put", err)
}

// Invalidate records that document id is now at version and access version
// (or later): an older entry is replaced by a tombstone that refuses older
// fills. An edit may pass access 0: it is a weaker claim, still true.
func (c *Cache) Invalidate(ctx context.Context, id string, version int32, access int64) {
	if c.rdb == nil {
		return
	}
	st := stamp{Version: version, Access: access}
	if !c.usable() {
		c.remember(id, st)
		return
	}
	if err := invalidateScript.Run(ctx, c.rdb, []string{docKey(id)}, version, c.ttl.Milliseconds(), access).Err(); err != nil && err != redis.Nil {
		c.remember(id, st)
		c.failed(ctx, "invalidate", err)
		return
	}
	c.ok(ctx, id)
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
func (c *Cache) queueInvalidate(ctx context.Context, p redis.Pipeliner, id string, st stamp) {
	if st == gone {
		p.Set(ctx, docKey(id), tombstonePrefix, c.ttl)
		p.Del(ctx, viewsKey(id), uniqueKey(id))
		return
	}
	p.Eval(ctx, invalidateLua, []string{docKey(id)}, st.Version, c.ttl.Milliseconds(), st.Access)
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
			st := stamp{Version: inv.Version, Access: inv.AccessVersion}
			if inv.Deleted {
				st = gone
			}
			c.queueInvalidate(ctx, p, inv.ID, st)
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

// Invalidation says that document ID is at (Version, AccessVersion) or
// later, or deleted.
type Invalidation struct {
	ID            string
	Version       int32
	AccessVersion int64
	Deleted       bool
}

// Stats adds pending (this instance's views of id not flushed yet; may
// be nil) and reads the view counters, in one round trip; ok is false when
// Redis is unavailable, and pending was then not written.
func (c *Cache) Stats(ctx context.Context, id string, pending *pendingViews) (total, unique int64, ok bool) {
	if !c.usable() {
		return 0, 0, false
	}
	var views *redis.StringCmd
	var uniq *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if pending != nil {
			queueViews(ctx, p, id, pending)
		}
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

var registerMetrics sync.Once

// RegisterMetrics puts this package's metrics on the default registry
// (served by every /metrics). The app calls it when it starts the target,
// so a process exports the metrics of the targets it runs and no others (a
// CDC-only process has no docstream_document_redis_up to alert on). Safe
// to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(grpcStarted, grpcHandled, grpcSeconds, cacheResults, redisUp, invalidationsTotal, invalidationLag, invalidatorFailing, localResults, localLag, viewsLost)
		audit.RegisterMetrics()
	})
}
