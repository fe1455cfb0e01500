package bleve

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	"github.com/blevesearch/vellum/levenshtein"
)

// Fuzzy matching as Elasticsearch's match query with "fuzziness": "AUTO"
// does it, plus the two bounds Elasticsearch puts on it:
const (
	// PrefixLength is how many leading characters of a query term a fuzzy
	// match does not vary (Elasticsearch's prefix_length). Typos are rare
	// in the first letter, and a fixed prefix confines the walk of each
	// term dictionary to that letter's range.
	PrefixLength = 1
	// MaxExpansions is how many index terms one query term may expand to
	// (Elasticsearch's max_expansions, default 50): the closest ones. A
	// short term in a large vocabulary (a 4-digit number among a million
	// titles' numbers) otherwise becomes a disjunction of hundreds of
	// terms, each a posting list to merge.
	MaxExpansions = 50
)

// autoFuzziness is Elasticsearch's AUTO: 0 edits for terms of 1–2
// characters, 1 for 3–5, 2 beyond.
func autoFuzziness(term string) int {
	switch n := utf8.RuneCountInString(term); {
	case n <= 2:
		return 0
	case n <= 5:
		return 1
	default:
		return 2
	}
}

// fuzzyMatch is a match query on one field: text analysed with the
// field's analyzer, each term matched with AUTO fuzziness, PrefixLength
// and at most MaxExpansions expansions, the terms OR-ed.
type fuzzyMatch struct {
	field string
	text  string
	boost query.Boost
	dfas  *automata // shared by the fields of one multi-field match; nil: own
}

func newFuzzyMatch(field, text string, boost float64) *fuzzyMatch {
	return &fuzzyMatch{field: field, text: text, boost: query.Boost(boost)}
}

// automata are the Levenshtein automata of one query's terms. Building
// one (for an 8-letter term at distance 2) was 28 % of a selective
// search's CPU, and Bleve builds it again for every field it is asked
// to expand the term in: the multi-field match builds it once per term.
//
// They also record the terms each field's clause searched (the query
// words and their expansions), so that term vectors for highlighting are
// read for the page's hits only (topK.finish), not for every hit.
type automata struct {
	mu       sync.Mutex
	built    map[string]*levenshtein.DFA
	searched map[string][]string // by field
}

func (a *automata) record(field string, terms ...string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.searched == nil {
		a.searched = map[string][]string{}
	}
	a.searched[field] = append(a.searched[field], terms...)
}

// terms returns the terms searched in field.
func (a *automata) terms(field string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.searched[field]
}

// levBuilders are the parametric automata for distances 1 and 2 (what
// scorch's own fuzzy dictionary uses: transpositions count as one edit);
// making them is costly, using them is not.
var levBuilders = sync.OnceValues(func() ([2]*levenshtein.LevenshteinAutomatonBuilder, error) {
	var out [2]*levenshtein.LevenshteinAutomatonBuilder
	for d := range out {
		b, err := levenshtein.NewLevenshteinAutomatonBuilder(uint8(d+1), true)
		if err != nil {
			return out, err
		}
		out[d] = b
	}
	return out, nil
})

func (a *automata) get(term string, fuzziness int) (*levenshtein.DFA, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := fmt.Sprintf("%d:%s", fuzziness, term)
	if d, ok := a.built[key]; ok {
		return d, nil
	}
	bs, err := levBuilders()
	if err != nil {
		return nil, err
	}
	if fuzziness < 1 || fuzziness > len(bs) {
		return nil, fmt.Errorf("fuzziness %d out of 1..%d", fuzziness, len(bs))
	}
	d, err := bs[fuzziness-1].BuildDfa(term, uint8(fuzziness))
	if err != nil {
		return nil, err
	}
	if a.built == nil {
		a.built = map[string]*levenshtein.DFA{}
	}
	a.built[key] = d
	return d, nil
}

// Boost and SetBoost make it a query.BoostableQuery.
func (q *fuzzyMatch) Boost() float64     { return q.boost.Value() }
func (q *fuzzyMatch) SetBoost(b float64) { q.boost = query.Boost(b) }
func (q *fuzzyMatch) Field() string      { return q.field }
func (q *fuzzyMatch) SetField(f string)  { q.field = f }

// Searcher implements query.Query.
func (q *fuzzyMatch) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts search.SearcherOptions) (search.Searcher, error) {
	analyzer := m.AnalyzerNamed(m.AnalyzerNameForPath(q.field))
	if analyzer == nil {
		return nil, fmt.Errorf("no analyzer for field %s", q.field)
	}
	var clauses []search.Searcher
	closeAll := func() {
		for _, s := range clauses {
			_ = s.Close()
		}
	}
	seen := map[string]bool{}
	for _, tok := range analyzer.Analyze([]byte(q.text)) {
		term := string(tok.Term)
		if seen[term] {
			continue
		}
		seen[term] = true
		s, err := q.termSearcher(ctx, r, term, opts)
		if err != nil {
			closeAll()
			return nil, err
		}
		clauses = append(clauses, s)
	}
	if len(clauses) == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	if len(clauses) == 1 {
		return clauses[0], nil
	}
	s, err := searcher.NewDisjunctionSearcher(ctx, r, clauses, 1, opts)
	if err != nil {
		closeAll()
	}
	return s, err
}

type cand struct {
	term string
	dist uint8
}

// expand returns the terms of the field within fuzziness edits of term
// that start with prefix. On scorch with a shared automaton it walks each
// segment's dictionary with it; otherwise it asks the index, which
// builds its own.
func (q *fuzzyMatch) expand(r index.IndexReader, fr index.IndexReaderFuzzy, term string, fuzziness int, prefix string) ([]cand, error) {
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok || q.dfas == nil {
		return fuzzyDict(fr, q.field, term, fuzziness, prefix)
	}
	dfa, err := q.dfas.get(term, fuzziness)
	if err != nil {
		return nil, err
	}
	begin := []byte(prefix)
	end := bytes.Clone(begin) // the first key past every term with the prefix
	for i := len(end) - 1; ; i-- {
		if i < 0 {
			end = nil
			break
		}
		if end[i]++; end[i] != 0 {
			break
		}
	}
	dists := map[string]uint8{}
	for _, s := range snap.Segments() {
		dict, err := s.Segment().Dictionary(q.field)
		if err != nil {
			return nil, err
		}
		it := dict.AutomatonIterator(dfa, begin, end)
		for e, err := it.Next(); e != nil || err != nil; e, err = it.Next() {
			if err != nil {
				return nil, err
			}
			if d, seen := dists[e.Term]; !seen || e.EditDistance < d {
				dists[e.Term] = e.EditDistance
			}
		}
	}
	cands := make([]cand, 0, len(dists))
	for t, d := range dists {
		cands = append(cands, cand{t, d})
	}
	// In term order, as the index's own merged dictionary yields them.
	sort.Slice(cands, func(i, j int) bool { return cands[i].term < cands[j].term })
	return cands, nil
}

// fuzzyDict is the index's own fuzzy expansion.
func fuzzyDict(fr index.IndexReaderFuzzy, field, term string, fuzziness int, prefix string) ([]cand, error) {
	dict, _, err := fr.FieldDictFuzzyAutomaton(field, term, fuzziness, prefix)
	if err != nil {
		return nil, err
	}
	var cands []cand
	for e, err := dict.Next(); e != nil || err != nil; e, err = dict.Next() {
		if err != nil {
			_ = dict.Close()
			return nil, err
		}
		cands = append(cands, cand{e.Term, e.EditDistance})
	}
	return cands, dict.Close()
}

// termSearcher matches one analysed term: exactly when AUTO allows no
// edit, otherwise over its closest MaxExpansions fuzzy candidates.
func (q *fuzzyMatch) termSearcher(ctx context.Context, r index.IndexReader, term string, opts search.SearcherOptions) (search.Searcher, error) {
	boost := q.boost.Value()
	fuzziness := autoFuzziness(term)
	if fuzziness == 0 {
		q.dfas.record(q.field, term)
		return searcher.NewTermSearcher(ctx, r, term, q.field, boost, opts)
	}
	fr, ok := r.(index.IndexReaderFuzzy)
	if !ok {
		// Only the in-memory index (OpenMem, tests) has no automaton; its
		// expansion is unbounded.
		return searcher.NewFuzzySearcher(ctx, r, term, PrefixLength, fuzziness, q.field, boost, opts)
	}
	prefix, n := term, 0 // the first PrefixLength characters
	for i := range term {
		if n == PrefixLength {
			prefix = term[:i]
			break
		}
		n++
	}
	cands, err := q.expand(r, fr, term, fuzziness, prefix)
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		// Nothing to match: anyOf drops the clause.
		return searcher.NewMatchNoneSearcher(r)
	}
	if len(cands) == 1 && cands[0].term == term {
		q.dfas.record(q.field, term)
		return searcher.NewTermSearcher(ctx, r, term, q.field, boost, opts)
	}
	if len(cands) > MaxExpansions {
		sort.Slice(cands, func(i, j int) bool {
			if cands[i].dist != cands[j].dist {
				return cands[i].dist < cands[j].dist
			}
			return cands[i].term < cands[j].term
		})
		cands = cands[:MaxExpansions]
	}
	terms := make([]string, len(cands))
	dists := make([]uint8, len(cands))
	for i, c := range cands {
		terms[i], dists[i] = c.term, c.dist
	}
	q.dfas.record(q.field, terms...)
	return searcher.NewMultiTermSearcherBoosted(ctx, r, terms, q.field, boost, dists, opts, true)
}

var _ query.FieldableQuery = (*fuzzyMatch)(nil)

// anyOf is a disjunction (at least one clause) that leaves out the clauses
// matching nothing in the index (a query word absent from a field) and is
// no disjunction at all when one clause remains. Bleve's DisjunctionQuery
// keeps every clause and its layer for each hit: for the multi-field match
// of a word found in content only, two empty term searchers and a
// disjunction scorer on every one of its hits. Scores differ from a
// DisjunctionQuery's by one factor for the whole query (its coordination
// counts the clauses kept, and the query norm their weights), so the
// order of hits is the same.
type anyOf []query.Query

// Searcher implements query.Query.
func (q anyOf) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts search.SearcherOptions) (search.Searcher, error) {
	ss := make([]search.Searcher, 0, len(q))
	for _, c := range q {
		s, err := c.Searcher(ctx, r, m, opts)
		if err != nil {
			for _, s := range ss {
				_ = s.Close()
			}
			return nil, err
		}
		if _, none := s.(*searcher.MatchNoneSearcher); none {
			_ = s.Close()
			continue
		}
		ss = append(ss, s)
	}
	switch len(ss) {
	case 0:
		return searcher.NewMatchNoneSearcher(r)
	case 1:
		return ss[0], nil
	}
	s, err := searcher.NewDisjunctionSearcher(ctx, r, ss, 1, opts)
	if err != nil {
		for _, s := range ss {
			_ = s.Close()
		}
	}
	return s, err
}

// allOf is a conjunction of qs, or qs[0] alone: a conjunction of one
// clause adds a layer and a scorer to every hit and changes nothing.
func allOf(qs []query.Query) query.Query {
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

// filterTerm matches the documents holding value in field without
// scoring them (score 0, weight 0: no part of the query norm), as
// Elasticsearch's filter context does. Every hit of a query holds the
// same filter terms, so their scores were one constant added to all
// hits: the order is the text's alone either way.
//
// It is what lets a conjunction skip through a filter matching much of
// the index (status=created: 40 % of it) instead of walking it, which
// took two changes, each useless alone (measured at 1M documents:
// docs/benchmarks.md, "Search at 1M documents"):
//   - postings read without term frequencies and norms: zap advances a
//     posting list it reads frequencies from one document at a time,
//     decoding each one's frequency and norm on the way; without them it
//     jumps to the target in the list's bitmap;
//   - no scorch conjunction optimisation: given term searchers only,
//     scorch replaces each one's postings by the AND of all of them,
//     after which zap walks each list's full postings one entry at a time
//     to keep its place (a 0.1 %-word search walked the 400,000 postings
//     of status=created). filterSearcher hides the term searcher's
//     Optimize, so a conjunction holding a filter is never optimised so.
type filterTerm struct{ field, value string }

// Searcher implements query.Query.
func (q filterTerm) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts search.SearcherOptions) (search.Searcher, error) {
	opts.Score = "none"
	opts.IncludeTermVectors = false
	s, err := searcher.NewTermSearcher(ctx, r, q.value, q.field, 0, opts)
	if err != nil {
		return nil, err
	}
	return filterSearcher{s}, nil
}

// filterSearcher is a term searcher without its Optimize method (it is
// not an index.Optimizable).
type filterSearcher struct{ search.Searcher }

var _ query.Query = filterTerm{}
