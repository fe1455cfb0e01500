package bleve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/docstream/docstream/internal/bench"
	"github.com/docstream/docstream/internal/search"
)

func corpusIndex(t *testing.T, n int, created func(i int) time.Time) *Index {
	t.Helper()
	x, err := Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	var ops []search.Op
	for i := range n {
		d := bench.Document(i)
		at := created(i)
		id := fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
		ops = append(ops, search.Op{ID: id, Version: uint64(i + 1), Doc: search.Document{ID: id, Title: d.Title,
			Status: d.Status, CreatedBy: d.CreatedBy, CreatedAt: &at, UpdatedAt: &at, Version: 1, Content: d.Content}})
	}
	for len(ops) > 0 {
		k := min(500, len(ops))
		if _, err := x.Apply(context.Background(), ops[:k]); err != nil {
			t.Fatal(err)
		}
		ops = ops[k:]
	}
	return x
}

// term is a scoring term clause, as Search built its filters before
// filterTerm.
func term(field, value string) *query.TermQuery {
	q := bleve.NewTermQuery(value)
	q.SetField(field)
	return q
}

// TestTopKRanksAsBleveSortWould compares every page with Bleve's own
// collector sorting by score then created_at (what Search asked of Bleve
// before topK), over the query Search builds and over the one it built
// before anyOf and allOf: the same hits in the same order, the same total.
func TestTopKRanksAsBleveSortWould(t *testing.T) {
	// Many documents share a created_at (a burst of creates in one
	// microsecond does not happen, but equal scores do, a lot): every
	// tenth second, so that ties on both keys exist as well and fall back
	// to the order Bleve visits hits in, in both collectors.
	x := corpusIndex(t, 3000, func(i int) time.Time { return bench.CreatedAt(i / 10 * 10) })
	// Updates and deletes leave deleted documents inside the segments and
	// put the new versions in later ones: topK's per-segment created_at
	// columns must still map every hit to its own document.
	var ops []search.Op
	for i := 0; i < 3000; i += 7 {
		d := bench.Document(i)
		at := bench.CreatedAt(5000 + i) // unique: equal on both keys, the order of hits is the order of segments, which a merge between two searches changes
		id := fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
		ops = append(ops, search.Op{ID: id, Version: uint64(10000 + i), Doc: search.Document{ID: id, Title: d.Title,
			Status: d.Status, CreatedBy: d.CreatedBy, CreatedAt: &at, UpdatedAt: &at, Version: 2, Content: d.Content}})
	}
	for i := 5; i < 3000; i += 11 {
		ops = append(ops, search.Op{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), Version: uint64(20000 + i), Delete: true})
	}
	for len(ops) > 0 {
		k := min(100, len(ops))
		if _, err := x.Apply(context.Background(), ops[:k]); err != nil {
			t.Fatal(err)
		}
		ops = ops[k:]
	}
	queries := []search.Query{
		{Text: "test", Size: 20},
		{Text: "test", From: 40, Size: 20},
		{Text: "document", Size: 10, Status: "created"},
		{Text: bench.Common[3], Size: 20},
		{Text: "sales agreement", From: 7, Size: 13},
		{Text: bench.Typo(bench.Rare[5], rand.New(rand.NewPCG(1, 1))) + " documnt", Size: 20},
		{Text: "test", From: 2990, Size: 20},
		{Text: "nothingmatchesthis", Size: 10},
		{Text: "test", Size: 100},
		{Text: "test", From: 500, Size: 100},
		// Filters, which select without scoring: the order is the one
		// the scoring term clauses of before gave.
		{Text: bench.Typo(bench.Rare[9], rand.New(rand.NewPCG(2, 2))), Status: "created", Size: 10},
		{Text: bench.Common[3], Status: "created", Size: 20},
		{Text: "test", Status: "signed", From: 20, Size: 20},
		{Text: "document", CreatedBy: bench.Document(42).CreatedBy, Size: 20},
	}
	for _, q := range queries {
		got, err := x.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		must := []query.Query{textQuery(q.Text)}
		if q.Status != "" {
			must = append(must, term(fStatus, q.Status))
		}
		if q.CreatedBy != "" {
			must = append(must, term(fCreatedBy, q.CreatedBy))
		}
		// The query as Search built it before anyOf and allOf: Bleve's
		// disjunction of all three fields, a conjunction even of one
		// clause, and the tombstone exclusion.
		old := bleve.NewDisjunctionQuery(newFuzzyMatch(fTitle, q.Text, 2), newFuzzyMatch(fCreatedByText, q.Text, 1),
			newFuzzyMatch(fContent, q.Text, 1))
		oldMust := append([]query.Query{old}, must[1:]...)
		var gotIDs []string
		for _, h := range got.Hits {
			gotIDs = append(gotIDs, h.ID)
		}
		for k, ref := range []query.Query{allOf(must), live(bleve.NewConjunctionQuery(oldMust...))} {
			req := bleve.NewSearchRequestOptions(ref, q.Size, q.From, false)
			req.SortBy([]string{"-_score", "-" + fCreatedAt})
			// Highlights as Bleve makes them from every hit's term vectors.
			req.Highlight = bleve.NewHighlight()
			req.Highlight.AddField(fTitle)
			req.Highlight.AddField(fContent)
			want, err := x.idx.Search(req)
			if err != nil {
				t.Fatal(err)
			}
			var wantIDs []string
			for _, h := range want.Hits {
				wantIDs = append(wantIDs, h.ID)
			}
			if got.Total != int64(want.Total) || !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("%+v: total %d, want %d\n got %v\nwant %v", q, got.Total, want.Total, gotIDs, wantIDs)
				continue
			}
			for i, h := range got.Hits {
				wantHL := map[string][]string{}
				for f, frags := range want.Hits[i].Fragments {
					wantHL[f] = frags
				}
				if k == 0 && !reflect.DeepEqual(h.Highlights, wantHL) {
					t.Errorf("%+v: %s highlights %v, want %v", q, h.ID, h.Highlights, wantHL)
				}
			}
		}
	}
}

// TestFiltersSelectWithoutScoring: a filtered search's hits are the
// unfiltered search's hits holding the filter's value, each with the
// score it has unfiltered; and the filter's searcher is not an
// index.Optimizable, so scorch's conjunction optimisation (which makes
// zap walk every posting of each clause) never takes a query holding one.
func TestFiltersSelectWithoutScoring(t *testing.T) {
	x := corpusIndex(t, 3000, bench.CreatedAt)
	for _, q := range []search.Query{
		{Text: bench.Common[3], Status: "created"},
		{Text: "test", Status: "signed"},
		{Text: "sales agreement", CreatedBy: bench.Document(42).CreatedBy},
	} {
		filtered, err := x.Search(context.Background(), search.Query{Text: q.Text, Status: q.Status, CreatedBy: q.CreatedBy, Size: 3000})
		if err != nil {
			t.Fatal(err)
		}
		all, err := x.Search(context.Background(), search.Query{Text: q.Text, Size: 3000})
		if err != nil {
			t.Fatal(err)
		}
		score := map[string]float64{}
		want := 0
		for _, h := range all.Hits {
			if (q.Status == "" || h.Status == q.Status) && (q.CreatedBy == "" || h.CreatedBy == q.CreatedBy) {
				score[h.ID] = h.Score
				want++
			}
		}
		if len(filtered.Hits) != want || want == 0 {
			t.Fatalf("%+v: %d hits, want %d (of %d unfiltered)", q, len(filtered.Hits), want, len(all.Hits))
		}
		for _, h := range filtered.Hits {
			if s, ok := score[h.ID]; !ok || h.Score != s {
				t.Fatalf("%+v: %s scores %v filtered, %v unfiltered (present: %v)", q, h.ID, h.Score, s, ok)
			}
		}
	}
	r := reader(t, x)
	s, err := filterTerm{fStatus, "created"}.Searcher(context.Background(), r, x.idx.Mapping(), bsearch.SearcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(index.Optimizable); ok {
		t.Fatalf("the filter's searcher %T is an index.Optimizable", s)
	}
	if s.Count() == 0 {
		t.Fatal("the filter matches nothing: the test checks nothing")
	}
}

// TestFuzzyExpansionIsBoundedAndKeepsThePrefix: a term with more than
// MaxExpansions neighbours within its AUTO distance matches only the
// closest MaxExpansions of them, the exact term ranked first; a typo in
// the first letter is not corrected (PrefixLength), one after it is.
func TestFuzzyExpansionIsBoundedAndKeepsThePrefix(t *testing.T) {
	x, err := Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var ops []search.Op
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("%d", i)
		ops = append(ops, search.Op{ID: id, Version: 1, Doc: search.Document{ID: id, Title: fmt.Sprintf("k%d", 10000+i), CreatedAt: &at}})
	}
	ops = append(ops, search.Op{ID: "c", Version: 1, Doc: search.Document{ID: "c", Title: "Employment Contract", CreatedAt: &at}})
	if _, err := x.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	// k10500 has 1 + 18 terms within one edit among k10000..k10999 and
	// hundreds within two (AUTO allows two for six characters).
	res, err := x.Search(context.Background(), search.Query{Text: "k10500", Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if MaxExpansions != 50 {
		t.Fatalf("MaxExpansions is %d; Elasticsearch's max_expansions default is 50", MaxExpansions)
	}
	// 280 documents without the bound.
	if res.Total > MaxExpansions || res.Total < 19 || res.Hits[0].Title != "k10500" {
		t.Fatalf("k10500 matched %d documents (first %q); want at most %d, the exact one first", res.Total, res.Hits[0].Title, MaxExpansions)
	}
	for q, want := range map[string]int64{"contrxct": 1, "xontract": 0, "contract": 1} {
		res, err := x.Search(context.Background(), search.Query{Text: q, Size: 10})
		if err != nil || res.Total != want {
			t.Errorf("%s: %d hits (%v), want %d", q, res.Total, err, want)
		}
	}
}

// TestSharedAutomatonExpandsAsTheIndexDoes: the multi-field match's own
// walk of each segment's dictionary with one automaton finds the same
// terms at the same distances as the index's fuzzy dictionary.
func TestSharedAutomatonExpandsAsTheIndexDoes(t *testing.T) {
	x := corpusIndex(t, 3000, bench.CreatedAt)
	r := reader(t, x)
	fr := r.(index.IndexReaderFuzzy)
	rng := rand.New(rand.NewPCG(3, 3))
	terms := []string{"test", "tset", "document", "documnet", "agrement", "user1", "paymnt", "term", bench.Common[1]}
	for range 10 {
		terms = append(terms, bench.Typo(bench.Rare[rng.IntN(len(bench.Rare))], rng))
	}
	dfas := &automata{}
	expanded := 0
	for _, field := range []string{fTitle, fContent, fCreatedByText} {
		for _, term := range terms {
			fz := autoFuzziness(term)
			q := &fuzzyMatch{field: field, text: term, dfas: dfas}
			got, err := q.expand(r, fr, term, fz, term[:PrefixLength])
			if err != nil {
				t.Fatal(err)
			}
			want, err := fuzzyDict(fr, field, term, fz, term[:PrefixLength])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s in %s: got %v, want %v", term, field, got, want)
			}
			expanded += len(got)
		}
	}
	if expanded < len(terms) {
		t.Fatalf("only %d terms expanded in all: the test compares empty sets", expanded)
	}
}

// reader is a reader of x's index, closed when the test ends.
func reader(t *testing.T, x *Index) index.IndexReader {
	t.Helper()
	adv, err := x.idx.Advanced()
	if err != nil {
		t.Fatal(err)
	}
	r, err := adv.Reader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
