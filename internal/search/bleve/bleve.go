// Package bleve is the embedded search backend: a Bleve (scorch) index in a
// local directory, used by default (`<data-dir>/index`).
//
// Bleve has no document versions, so this package keeps them itself as a
// stored field ("lsn") of each document, read back for the whole batch with
// one ID query before writing. A delete does not remove the document: it
// replaces it with a tombstone (a document holding only its lsn and
// deleted=true), so a late upsert for a deleted document (a redelivery from
// before the delete) is refused. Every query excludes tombstones. They are
// never collected: a few bytes per deleted document is a price worth paying
// for an index that provably equals the table after any replay. (Keeping
// versions in Bleve's internal key/value store instead was measured: scorch
// copies and persists that whole map on every batch, which made indexing
// quadratic.)
//
// Bleve allows one opener per directory: open the index once per process and
// share it between the indexer and the search service.
package bleve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/util"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/docstream/docstream/internal/search"
)

// Field names in the index. title_prefix and created_by_text are derived:
// a lower-cased whole title for prefix suggestions, and created_by analysed
// as text for the multi-field match (created_by itself is an exact keyword).
const (
	fID            = "id"
	fTitle         = "title"
	fTitlePrefix   = "title_prefix"
	fContent       = "content"
	fContentType   = "content_type"
	fContentSize   = "content_size"
	fS3Key         = "s3_key"
	fStatus        = "status"
	fCreatedBy     = "created_by"
	fCreatedByText = "created_by_text"
	fCreatedAt     = "created_at"
	fUpdatedAt     = "updated_at"
	fVersion       = "version"
	// signing_status is an exact keyword (the search filter), added after
	// indexes existed: Open adds it to an older index's mapping.
	fSigningStatus = "signing_status"
	// owner and readers are exact keywords (readers: the access filter),
	// stored but never returned with a hit: an extraction's content-only
	// write rebuilds the document from its stored fields (liveDocs).
	fOwner   = "owner"
	fReaders = "readers"
	fLSN     = "lsn"     // external version of the last write
	fDeleted = "deleted" // true on tombstones only
	// Bleve returns stored dates with second precision; these stored-only
	// copies keep the exact microseconds for the response.
	fCreatedAtExact = "created_at_exact"
	fUpdatedAtExact = "updated_at_exact"

	lowerKeyword = "lower_keyword"
)

// storedFields are returned with every hit.
var storedFields = []string{fID, fTitle, fContentType, fContentSize, fS3Key, fStatus, fCreatedBy, fCreatedAtExact, fUpdatedAtExact, fVersion, fSigningStatus}

var appliedLSNKey = []byte("applied_lsn")

// Index is a search.Index over a Bleve index.
type Index struct {
	idx bleve.Index
	// mu serialises Apply and SetAppliedLSN: the version check and the
	// write must not interleave with another writer's.
	mu sync.Mutex
	// created holds each segment's created_at column for ranking ties.
	created *createdColumns
	// changes counts the batches applied (search.Generational).
	changes atomic.Uint64
	mem     bool // OpenMem's index (not scorch)
}

var _ search.Index = (*Index)(nil)

// LockTimeout is how long Open waits for the index's lock. Bleve allows one
// process per index directory (a lock on its root.bolt); without a bound,
// a second process on the same --data-dir waits forever before listening,
// and a SIGTERM cannot reach it.
const LockTimeout = 2 * time.Second

// ErrLocked is Open's error when another process holds the index.
var ErrLocked = errors.New("the Bleve index is open in another process: Bleve is single-node (one process per index directory); " +
	"run search and indexer in one process on this --data-dir, or give each process its own --data-dir, " +
	"or use Elasticsearch/OpenSearch (--search-url) to scale out")

// Open opens the index in dir, creating it (and dir) if missing, and adds
// to an existing index the fields its mapping lacks (addFields). When
// another process holds it, Open fails with ErrLocked after LockTimeout.
func Open(dir string) (*Index, error) {
	open := func() (bleve.Index, error) {
		return bleve.OpenUsing(dir, map[string]any{"bolt_timeout": LockTimeout.String()})
	}
	idx, err := open()
	if err == nil {
		idx, err = addFields(idx, open)
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open bleve index %s: %w", dir, ErrLocked)
	}
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		// bleve.New wants to create the directory itself.
		if err := os.Remove(dir); err != nil {
			return nil, err
		}
		idx, err = bleve.New(dir, newMapping())
	}
	if err != nil {
		return nil, fmt.Errorf("open bleve index %s: %w", dir, err)
	}
	return &Index{idx: idx, created: newCreatedColumns()}, nil
}

// addFields gives an index created before some of the mapping's fields
// existed (signing_status) those fields, as Elasticsearch's PUT _mapping
// does, and reopens it. Bleve saves the mapping in the index when it
// creates it and offers no way to add a field (its updated_mapping may
// only remove them), but a static mapping decides only how documents
// written from now on are analysed, and scorch keeps fields per segment:
// replacing the saved mapping (the internal key Bleve reads it from) with
// one holding the new fields too, the old ones untouched, is all an added
// field needs. The documents already indexed have no value for it until
// their next change; migration 00021 gives every document it concerns one.
func addFields(idx bleve.Index, reopen func() (bleve.Index, error)) (bleve.Index, error) {
	stored, ok := idx.Mapping().(*mapping.IndexMappingImpl)
	if !ok || stored.DefaultMapping == nil {
		return idx, nil
	}
	want := newMapping().(*mapping.IndexMappingImpl)
	added := false
	for name, p := range want.DefaultMapping.Properties {
		if _, ok := stored.DefaultMapping.Properties[name]; !ok {
			stored.DefaultMapping.AddSubDocumentMapping(name, p)
			added = true
		}
	}
	if !added {
		return idx, nil
	}
	b, err := json.Marshal(stored)
	if err == nil {
		err = idx.SetInternal(util.MappingInternalKey, b)
	}
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("add fields to the mapping: %w", err)
	}
	return reopen()
}

// OpenMem opens an index held in memory only (tests, benchmarks).
func OpenMem() (*Index, error) {
	idx, err := bleve.NewMemOnly(newMapping())
	if err != nil {
		return nil, err
	}
	return &Index{idx: idx, created: newCreatedColumns(), mem: true}, nil
}

func newMapping() mapping.IndexMapping {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomAnalyzer(lowerKeyword, map[string]any{
		"type":          custom.Name,
		"tokenizer":     single.Name,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		// The definition is a constant; failing here is a programming error.
		panic(err)
	}

	text := func(analyzer string, store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = store
		f.IncludeTermVectors = store // highlights need stored text + vectors
		f.IncludeInAll = false
		return f
	}
	kw := func(store bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = store
		f.IncludeTermVectors = false
		f.IncludeInAll = false
		return f
	}
	num := func() *mapping.FieldMapping {
		f := bleve.NewNumericFieldMapping()
		f.IncludeInAll = false
		return f
	}
	date := func() *mapping.FieldMapping {
		f := bleve.NewDateTimeFieldMapping()
		f.IncludeInAll = false
		return f
	}
	stored := func() *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Index = false
		f.Store = true
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		return f
	}

	// Doc values (a per-document copy of a field's terms, uninverted) are
	// kept only where a query reads them: created_at (ties in top-k),
	// title_prefix (suggestions' sort) and the aggregation fields. Bleve
	// keeps them for every field by default; for the analysed text fields
	// that is the largest part of building a segment, and nothing reads it.
	// Fields only returned with a hit, never queried, are stored and not
	// indexed: a numeric or date field indexes a term per precision step.
	sortable := func(f *mapping.FieldMapping) *mapping.FieldMapping { f.DocValues = true; return f }
	plain := func(f *mapping.FieldMapping) *mapping.FieldMapping { f.DocValues = false; return f }
	storedOnly := func(f *mapping.FieldMapping) *mapping.FieldMapping {
		f.Index, f.DocValues, f.Store = false, false, true
		return f
	}

	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt(fID, storedOnly(kw(true)))
	doc.AddFieldMappingsAt(fTitle, plain(text(en.AnalyzerName, true)))
	doc.AddFieldMappingsAt(fTitlePrefix, sortable(text(lowerKeyword, false)))
	doc.AddFieldMappingsAt(fContent, plain(text(en.AnalyzerName, true)))
	doc.AddFieldMappingsAt(fContentType, sortable(kw(true)))
	doc.AddFieldMappingsAt(fContentSize, storedOnly(num()))
	doc.AddFieldMappingsAt(fS3Key, plain(stored()))
	doc.AddFieldMappingsAt(fStatus, sortable(kw(true)))
	doc.AddFieldMappingsAt(fCreatedBy, sortable(kw(true)))
	doc.AddFieldMappingsAt(fCreatedByText, plain(text(standard.Name, false)))
	doc.AddFieldMappingsAt(fCreatedAt, sortable(date()))
	doc.AddFieldMappingsAt(fUpdatedAt, storedOnly(date()))
	doc.AddFieldMappingsAt(fVersion, storedOnly(num()))
	doc.AddFieldMappingsAt(fOwner, storedOnly(kw(true)))
	doc.AddFieldMappingsAt(fReaders, plain(kw(true)))
	doc.AddFieldMappingsAt(fSigningStatus, plain(kw(true)))
	lsn := bleve.NewNumericFieldMapping()
	lsn.Index, lsn.IncludeInAll, lsn.DocValues = false, false, false
	doc.AddFieldMappingsAt(fLSN, lsn)
	del := bleve.NewBooleanFieldMapping()
	del.Store, del.IncludeInAll, del.DocValues = false, false, false
	doc.AddFieldMappingsAt(fDeleted, del)
	doc.AddFieldMappingsAt(fCreatedAtExact, plain(stored()))
	doc.AddFieldMappingsAt(fUpdatedAtExact, plain(stored()))
	m.DefaultMapping = doc
	m.DefaultAnalyzer = standard.Name
	m.StoreDynamic = false
	m.IndexDynamic = false
	return m
}

func toFields(d search.Document, lsn uint64) map[string]any {
	f := map[string]any{
		fLSN:           float64(lsn),
		fID:            d.ID,
		fTitle:         d.Title,
		fTitlePrefix:   d.Title,
		fContentType:   d.ContentType,
		fContentSize:   float64(d.ContentSize),
		fS3Key:         d.S3Key,
		fStatus:        d.Status,
		fCreatedBy:     d.CreatedBy,
		fCreatedByText: d.CreatedBy,
		fVersion:       float64(d.Version),
	}
	if d.Content != "" {
		f[fContent] = d.Content
	}
	if d.Owner != "" {
		f[fOwner] = d.Owner
	}
	if len(d.Readers) > 0 {
		f[fReaders] = d.Readers
	}
	if d.SigningStatus != "" {
		f[fSigningStatus] = d.SigningStatus
	}
	if d.CreatedAt != nil {
		f[fCreatedAt] = d.CreatedAt.UTC()
		f[fCreatedAtExact] = d.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if d.UpdatedAt != nil {
		f[fUpdatedAt] = d.UpdatedAt.UTC()
		f[fUpdatedAtExact] = d.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return f
}

func decodeUint(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func encodeUint(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// versions returns the lsn held for each of ids (documents and tombstones).
func (x *Index) versions(ctx context.Context, ids []string) (map[string]uint64, error) {
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = []string{fLSN}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(res.Hits))
	for _, h := range res.Hits {
		v, _ := h.Fields[fLSN].(float64)
		out[h.ID] = uint64(v)
	}
	return out, nil
}

// liveDocs reads the stored fields of the live documents that
// content-only operations in ops apply to (tombstones have no id field).
func (x *Index) liveDocs(ctx context.Context, ops []search.Op) (map[string]search.Document, error) {
	var ids []string
	for _, op := range ops {
		if op.ContentOnly {
			ids = append(ids, op.ID)
		}
	}
	out := map[string]search.Document{}
	if len(ids) == 0 {
		return out, nil
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = append(append([]string{}, storedFields...), fOwner, fReaders)
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, h := range res.Hits {
		if id, _ := h.Fields[fID].(string); id != "" {
			d := fromFields(h.ID, h.Fields)
			d.Owner, _ = h.Fields[fOwner].(string)
			// One reader comes back as a string, several as a list.
			switch r := h.Fields[fReaders].(type) {
			case string:
				d.Readers = []string{r}
			case []any:
				for _, v := range r {
					if s, ok := v.(string); ok {
						d.Readers = append(d.Readers, s)
					}
				}
			}
			out[h.ID] = d
		}
	}
	return out, nil
}

// Apply implements search.Index. The batch is persisted (scorch's default,
// safe batches wait for the segment to reach disk) before Apply returns.
func (x *Index) Apply(ctx context.Context, ops []search.Op) (search.BulkResult, error) {
	var res search.BulkResult
	if len(ops) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()

	ids := make([]string, 0, len(ops))
	for _, op := range ops {
		ids = append(ids, op.ID)
	}
	held, err := x.versions(ctx, ids) // updated as the batch supersedes them
	if err != nil {
		return res, fmt.Errorf("read versions: %w", err)
	}
	live, err := x.liveDocs(ctx, ops)
	if err != nil {
		return res, fmt.Errorf("read documents: %w", err)
	}
	b := x.idx.NewBatch()
	for _, op := range ops {
		if op.Version <= held[op.ID] {
			res.Stale++
			continue
		}
		fields := map[string]any{fLSN: float64(op.Version), fDeleted: true}
		switch {
		case op.ContentOnly:
			d, ok := live[op.ID]
			if !ok {
				res.Stale++ // deleted, or not indexed yet: its own event reads the text
				continue
			}
			d.Content = op.Doc.Content
			fields = toFields(d, op.Version)
		case !op.Delete:
			fields = toFields(op.Doc, op.Version)
			live[op.ID] = op.Doc
		default:
			delete(live, op.ID)
		}
		if err := b.Index(op.ID, fields); err != nil {
			return res, fmt.Errorf("index %s: %w", op.ID, err)
		}
		held[op.ID] = op.Version
		res.Applied++
	}
	if res.Applied == 0 {
		return res, nil
	}
	if err := x.idx.Batch(b); err != nil {
		return search.BulkResult{}, fmt.Errorf("bleve batch: %w", err)
	}
	x.changes.Add(1)
	return res, nil
}

// Generation implements search.Generational: it moves after each applied
// batch is searchable.
func (x *Index) Generation() uint64 { return x.changes.Load() }

var _ search.Generational = (*Index)(nil)

// SetAppliedLSN implements search.Index.
func (x *Index) SetAppliedLSN(ctx context.Context, lsn uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, err := x.idx.GetInternal(appliedLSNKey)
	if err != nil {
		return err
	}
	if lsn <= decodeUint(cur) {
		return nil
	}
	return x.idx.SetInternal(appliedLSNKey, encodeUint(lsn))
}

// AppliedLSN implements search.Index.
func (x *Index) AppliedLSN(ctx context.Context) (uint64, error) {
	v, err := x.idx.GetInternal(appliedLSNKey)
	return decodeUint(v), err
}

// textQuery is the multi-field match: title (boost 2), created_by and
// content, each fuzzy with Elasticsearch's AUTO edit distance, its prefix
// length and its bound on expansions (query.go).
func textQuery(text string) query.Query {
	q, _ := textQueryTerms(text)
	return q
}

// textQueryTerms is textQuery and the record of the terms its clauses
// search, filled while Bleve builds the searchers.
func textQueryTerms(text string) (query.Query, *automata) {
	dfas := &automata{}
	fields := anyOf{
		newFuzzyMatch(fTitle, text, 2),
		newFuzzyMatch(fCreatedByText, text, 1),
		newFuzzyMatch(fContent, text, 1),
	}
	for _, f := range fields {
		f.(*fuzzyMatch).dfas = dfas
	}
	return fields, dfas
}

// live wraps q so tombstones never match. Only a query that matches
// documents without looking at a field needs it (match-all): a tombstone
// holds no field but lsn and deleted, so every other query (text, filter,
// prefix, readers) never matches one, and the boolean searcher this adds
// costs a query matching most of the index ~7 % of its CPU.
func live(q query.Query) query.Query {
	tomb := bleve.NewBoolFieldQuery(true)
	tomb.SetField(fDeleted)
	bq := bleve.NewBooleanQuery()
	bq.AddMust(q)
	bq.AddMustNot(tomb)
	return bq
}

// restrict limits q to the documents acc may see. The readers clause is a
// conjunct, not a bleve filter: a BooleanQuery's Filter walks every match
// of the main query and checks each, so a query matching everything (an
// aggregation, a common word) would walk the whole index for a caller who
// sees a handful of documents. In a conjunction the rarest clause drives
// (bleve orders conjuncts by their posting-list sizes) and the others skip
// ahead to its documents, so the cost follows what the caller may see.
// Its terms are filterTerms and the disjunction has boost 0, which keeps
// the clause out of scores and the query norm: a visible document ranks
// as it would unrestricted.
func restrict(q query.Query, acc search.Access) query.Query {
	if !acc.Restricted {
		return q
	}
	if len(acc.Readers) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	readers := make([]query.Query, 0, len(acc.Readers))
	for _, k := range acc.Readers {
		readers = append(readers, filterTerm{fReaders, k})
	}
	var filter query.Query = readers[0]
	if len(readers) > 1 {
		d := bleve.NewDisjunctionQuery(readers...)
		d.SetBoost(0)
		filter = d
	}
	return bleve.NewConjunctionQuery(q, filter)
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	text, searched := textQueryTerms(q.Text)
	// The filters select and do not score (Elasticsearch's filter
	// context): every hit holds the same filter terms, so their scores
	// were one constant added to all, and the order is the text's alone.
	must := []query.Query{text}
	if q.Status != "" {
		must = append(must, filterTerm{fStatus, q.Status})
	}
	if q.CreatedBy != "" {
		must = append(must, filterTerm{fCreatedBy, q.CreatedBy})
	}
	if q.SigningStatus != "" {
		must = append(must, filterTerm{fSigningStatus, q.SigningStatus})
	}
	req := bleve.NewSearchRequestOptions(restrict(allOf(must), q.Access), q.Size, q.From, false)
	req.Fields = storedFields
	// Bleve ranks by score only; topK breaks ties by created_at, newest
	// first, reading it only for the hits that need it (topk.go).
	req.SortBy([]string{"-_score"})
	hl := bleve.NewHighlight()
	hl.AddField(fTitle)
	hl.AddField(fContent)
	top := newTopK(req, q.From, q.Size, x.created)
	if x.mem {
		// The in-memory index's fuzzy searcher does not say which terms it
		// expanded to: the searchers read term vectors for every hit.
		req.Highlight = hl
	} else {
		top.highlight(hl, searched)
	}
	res, err := x.idx.SearchInContext(top.context(ctx), req)
	if err != nil {
		return search.Result{}, fmt.Errorf("bleve search: %w", err)
	}
	out := search.Result{Total: int64(res.Total), Hits: make([]search.Hit, 0, len(top.hits))}
	for _, h := range top.hits {
		hl := map[string][]string{}
		for f, frags := range h.Fragments {
			hl[f] = frags
		}
		out.Hits = append(out.Hits, search.Hit{Document: fromFields(h.ID, h.Fields), Score: h.Score, Highlights: hl})
	}
	return out, nil
}

func fromFields(id string, f map[string]any) search.Document {
	str := func(k string) string { s, _ := f[k].(string); return s }
	num := func(k string) float64 { n, _ := f[k].(float64); return n }
	date := func(k string) *time.Time {
		s, ok := f[k].(string)
		if !ok {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return search.Document{
		ID:          id,
		Title:       str(fTitle),
		ContentType: str(fContentType),
		ContentSize: int64(num(fContentSize)),
		S3Key:       str(fS3Key),
		Status:      str(fStatus),
		CreatedBy:   str(fCreatedBy),
		CreatedAt:   date(fCreatedAtExact),
		UpdatedAt:   date(fUpdatedAtExact),
		Version:     int32(num(fVersion)),

		SigningStatus: str(fSigningStatus),
	}
}

// Suggest implements search.Index: a prefix query on the lower-cased whole
// title; titles are de-duplicated case-insensitively and sorted.
func (x *Index) Suggest(ctx context.Context, prefix string, size int, acc search.Access) ([]string, error) {
	q := bleve.NewPrefixQuery(strings.ToLower(prefix))
	q.SetField(fTitlePrefix)
	// Fetch extra hits so duplicates of a popular title do not crowd out
	// the others.
	req := bleve.NewSearchRequestOptions(restrict(q, acc), min(size*5, 500), 0, false)
	req.Fields = []string{fTitle}
	req.SortBy([]string{fTitlePrefix})
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleve suggest: %w", err)
	}
	seen := map[string]bool{}
	out := []string{}
	for _, h := range res.Hits {
		t, _ := h.Fields[fTitle].(string)
		if t == "" || seen[strings.ToLower(t)] {
			continue
		}
		seen[strings.ToLower(t)] = true
		out = append(out, t)
		if len(out) == size {
			break
		}
	}
	return out, nil
}

// Terms implements search.Index.
func (x *Index) Terms(ctx context.Context, field, text string, size int, acc search.Access) ([]search.Bucket, error) {
	q := live(bleve.NewMatchAllQuery())
	if text != "" {
		q = textQuery(text)
	}
	req := bleve.NewSearchRequestOptions(restrict(q, acc), 0, 0, false)
	req.AddFacet(field, bleve.NewFacetRequest(field, size))
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleve terms: %w", err)
	}
	out := []search.Bucket{}
	if fr, ok := res.Facets[field]; ok && fr.Terms != nil {
		for _, t := range fr.Terms.Terms() {
			out = append(out, search.Bucket{Key: t.Term, Count: int64(t.Count)})
		}
	}
	// Count descending, then key, like Elasticsearch's terms aggregation.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// Count implements search.Index: live documents, tombstones excluded.
func (x *Index) Count(ctx context.Context) (int64, error) {
	res, err := x.idx.SearchInContext(ctx, bleve.NewSearchRequestOptions(live(bleve.NewMatchAllQuery()), 0, 0, false))
	if err != nil {
		return 0, err
	}
	return int64(res.Total), nil
}

// Ping implements search.Index: the index answers a count.
func (x *Index) Ping(ctx context.Context) error {
	_, err := x.idx.DocCount()
	return err
}

// Close implements search.Index.
func (x *Index) Close() error { return x.idx.Close() }
