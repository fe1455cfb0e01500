package document

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var viewsLost = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "docstream_document_views_dropped_total",
	Help: "Views counted in memory and dropped unflushed: Redis stayed unreachable while more than 100,000 documents had views waiting.",
})

// Views counts document views in memory and adds them to Redis in batches
// (views:{id} INCRBY, unique_views:{id} PFADD): a read costs a map update
// instead of a Redis round trip. Run flushes every interval; Flush at
// shutdown flushes what is left, after the HTTP server has drained, so a
// graceful stop loses nothing. A kill -9 loses at most the views of the
// last interval (plus any held back while Redis was unreachable). Stats
// flushes the document's own pending views in its read, so it is exact for
// the views this instance served.
type Views struct {
	cache *Cache

	mu      sync.Mutex
	pending map[string]*pendingViews
	flushMu sync.Mutex    // one flush at a time: a failed one puts its views back
	early   chan struct{} // asks Run for a flush before the interval ends
}

type pendingViews struct {
	n       int64
	viewers map[string]struct{}
}

// maxPendingDocs bounds what waits in memory while Redis is unreachable;
// past it a failed flush's views of documents not already waiting are
// dropped (and counted) rather than grow without bound.
const maxPendingDocs = 100_000

// maxViewersPerFlush: a document read from this many addresses within one
// interval is flushed early, bounding the memory a flood of addresses takes.
const maxViewersPerFlush = 10_000

// NewViews counts views for cache (Run flushes them).
func NewViews(cache *Cache) *Views {
	return &Views{cache: cache, pending: map[string]*pendingViews{}, early: make(chan struct{}, 1)}
}

// Count records one view of id by clientIP.
func (v *Views) Count(id, clientIP string) {
	v.mu.Lock()
	p := v.pending[id]
	if p == nil {
		p = &pendingViews{viewers: map[string]struct{}{}}
		v.pending[id] = p
	}
	p.n++
	p.viewers[clientIP] = struct{}{}
	full := len(p.viewers) >= maxViewersPerFlush
	v.mu.Unlock()
	if full {
		select {
		case v.early <- struct{}{}:
		default: // already asked
		}
	}
}

// Forget drops the pending views of a deleted document (its counters are
// removed; a later flush must not bring them back).
func (v *Views) Forget(id string) {
	v.mu.Lock()
	delete(v.pending, id)
	v.mu.Unlock()
}

// take removes and returns the pending views of id (nil when none).
func (v *Views) take(id string) *pendingViews {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pending[id]
	delete(v.pending, id)
	return p
}

// giveBack returns views that could not be written.
func (v *Views) giveBack(batch map[string]*pendingViews) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, p := range batch {
		cur := v.pending[id]
		if cur == nil {
			if len(v.pending) >= maxPendingDocs {
				viewsLost.Add(float64(p.n))
				continue
			}
			v.pending[id] = p
			continue
		}
		cur.n += p.n
		for ip := range p.viewers {
			cur.viewers[ip] = struct{}{}
		}
	}
}

// Flush writes every pending view to Redis in one pipeline. Views that
// could not be written stay pending (the next flush retries them). That is
// at least once: a pipeline whose answer was lost after Redis applied it
// (the connection cut mid-round-trip) cannot be told from one that never
// arrived, and its views are added again, counted twice; dropping them
// instead would lose every view of a flush Redis never saw, the likelier
// failure (Redis down or unreachable). Stats' pipeline has the same bound.
func (v *Views) Flush(ctx context.Context) error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	v.mu.Lock()
	batch := v.pending
	if len(batch) == 0 {
		v.mu.Unlock()
		return nil
	}
	v.pending = map[string]*pendingViews{}
	v.mu.Unlock()
	if err := v.cache.addViews(ctx, batch); err != nil {
		v.giveBack(batch)
		return err
	}
	return nil
}

// Run flushes every interval (--document-views-flush) until ctx is done.
// The last flush is the caller's (Flush after the server stopped serving).
func (v *Views) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-v.early:
		}
		_ = v.Flush(ctx)
	}
}
