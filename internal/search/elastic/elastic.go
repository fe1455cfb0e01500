// Package elastic is the scale-out search backend: Elasticsearch 8 (or
// OpenSearch 2) through github.com/elastic/go-elasticsearch/v8, chosen with
// SEARCH_URL=http(s)://host:9200[/index].
//
// Versions are Elasticsearch's own external versions: every bulk action
// carries version=<LSN> and version_type=external, so Elasticsearch itself
// refuses a stale or repeated write (item status 409, counted as stale, not
// an error). A delete leaves a versioned tombstone for index.gc_deletes,
// which the index is created with at 24h instead of the default 60s, so a
// redelivery arriving later than that is the only case this backend cannot
// refuse (Bleve keeps tombstones forever).
//
// Bulk requests use refresh=wait_for: Apply returns once the writes are
// searchable, which is what makes the applied LSN (stored afterwards) a
// read-your-writes guarantee. The applied LSN lives in a side index
// "<index>_meta", document "applied_lsn", also written with an external
// version, so it can only grow whichever indexer writes it.
package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/docstream/docstream/internal/search"
)

// DefaultIndex is the reference's index name.
const DefaultIndex = "documents"

// Mapping is the reference's mapping plus the content field; it is what a
// missing index is created with.
const Mapping = `{"settings":{"index":{"gc_deletes":"24h"}},"mappings":{"properties":{` +
	`"id":{"type":"keyword"},` +
	`"title":{"type":"text","fields":{"keyword":{"type":"keyword"}}},` +
	`"status":{"type":"keyword"},` +
	`"created_by":{"type":"text","fields":{"keyword":{"type":"keyword"}}},` +
	`"content_type":{"type":"keyword"},` +
	`"content_size":{"type":"long"},` +
	`"s3_key":{"type":"keyword","index":false},` +
	`"created_at":{"type":"date"},` +
	`"updated_at":{"type":"date"},` +
	`"version":{"type":"integer"},` +
	`"content":{"type":"text","analyzer":"english"},` +
	addedProperties + `}}}`

// addedProperties are the fields added after indexes existed, as exact
// keywords: each document's access (search.Document.Owner and Readers)
// and the state of its newest signing request (SigningStatus). An index
// created before them gets them added at Open (AddedMapping): adding a
// field is the one mapping change Elasticsearch allows in place.
const addedProperties = `"owner":{"type":"keyword"},"readers":{"type":"keyword"},"signing_status":{"type":"keyword"}`

// AddedMapping is the body of the PUT _mapping that adds the added fields
// to an existing index.
const AddedMapping = `{"properties":{` + addedProperties + `}}`

const metaMapping = `{"mappings":{"properties":{"lsn":{"type":"unsigned_long"}}}}`

// Index is a search.Index over an Elasticsearch index.
type Index struct {
	es    *elasticsearch.Client
	index string
	meta  string
}

var _ search.Index = (*Index)(nil)

// Open connects to the cluster at rawURL (http(s)://[user:pass@]host:port,
// optionally /<index>) and creates the index and its meta index if missing.
func Open(ctx context.Context, rawURL string, httpClient *http.Client) (*Index, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("search url: %w", err)
	}
	index := strings.Trim(u.Path, "/")
	if index == "" {
		index = DefaultIndex
	}
	cfg := elasticsearch.Config{Addresses: []string{u.Scheme + "://" + u.Host}}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	base := http.DefaultTransport
	if httpClient != nil && httpClient.Transport != nil {
		base = httpClient.Transport
	}
	cfg.Transport = openSearchCompat{base}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	x := &Index{es: es, index: index, meta: index + "_meta"}
	created, err := x.ensureIndex(ctx, x.index, Mapping)
	if err != nil {
		return nil, err
	}
	if !created {
		if err := x.putAddedMapping(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := x.ensureIndex(ctx, x.meta, metaMapping); err != nil {
		return nil, err
	}
	return x, nil
}

// putAddedMapping adds the added fields to an index that existed before
// them. Idempotent: putting a field with the mapping it already has is
// accepted. Without it the first indexed readers (or signing status) would
// be mapped dynamically as analysed text, and the term filters would not
// match. The documents already indexed have no signing_status until their
// next change; migration 00021 gives every document it concerns one.
func (x *Index) putAddedMapping(ctx context.Context) error {
	r, err := x.es.Indices.PutMapping([]string{x.index}, strings.NewReader(AddedMapping), x.es.Indices.PutMapping.WithContext(ctx))
	if err := check(r, err, "put mapping "+x.index); err != nil {
		return err
	}
	r.Body.Close()
	return nil
}

// openSearchCompat lets the client talk to OpenSearch, which speaks the same
// API subset we use but does not send the product header the v8 client
// insists on.
type openSearchCompat struct{ next http.RoundTripper }

func (t openSearchCompat) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(r)
	if err == nil && res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, err
}

// esError is Elasticsearch's error body.
type esError struct {
	Error struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
	Status int `json:"status"`
}

// check turns an error response into an error naming what Elasticsearch said.
func check(res *esapi.Response, err error, what string) error {
	if err != nil {
		return fmt.Errorf("elasticsearch %s: %w", what, err)
	}
	if !res.IsError() {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e esError
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		return fmt.Errorf("elasticsearch %s: %d %s: %s", what, res.StatusCode, e.Error.Type, e.Error.Reason)
	}
	return fmt.Errorf("elasticsearch %s: %d %s", what, res.StatusCode, strings.TrimSpace(string(body)))
}

// ensureIndex creates the index name with mapping if it is missing, and
// reports whether it did (false: it existed, with whatever mapping it was
// created with).
func (x *Index) ensureIndex(ctx context.Context, name, mapping string) (created bool, err error) {
	res, err := x.es.Indices.Exists([]string{name}, x.es.Indices.Exists.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("elasticsearch index exists: %w", err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		return false, nil
	}
	if res.StatusCode != http.StatusNotFound {
		return false, fmt.Errorf("elasticsearch index exists %s: status %d", name, res.StatusCode)
	}
	res, err = x.es.Indices.Create(name, x.es.Indices.Create.WithBody(strings.NewReader(mapping)), x.es.Indices.Create.WithContext(ctx))
	if err := check(res, err, "create index "+name); err != nil {
		// Another instance may have created it in between.
		if strings.Contains(err.Error(), "resource_already_exists_exception") {
			return false, nil
		}
		return false, err
	}
	res.Body.Close()
	return true, nil
}

// source is the stored document: the reference's fields plus content.
type source struct {
	search.Document
	Content string `json:"content,omitempty"`
}

type bulkAction struct {
	Index       string `json:"_index"`
	ID          string `json:"_id"`
	Version     uint64 `json:"version"`
	VersionType string `json:"version_type"`
}

type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int    `json:"status"`
		Result string `json:"result"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"items"`
}

// contentRetries bounds how often Apply re-reads a document whose
// extracted text another writer raced (a 409 on if_seq_no) before it
// hands the batch back to the indexer, which retries it with backoff.
const contentRetries = 5

// Apply implements search.Index with one _bulk request.
//
// A content-only operation (extracted text arriving after the document)
// is a partial update of the content field alone, conditional on the
// document being as read (if_seq_no and if_primary_term from the _mget):
// another indexer process writing the document in between makes it a 409,
// and Apply reads the document again and retries, so neither write undoes
// the other (an index of the whole document at the extraction's version
// would have put back the fields read before the other write).
func (x *Index) Apply(ctx context.Context, ops []search.Op) (search.BulkResult, error) {
	var total search.BulkResult
	for range contentRetries {
		res, raced, err := x.apply(ctx, ops)
		total.Applied += res.Applied
		total.Stale += res.Stale
		if err != nil || len(raced) == 0 {
			return total, err
		}
		ops = raced
	}
	return total, fmt.Errorf("elasticsearch bulk: the extracted text of %d documents raced other writes %d times", len(ops), contentRetries)
}

// apply sends ops as one _bulk; raced are the content-only operations that
// met a concurrent write (to read and send again).
func (x *Index) apply(ctx context.Context, ops []search.Op) (res search.BulkResult, raced []search.Op, err error) {
	if len(ops) == 0 {
		return res, nil, nil
	}
	live, err := x.liveDocs(ctx, ops)
	if err != nil {
		return res, nil, err
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // Encode writes the newline NDJSON needs
	var sent []search.Op
	for _, op := range ops {
		if op.ContentOnly {
			d, ok := live[op.ID]
			if !ok || d.Version >= op.Version {
				res.Stale++ // deleted, not indexed yet (its own event reads the text), or newer
				continue
			}
			sent = append(sent, op)
			if err := enc.Encode(map[string]updateAction{"update": {Index: x.index, ID: op.ID, IfSeqNo: d.SeqNo, IfPrimaryTerm: d.PrimaryTerm}}); err != nil {
				return res, nil, err
			}
			if err := enc.Encode(map[string]map[string]string{"doc": {"content": op.Doc.Content}}); err != nil {
				return res, nil, err
			}
			continue
		}
		sent = append(sent, op)
		a := bulkAction{Index: x.index, ID: op.ID, Version: op.Version, VersionType: "external"}
		if op.Delete {
			if err := enc.Encode(map[string]bulkAction{"delete": a}); err != nil {
				return res, nil, err
			}
			continue
		}
		if err := enc.Encode(map[string]bulkAction{"index": a}); err != nil {
			return res, nil, err
		}
		if err := enc.Encode(source{Document: op.Doc, Content: op.Doc.Content}); err != nil {
			return res, nil, err
		}
	}
	if len(sent) == 0 {
		return res, nil, nil
	}
	r, err := x.es.Bulk(&body, x.es.Bulk.WithContext(ctx), x.es.Bulk.WithRefresh("wait_for"))
	if err := check(r, err, "bulk"); err != nil {
		return res, nil, err
	}
	defer r.Body.Close()
	var br bulkResponse
	if err := json.NewDecoder(r.Body).Decode(&br); err != nil {
		return res, nil, fmt.Errorf("elasticsearch bulk: decode response: %w", err)
	}
	var failed []string
	for i, item := range br.Items {
		for action, it := range item {
			switch {
			case it.Status == http.StatusConflict && action == "update" && i < len(sent):
				raced = append(raced, sent[i]) // written meanwhile: read it again
			case it.Status == http.StatusConflict:
				res.Stale++ // version_conflict_engine_exception: we hold a newer version
			case it.Status == http.StatusNotFound && action == "delete":
				res.Applied++ // already absent; the tombstone is recorded
			case it.Status == http.StatusNotFound && action == "update":
				res.Stale++ // deleted since it was read
			case it.Status >= 300:
				reason := fmt.Sprint(it.Status)
				if it.Error != nil {
					reason = it.Error.Type + ": " + it.Error.Reason
				}
				failed = append(failed, reason)
			default:
				res.Applied++
			}
		}
	}
	if len(failed) > 0 {
		// The whole batch is retried; items already written come back as
		// version conflicts, so retrying is safe.
		return res, nil, fmt.Errorf("elasticsearch bulk: %d of %d items failed, first: %s", len(failed), len(sent), failed[0])
	}
	return res, raced, nil
}

// updateAction is a partial update conditional on the document's
// sequence number: it fails with 409 if the document changed since read.
type updateAction struct {
	Index         string `json:"_index"`
	ID            string `json:"_id"`
	IfSeqNo       int64  `json:"if_seq_no"`
	IfPrimaryTerm int64  `json:"if_primary_term"`
}

// liveDoc is a stored document as _mget read it: its external version and
// the sequence number and primary term a conditional write names.
type liveDoc struct {
	Version     uint64
	SeqNo       int64
	PrimaryTerm int64
}

// liveDocs reads (one _mget) the stored documents that content-only
// operations in ops apply to.
func (x *Index) liveDocs(ctx context.Context, ops []search.Op) (map[string]liveDoc, error) {
	var ids []string
	for _, op := range ops {
		if op.ContentOnly {
			ids = append(ids, op.ID)
		}
	}
	out := map[string]liveDoc{}
	if len(ids) == 0 {
		return out, nil
	}
	body, err := json.Marshal(map[string]any{"ids": ids})
	if err != nil {
		return nil, err
	}
	// Only the metadata: the update sends the content alone.
	r, err := x.es.Mget(bytes.NewReader(body), x.es.Mget.WithContext(ctx), x.es.Mget.WithIndex(x.index),
		x.es.Mget.WithSource("false"))
	if err := check(r, err, "mget"); err != nil {
		return nil, err
	}
	defer r.Body.Close()
	var mr struct {
		Docs []struct {
			ID          string `json:"_id"`
			Found       bool   `json:"found"`
			Version     uint64 `json:"_version"`
			SeqNo       int64  `json:"_seq_no"`
			PrimaryTerm int64  `json:"_primary_term"`
		} `json:"docs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&mr); err != nil {
		return nil, fmt.Errorf("elasticsearch mget: decode response: %w", err)
	}
	for _, d := range mr.Docs {
		if d.Found {
			out[d.ID] = liveDoc{Version: d.Version, SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}
		}
	}
	return out, nil
}

// SetAppliedLSN implements search.Index.
func (x *Index) SetAppliedLSN(ctx context.Context, lsn uint64) error {
	body := fmt.Sprintf(`{"lsn":%d}`, lsn)
	r, err := x.es.Index(x.meta, strings.NewReader(body),
		x.es.Index.WithContext(ctx), x.es.Index.WithDocumentID("applied_lsn"),
		x.es.Index.WithVersion(int(lsn)), x.es.Index.WithVersionType("external"))
	if err == nil && r.StatusCode == http.StatusConflict {
		r.Body.Close()
		return nil // a newer value is already stored
	}
	if err := check(r, err, "set applied lsn"); err != nil {
		return err
	}
	r.Body.Close()
	return nil
}

// AppliedLSN implements search.Index.
func (x *Index) AppliedLSN(ctx context.Context) (uint64, error) {
	r, err := x.es.Get(x.meta, "applied_lsn", x.es.Get.WithContext(ctx))
	if err == nil && r.StatusCode == http.StatusNotFound {
		r.Body.Close()
		return 0, nil
	}
	if err := check(r, err, "get applied lsn"); err != nil {
		return 0, err
	}
	defer r.Body.Close()
	var doc struct {
		Source struct {
			LSN uint64 `json:"lsn"`
		} `json:"_source"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		return 0, fmt.Errorf("elasticsearch get applied lsn: %w", err)
	}
	return doc.Source.LSN, nil
}

// multiMatch is the reference's query, plus content and fuzziness.
func multiMatch(text string) map[string]any {
	return map[string]any{"multi_match": map[string]any{
		"query":     text,
		"fields":    []string{"title^2", "created_by", "content"},
		"fuzziness": "AUTO",
	}}
}

// SearchBody is the query DSL of a search (exported for the contract test
// and for anyone reproducing a query with curl).
func SearchBody(q search.Query) map[string]any {
	filter := []any{}
	if q.Status != "" {
		filter = append(filter, map[string]any{"term": map[string]any{"status": q.Status}})
	}
	if q.CreatedBy != "" {
		filter = append(filter, map[string]any{"term": map[string]any{"created_by.keyword": q.CreatedBy}})
	}
	if q.SigningStatus != "" {
		filter = append(filter, map[string]any{"term": map[string]any{"signing_status": q.SigningStatus}})
	}
	if f := accessFilter(q.Access); f != nil {
		filter = append(filter, f)
	}
	return map[string]any{
		"from":             q.From,
		"size":             q.Size,
		"track_total_hits": search.MaxTotal, // exact up to it, then "gte": Elasticsearch stops counting
		"query": map[string]any{"bool": map[string]any{
			"must":   []any{multiMatch(q.Text)},
			"filter": filter,
		}},
		"highlight": map[string]any{
			"pre_tags":  []string{"<mark>"},
			"post_tags": []string{"</mark>"},
			"fields":    map[string]any{"title": map[string]any{}, "content": map[string]any{}},
		},
		"sort":    []any{map[string]any{"_score": "desc"}, map[string]any{"created_at": map[string]any{"order": "desc", "missing": "_last"}}},
		"_source": map[string]any{"excludes": []string{"content"}},
	}
}

type searchResponse struct {
	Hits struct {
		Total struct {
			Value    int64  `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			ID        string              `json:"_id"`
			Score     *float64            `json:"_score"`
			Source    search.Document     `json:"_source"`
			Highlight map[string][]string `json:"highlight"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]struct {
		Buckets []struct {
			Key      string `json:"key"`
			DocCount int64  `json:"doc_count"`
		} `json:"buckets"`
	} `json:"aggregations"`
}

func (x *Index) search(ctx context.Context, body any, what string) (searchResponse, error) {
	var out searchResponse
	b, err := json.Marshal(body)
	if err != nil {
		return out, err
	}
	r, err := x.es.Search(x.es.Search.WithContext(ctx), x.es.Search.WithIndex(x.index), x.es.Search.WithBody(bytes.NewReader(b)))
	if err := check(r, err, what); err != nil {
		return out, err
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("elasticsearch %s: decode response: %w", what, err)
	}
	return out, nil
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	sr, err := x.search(ctx, SearchBody(q), "search")
	if err != nil {
		return search.Result{}, err
	}
	out := search.Result{Total: sr.Hits.Total.Value, TotalAtLeast: sr.Hits.Total.Relation == "gte", Hits: make([]search.Hit, 0, len(sr.Hits.Hits))}
	for _, h := range sr.Hits.Hits {
		d := h.Source
		if d.ID == "" {
			d.ID = h.ID
		}
		hit := search.Hit{Document: d, Highlights: h.Highlight}
		if h.Score != nil {
			hit.Score = *h.Score
		}
		if hit.Highlights == nil {
			hit.Highlights = map[string][]string{}
		}
		out.Hits = append(out.Hits, hit)
	}
	return out, nil
}

// accessFilter is the filter clause restricting a query to what acc may
// see (nil: unrestricted): a terms query on the readers keyword. In filter
// context it neither scores nor, with no keys, matches anything.
func accessFilter(acc search.Access) map[string]any {
	if !acc.Restricted {
		return nil
	}
	keys := acc.Readers
	if keys == nil {
		keys = []string{}
	}
	return map[string]any{"terms": map[string]any{"readers": keys}}
}

// restricted wraps q in a bool query filtered by acc (q itself when
// unrestricted, so an open deployment sends the reference's queries).
func restricted(q any, acc search.Access) any {
	f := accessFilter(acc)
	if f == nil {
		return q
	}
	return map[string]any{"bool": map[string]any{"must": []any{q}, "filter": []any{f}}}
}

// SuggestBody is the query DSL of a suggestion.
func SuggestBody(prefix string, size int, acc search.Access) map[string]any {
	return map[string]any{
		"size":    0,
		"query":   restricted(map[string]any{"prefix": map[string]any{"title.keyword": map[string]any{"value": prefix, "case_insensitive": true}}}, acc),
		"aggs":    map[string]any{"titles": map[string]any{"terms": map[string]any{"field": "title.keyword", "size": size, "order": map[string]any{"_key": "asc"}}}},
		"_source": false,
	}
}

// Suggest implements search.Index: distinct titles by a terms aggregation
// over the case-insensitive prefix matches.
func (x *Index) Suggest(ctx context.Context, prefix string, size int, acc search.Access) ([]string, error) {
	sr, err := x.search(ctx, SuggestBody(prefix, size, acc), "suggest")
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, b := range sr.Aggregations["titles"].Buckets {
		out = append(out, b.Key)
	}
	return out, nil
}

// termsField maps an aggregation field to its keyword field.
func termsField(field string) string {
	if field == "created_by" {
		return "created_by.keyword"
	}
	return field
}

// TermsBody is the query DSL of a terms aggregation.
func TermsBody(field, text string, size int, acc search.Access) map[string]any {
	var q any = map[string]any{"match_all": map[string]any{}}
	if text != "" {
		q = multiMatch(text)
	}
	return map[string]any{
		"size":  0,
		"query": restricted(q, acc),
		"aggs":  map[string]any{"values": map[string]any{"terms": map[string]any{"field": termsField(field), "size": size}}},
	}
}

// Terms implements search.Index.
func (x *Index) Terms(ctx context.Context, field, text string, size int, acc search.Access) ([]search.Bucket, error) {
	sr, err := x.search(ctx, TermsBody(field, text, size, acc), "terms")
	if err != nil {
		return nil, err
	}
	out := []search.Bucket{}
	for _, b := range sr.Aggregations["values"].Buckets {
		out = append(out, search.Bucket{Key: b.Key, Count: b.DocCount})
	}
	return out, nil
}

// Count implements search.Index.
func (x *Index) Count(ctx context.Context) (int64, error) {
	r, err := x.es.Count(x.es.Count.WithContext(ctx), x.es.Count.WithIndex(x.index))
	if err := check(r, err, "count"); err != nil {
		return 0, err
	}
	defer r.Body.Close()
	var c struct {
		Count int64 `json:"count"`
	}
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		return 0, fmt.Errorf("elasticsearch count: %w", err)
	}
	return c.Count, nil
}

// Ping implements search.Index.
func (x *Index) Ping(ctx context.Context) error {
	r, err := x.es.Ping(x.es.Ping.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("elasticsearch ping: %w", err)
	}
	r.Body.Close()
	if r.IsError() {
		return errors.New("elasticsearch ping: " + r.Status())
	}
	return nil
}

// Close implements search.Index; the client holds no resources to release.
func (x *Index) Close() error { return nil }
