package bleve

import (
	"container/heap"
	"context"
	"math"
	"sort"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/numeric"
	bsearch "github.com/blevesearch/bleve/v2/search"
)

// topK ranks a search's hits by score, then created_at descending, then
// the order Bleve visits them, keeping only the best from+size in a heap.
//
// Bleve's own collector given that sort reads every hit's created_at from
// the column store (doc values) before comparing: for a word in every
// document that was half of the query's CPU. Here created_at is read only
// for a hit that enters the heap or ties its worst entry; a hit scoring
// below the worst of a full heap is dropped on its score alone. The
// collector is Bleve's (it counts the total and drives the searcher); this
// is the document-match handler Bleve lets a caller plug into it
// (search.MakeDocumentMatchHandlerKey), with Bleve's sort set to score
// only so that it reads no column itself.
type topK struct {
	k, from int
	req     *bleve.SearchRequest
	h       hitHeap
	hits    []*bsearch.DocumentMatch // best first, the page only; set at the end
}

type ranked struct {
	*bsearch.DocumentMatch
	created int64 // created_at, UnixNano; math.MinInt64 when absent (ranks last)
}

// hitHeap is a min-heap: its root is the worst hit kept.
type hitHeap []ranked

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(ranked)) }
func (h *hitHeap) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }
func (h hitHeap) worst() ranked      { return h[0] }
func (h hitHeap) full(k int) bool    { return len(h) >= k }

// better reports whether a ranks before b.
func better(a, b ranked) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if a.created != b.created {
		return a.created > b.created
	}
	return a.HitNumber < b.HitNumber
}

func newTopK(req *bleve.SearchRequest, from, size int) *topK {
	return &topK{k: from + size, from: from, req: req}
}

// context returns ctx carrying the handler for Bleve's collector.
func (t *topK) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, bsearch.MakeDocumentMatchHandlerKey, bsearch.MakeDocumentMatchHandler(t.handler))
}

func (t *topK) handler(sctx *bsearch.SearchContext) (bsearch.DocumentMatchHandler, bool, error) {
	dv, err := sctx.IndexReader.DocValueReader([]string{fCreatedAt})
	if err != nil {
		return nil, false, err
	}
	createdAt := func(d *bsearch.DocumentMatch) (int64, error) {
		v := int64(math.MinInt64)
		err := dv.VisitDocValues(d.IndexInternalID, func(field string, term []byte) {
			pc := numeric.PrefixCoded(term)
			if shift, err := pc.Shift(); err == nil && shift == 0 {
				if n, err := pc.Int64(); err == nil {
					v = n
				}
			}
		})
		return v, err
	}
	return func(d *bsearch.DocumentMatch) error {
		if d == nil {
			return t.finish(sctx)
		}
		if t.k == 0 || t.h.full(t.k) && d.Score < t.h.worst().Score {
			sctx.DocumentMatchPool.Put(d)
			return nil
		}
		c, err := createdAt(d)
		if err != nil {
			return err
		}
		r := ranked{d, c}
		if !t.h.full(t.k) {
			heap.Push(&t.h, r)
			return nil
		}
		if !better(r, t.h.worst()) {
			sctx.DocumentMatchPool.Put(d)
			return nil
		}
		out := t.h.worst()
		t.h[0] = r
		heap.Fix(&t.h, 0)
		sctx.DocumentMatchPool.Put(out.DocumentMatch)
		return nil
	}, false, nil
}

// finish orders the kept hits, drops the first from, and loads the page's
// stored fields and highlights while the index snapshot is still open.
func (t *topK) finish(sctx *bsearch.SearchContext) error {
	sort.Slice(t.h, func(i, j int) bool { return better(t.h[i], t.h[j]) })
	if t.from >= len(t.h) {
		return nil
	}
	highlighter, err := bleve.Config.Cache.HighlighterNamed(bleve.Config.DefaultHighlighter)
	if err != nil {
		return err
	}
	if t.req.Highlight == nil {
		highlighter = nil
	}
	for _, r := range t.h[t.from:] {
		d := r.DocumentMatch
		if d.ID, err = sctx.IndexReader.ExternalID(d.IndexInternalID); err != nil {
			return err
		}
		d.Complete(nil) // term positions into the form the highlighter reads
		if err, _ := bleve.LoadAndHighlightFields(d, t.req, "", sctx.IndexReader, highlighter); err != nil {
			return err
		}
		t.hits = append(t.hits, d)
	}
	return nil
}
