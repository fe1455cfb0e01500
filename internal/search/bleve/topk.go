package bleve

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/numeric"
	bsearch "github.com/blevesearch/bleve/v2/search"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// topK ranks a search's hits by score, then created_at descending, then
// the order Bleve visits them, keeping only the best from+size in a heap.
//
// Bleve's own collector given that sort reads every hit's created_at from
// the column store (doc values) before comparing: for a word in every
// document that was half of the query's CPU. Here created_at is read only
// for a hit that enters the heap or ties its worst entry, from a column
// decoded once per segment (createdColumns); a hit scoring
// below the worst of a full heap is dropped on its score alone. The
// collector is Bleve's (it counts the total and drives the searcher); this
// is the document-match handler Bleve lets a caller plug into it
// (search.MakeDocumentMatchHandlerKey), with Bleve's sort set to score
// only so that it reads no column itself.
type topK struct {
	k, from int
	req     *bleve.SearchRequest
	created *createdColumns
	// hl and searched, when set, highlight the page in finish from the
	// term vectors of the searched terms, read for the page's hits only.
	hl       *bleve.HighlightRequest
	searched *automata
	h        hitHeap
	hits     []*bsearch.DocumentMatch // best first, the page only; set at the end
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

func newTopK(req *bleve.SearchRequest, from, size int, created *createdColumns) *topK {
	return &topK{k: from + size, from: from, req: req, created: created}
}

// highlight makes finish highlight the page with hl, reading the term
// vectors of the terms in searched for its hits only. Asking Bleve for
// highlights instead makes every searcher decode the term vectors of
// every hit: 13 % of a query matching every document.
func (t *topK) highlight(hl *bleve.HighlightRequest, searched *automata) {
	t.hl, t.searched = hl, searched
}

// context returns ctx carrying the handler for Bleve's collector.
func (t *topK) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, bsearch.MakeDocumentMatchHandlerKey, bsearch.MakeDocumentMatchHandler(t.handler))
}

func (t *topK) handler(sctx *bsearch.SearchContext) (bsearch.DocumentMatchHandler, bool, error) {
	createdAt, err := t.created.reader(sctx.IndexReader)
	if err != nil {
		return nil, false, err
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
	req := t.req
	switch {
	case t.hl != nil:
		r := *t.req
		r.Highlight = t.hl
		req = &r
		if err := t.vectors(sctx, t.h[t.from:]); err != nil {
			return err
		}
	case t.req.Highlight == nil:
		highlighter = nil
	}
	for _, r := range t.h[t.from:] {
		d := r.DocumentMatch
		if d.ID, err = sctx.IndexReader.ExternalID(d.IndexInternalID); err != nil {
			return err
		}
		d.Complete(nil) // term positions into the form the highlighter reads
		if err, _ := bleve.LoadAndHighlightFields(d, req, "", sctx.IndexReader, highlighter); err != nil {
			return err
		}
		t.hits = append(t.hits, d)
	}
	return nil
}

// vectors reads, for the page's hits, the locations of the searched terms
// in the highlighted fields, as the term searchers would have.
func (t *topK) vectors(sctx *bsearch.SearchContext, page []ranked) error {
	byDoc := make([]*bsearch.DocumentMatch, len(page))
	for i, r := range page {
		byDoc[i] = r.DocumentMatch
	}
	// A term's reader moves forward only.
	sort.Slice(byDoc, func(i, j int) bool { return byDoc[i].IndexInternalID.Compare(byDoc[j].IndexInternalID) < 0 })
	ctx := context.Background()
	for _, field := range t.hl.Fields {
		for _, term := range t.searched.terms(field) {
			tfr, err := sctx.IndexReader.TermFieldReader(ctx, []byte(term), field, false, false, true)
			if err != nil {
				return err
			}
			var tfd *index.TermFieldDoc // the reader's position
			for _, d := range byDoc {
				if tfd == nil || tfd.ID.Compare(d.IndexInternalID) < 0 {
					if tfd, err = tfr.Advance(d.IndexInternalID, nil); err != nil {
						_ = tfr.Close()
						return err
					}
				}
				if tfd == nil {
					break // no later document has the term
				}
				if !tfd.ID.Equals(d.IndexInternalID) {
					continue
				}
				for _, v := range tfd.Vectors {
					d.FieldTermLocations = append(d.FieldTermLocations, bsearch.FieldTermLocation{Field: v.Field, Term: term,
						Location: bsearch.Location{Pos: v.Pos, Start: v.Start, End: v.End, ArrayPositions: slices.Clone(v.ArrayPositions)}})
				}
			}
			if err := tfr.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// createdColumns holds created_at of every document of each segment,
// decoded once per segment.
//
// Zap keeps doc values in snappy-compressed chunks of documents: reading
// one document's created_at decodes its chunk, and consecutive reads of
// far-apart documents (a selective query's hits) decode a chunk each,
// while a query with many equal scores reads tens of thousands of them.
// Either way that was 40–47 % of a query's CPU on 100k documents. A
// segment never changes once written (deletes only mark documents), so
// its column is decoded in one sequential pass and kept while the
// segment lives: 8 bytes per document the index holds, deleted ones
// included, until a merge replaces the segment.
type createdColumns struct {
	mu   sync.Mutex
	segs map[uint64]*createdColumn // by scorch segment id, unique in an index
}

type createdColumn struct {
	once sync.Once
	vals []int64
	err  error
}

func newCreatedColumns() *createdColumns {
	return &createdColumns{segs: map[uint64]*createdColumn{}}
}

// reader returns created_at by document for the snapshot r.
func (c *createdColumns) reader(r index.IndexReader) (func(*bsearch.DocumentMatch) (int64, error), error) {
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return docValueReader(r) // the in-memory index of tests
	}
	segs := snap.Segments()
	// A document's internal id is its number in the snapshot: the
	// segments' documents numbered one after the other, in this order
	// (scorch's own offsets, which it does not export).
	offsets := make([]uint64, len(segs))
	var running uint64
	for i, s := range segs {
		offsets[i] = running
		running += s.Segment().Count()
	}
	cols := make([]*createdColumn, len(segs))
	c.prune(segs)
	return func(d *bsearch.DocumentMatch) (int64, error) {
		n := d.IndexInternalID.Value()
		i := sort.Search(len(offsets), func(x int) bool { return offsets[x] > n }) - 1
		if i < 0 {
			return math.MinInt64, fmt.Errorf("document number %d before the first segment", n)
		}
		if cols[i] == nil {
			cols[i] = c.column(segs[i])
		}
		col := cols[i]
		if col.err != nil {
			return 0, col.err
		}
		local := n - offsets[i]
		if local >= uint64(len(col.vals)) {
			return 0, fmt.Errorf("document number %d beyond its segment's %d", n, len(col.vals))
		}
		return col.vals[local], nil
	}, nil
}

// column returns the column of s, decoding it on first use (once, however
// many searches ask at the same time).
func (c *createdColumns) column(s *scorch.SegmentSnapshot) *createdColumn {
	c.mu.Lock()
	col, ok := c.segs[s.Id()]
	if !ok {
		col = &createdColumn{}
		c.segs[s.Id()] = col
	}
	c.mu.Unlock()
	col.once.Do(func() { col.vals, col.err = decodeCreated(s.Segment()) })
	return col
}

// prune forgets the columns of segments that merges have replaced, once
// the cache holds clearly more than the snapshot's segments (a search on
// an older snapshot that still needs one decodes it again).
func (c *createdColumns) prune(live []*scorch.SegmentSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.segs) <= 2*len(live)+8 {
		return
	}
	keep := make(map[uint64]bool, len(live))
	for _, s := range live {
		keep[s.Id()] = true
	}
	for id := range c.segs {
		if !keep[id] {
			delete(c.segs, id)
		}
	}
}

func decodeCreated(seg segment.Segment) ([]int64, error) {
	dv, ok := seg.(segment.DocValueVisitable)
	if !ok {
		return nil, fmt.Errorf("segment %T has no doc values", seg)
	}
	vals := make([]int64, seg.Count())
	fields := []string{fCreatedAt}
	var state segment.DocVisitState
	for n := range vals {
		v := int64(math.MinInt64)
		var err error
		state, err = dv.VisitDocValues(uint64(n), fields, func(_ string, term []byte) { v = createdTerm(term, v) }, state)
		if err != nil {
			return nil, err
		}
		vals[n] = v
	}
	return vals, nil
}

// createdTerm returns the value of a created_at doc value term when it is
// the full-precision one (a date is indexed at several precisions), else
// v.
func createdTerm(term []byte, v int64) int64 {
	pc := numeric.PrefixCoded(term)
	if shift, err := pc.Shift(); err == nil && shift == 0 {
		if n, err := pc.Int64(); err == nil {
			return n
		}
	}
	return v
}

// docValueReader reads created_at through the index's doc value reader.
func docValueReader(r index.IndexReader) (func(*bsearch.DocumentMatch) (int64, error), error) {
	dv, err := r.DocValueReader([]string{fCreatedAt})
	if err != nil {
		return nil, err
	}
	return func(d *bsearch.DocumentMatch) (int64, error) {
		v := int64(math.MinInt64)
		err := dv.VisitDocValues(d.IndexInternalID, func(_ string, term []byte) { v = createdTerm(term, v) })
		return v, err
	}, nil
}
