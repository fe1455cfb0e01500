package search

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// cacheLookups counts searches by what the result cache did: hit, miss,
// or bypass (no generation or key to store it under, or a stale min_lsn
// wait).
var cacheLookups = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "docstream_search_cache_lookups_total",
	Help: "Searches by what the result cache did: hit, miss or bypass.",
}, []string{"result"})

// Generational is implemented by a backend that counts the changes to its
// content in this process (the embedded Bleve index, whose writer is the
// indexer in the same process). The count moves after a change is
// visible to searches.
type Generational interface {
	Generation() uint64
}

// generation identifies a state of the index that a search result may be
// reused in: the applied LSN, which every backend stores and which the
// indexer advances after each batch it applied, plus the backend's own
// count of changes where it has one (a write that has not yet moved the
// applied LSN, or one made by something other than the indexer).
type generation struct {
	lsn, changes uint64
}

// resultCache keeps search results for the generation of the index they
// were computed in. Every entry belongs to the current generation: when
// it moves, the whole cache is dropped, so nothing computed before a
// change is served after it. An entry is keyed by the whole query,
// the caller's access included (its reader keys, sorted), so one caller
// never receives what another may see.
//
// A result is reused only for a generation at least as new as the one its
// search started in, and the generation is read before the search, so a
// result always holds every change up to the applied LSN of its key: a
// caller whose min_lsn was reached is never served an older one. A caller
// whose wait for min_lsn gave up (stale) bypasses the cache, as does any
// request when the generation cannot be read.
type resultCache struct {
	max int

	mu      sync.Mutex
	gen     generation
	entries map[string]Result
}

func newResultCache(entries int) *resultCache {
	if entries <= 0 {
		return nil
	}
	return &resultCache{max: entries, entries: map[string]Result{}}
}

// generationOf reads idx's current generation.
func generationOf(ctx context.Context, idx Index) (generation, error) {
	lsn, err := idx.AppliedLSN(ctx)
	if err != nil {
		return generation{}, err
	}
	g := generation{lsn: lsn}
	if gi, ok := idx.(Generational); ok {
		g.changes = gi.Generation()
	}
	return g, nil
}

// cacheKey is the query as JSON: every exported field, a new one
// included, encoded by value (a pointer as what it points to, never its
// address, so equal queries built separately share one entry). The reader
// keys are sorted and deduplicated, and an empty list is none, so the same
// caller always has the same key. ok is false for a query that cannot be
// encoded (none can today): it bypasses the cache.
func cacheKey(q Query) (key string, ok bool) {
	readers := slices.Compact(slices.Sorted(slices.Values(q.Access.Readers)))
	if len(readers) == 0 {
		readers = nil
	}
	q.Access.Readers = readers
	b, err := json.Marshal(q)
	if err != nil {
		return "", false
	}
	return string(b), true
}

func (c *resultCache) get(g generation, key string) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g != c.gen {
		return Result{}, false
	}
	r, ok := c.entries[key]
	return r, ok
}

// put stores r, computed in generation g. A result from an older
// generation than the cache's is dropped; a newer generation replaces
// the cache. A full cache drops an arbitrary entry (Go's map order) to
// make room: the cache lives for one generation, usually too short for
// recency to matter.
func (c *resultCache) put(g generation, key string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case g.lsn < c.gen.lsn || g.lsn == c.gen.lsn && g.changes < c.gen.changes:
		return
	case g != c.gen:
		c.gen, c.entries = g, map[string]Result{}
	}
	if len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = r
}

// search answers q from the cache when it holds it for idx's current
// generation, else from idx, keeping the result.
func (c *resultCache) search(ctx context.Context, idx Index, q Query) (Result, error) {
	g, err := generationOf(ctx, idx)
	if err != nil {
		cacheLookups.WithLabelValues("bypass").Inc() // no generation to key by
		return idx.Search(ctx, q)
	}
	key, ok := cacheKey(q)
	if !ok {
		cacheLookups.WithLabelValues("bypass").Inc() // no key to store it under
		return idx.Search(ctx, q)
	}
	if r, ok := c.get(g, key); ok {
		cacheLookups.WithLabelValues("hit").Inc()
		return r, nil
	}
	cacheLookups.WithLabelValues("miss").Inc()
	r, err := idx.Search(ctx, q)
	if err == nil {
		c.put(g, key, r)
	}
	return r, err
}
