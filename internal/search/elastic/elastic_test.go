package elastic_test

// These tests run the backend against a contract server: an httptest server
// that expects an exact sequence of requests (method, path, query, body —
// bulk NDJSON line by line, query DSL as JSON) and replays responses shaped
// as Elasticsearch 8's documentation shows them. No Elasticsearch can run on
// this machine; this pins the wire contract instead.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/elastic"
)

// exchange is one expected request and the response replayed for it.
type exchange struct {
	method, path, query string
	// body: "" expects no body; a JSON value is compared structurally; for
	// bulk, ndjson lists the exact lines instead.
	body   string
	ndjson []string
	status int
	reply  string
	// corpus, when set, replaces reply for a _search: the documents the
	// query's text matches, from which the server answers as Elasticsearch
	// would after applying the request's access filter (see answer).
	corpus []esDoc
}

// esDoc is one document of a corpus: its _source and the highlight a
// match of the query's text would carry.
type esDoc struct {
	source    map[string]any
	highlight map[string][]string
}

type contractServer struct {
	t    *testing.T
	mu   sync.Mutex
	next []exchange
	srv  *httptest.Server
}

func newContractServer(t *testing.T, script ...exchange) *contractServer {
	c := &contractServer{t: t, next: script}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(func() {
		c.srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.next) > 0 {
			t.Errorf("%d expected requests never came, first: %s %s", len(c.next), c.next[0].method, c.next[0].path)
		}
	})
	return c
}

func (c *contractServer) expect(script ...exchange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = append(c.next, script...)
}

func (c *contractServer) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if len(c.next) == 0 {
		c.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	x := c.next[0]
	c.next = c.next[1:]
	if r.Method != x.method || r.URL.Path != x.path || r.URL.RawQuery != x.query {
		c.t.Errorf("request = %s %s?%s, want %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery, x.method, x.path, x.query)
	}
	switch {
	case x.ndjson != nil:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") && !strings.HasPrefix(ct, "application/json") {
			c.t.Errorf("bulk content type = %q", ct)
		}
		got := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if !strings.HasSuffix(string(body), "\n") {
			c.t.Errorf("bulk body must end with a newline")
		}
		if len(got) != len(x.ndjson) {
			c.t.Errorf("bulk lines = %d, want %d:\n%s", len(got), len(x.ndjson), body)
		}
		for i := range min(len(got), len(x.ndjson)) {
			if !jsonEqual(got[i], x.ndjson[i]) {
				c.t.Errorf("bulk line %d:\n got %s\nwant %s", i+1, got[i], x.ndjson[i])
			}
		}
	case x.body != "":
		if !jsonEqual(string(body), x.body) {
			c.t.Errorf("%s %s body:\n got %s\nwant %s", x.method, x.path, body, x.body)
		}
	case len(body) > 0:
		c.t.Errorf("%s %s: unexpected body %s", x.method, x.path, body)
	}
	if x.corpus != nil {
		x.reply = answer(c.t, body, x.corpus)
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(x.status)
	_, _ = io.WriteString(w, x.reply)
}

// answer is a _search response over corpus as Elasticsearch computes it
// for the request: every "terms" clause on readers anywhere in the query
// keeps only the documents whose readers hold one of its values (a terms
// query on an array field: any element matches; an empty list matches
// nothing); then hits.total, the page of hits (from, size) with their
// highlights, and each terms aggregation are computed over what is left.
// The text match itself is the corpus's: this pins what the access filter
// does to every part of the answer, not Elasticsearch's scoring.
func answer(t *testing.T, body []byte, corpus []esDoc) string {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		t.Errorf("search body: %v", err)
		return "{}"
	}
	var filters [][]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if terms, ok := e.(map[string]any); ok && k == "terms" {
					if keys, ok := terms["readers"].([]any); ok {
						filters = append(filters, keys)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(req["query"])
	var kept []esDoc
	for _, d := range corpus {
		readers, _ := d.source["readers"].([]string)
		ok := true
		for _, f := range filters {
			ok = ok && slices.ContainsFunc(f, func(k any) bool { s, _ := k.(string); return slices.Contains(readers, s) })
		}
		if ok {
			kept = append(kept, d)
		}
	}
	num := func(k string, def int) int {
		if f, ok := req[k].(float64); ok {
			return int(f)
		}
		return def
	}
	from, size := min(num("from", 0), len(kept)), num("size", 10)
	hits := []any{}
	for _, d := range kept[from:min(from+size, len(kept))] {
		hits = append(hits, map[string]any{"_index": "documents", "_id": d.source["id"], "_score": 1.0, "_source": d.source, "highlight": d.highlight})
	}
	aggs := map[string]any{}
	reqAggs, _ := req["aggs"].(map[string]any)
	for name, a := range reqAggs {
		terms := a.(map[string]any)["terms"].(map[string]any)
		field := strings.TrimSuffix(terms["field"].(string), ".keyword")
		counts := map[string]int{}
		for _, d := range kept {
			if v, ok := d.source[field].(string); ok {
				counts[v]++
			}
		}
		var keys []string
		for k := range counts {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if _, byKey := terms["order"]; !byKey && counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return strings.Compare(a, b)
		})
		buckets := []any{}
		for _, k := range keys[:min(len(keys), int(terms["size"].(float64)))] {
			buckets = append(buckets, map[string]any{"key": k, "doc_count": counts[k]})
		}
		aggs[name] = map[string]any{"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}
	}
	out, _ := json.Marshal(map[string]any{"took": 1, "timed_out": false,
		"hits": map[string]any{"total": map[string]any{"value": len(kept), "relation": "eq"}, "hits": hits}, "aggregations": aggs})
	return string(out)
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Responses as documented for Elasticsearch 8.
const (
	createIndexReply = `{"acknowledged":true,"shards_acknowledged":true,"index":"documents"}`
	notFoundReply    = `{"_index":"documents_meta","_id":"applied_lsn","found":false}`
)

// open scripts the start-up: the documents index is missing and created
// with the mapping; the meta index exists already.
func open(t *testing.T) (*elastic.Index, *contractServer) {
	c := newContractServer(t,
		exchange{method: "HEAD", path: "/documents", status: 404},
		exchange{method: "PUT", path: "/documents", body: elastic.Mapping, status: 200, reply: createIndexReply},
		exchange{method: "HEAD", path: "/documents_meta", status: 200},
	)
	x, err := elastic.Open(context.Background(), c.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return x, c
}

func TestOpenCreatesIndexWithReferenceMappingPlusContent(t *testing.T) {
	open(t)
	var m struct {
		Mappings struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(elastic.Mapping), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"id": "keyword", "title": "text", "status": "keyword", "created_by": "text", "content_type": "keyword",
		"content_size": "long", "created_at": "date", "updated_at": "date", "version": "integer", "content": "text"}
	for f, typ := range want {
		if m.Mappings.Properties[f]["type"] != typ {
			t.Errorf("%s: type %v, want %s", f, m.Mappings.Properties[f]["type"], typ)
		}
	}
}

func TestApplySendsExternalVersionsAndCountsConflictsAsStale(t *testing.T) {
	x, c := open(t)
	created := time.Date(2025, 11, 20, 1, 46, 31, 657647000, time.UTC)
	d := search.Document{ID: "a", Title: "Sales Agreement", ContentType: "text/plain", ContentSize: 5, S3Key: "a/content",
		Status: "created", CreatedBy: "john@x.com", CreatedAt: &created, UpdatedAt: &created, Version: 1, Content: "terms"}
	c.expect(exchange{
		method: "POST", path: "/_bulk", query: "refresh=wait_for",
		ndjson: []string{
			`{"index":{"_index":"documents","_id":"a","version":26789752,"version_type":"external"}}`,
			`{"id":"a","title":"Sales Agreement","content_type":"text/plain","content_size":5,"s3_key":"a/content","status":"created","created_by":"john@x.com","created_at":"2025-11-20T01:46:31.657647Z","updated_at":"2025-11-20T01:46:31.657647Z","version":1,"content":"terms"}`,
			`{"index":{"_index":"documents","_id":"b","version":26789760,"version_type":"external"}}`,
			`{"id":"b","title":"","content_type":"","content_size":0,"s3_key":"","status":"","created_by":"","created_at":null,"updated_at":null,"version":0}`,
			`{"delete":{"_index":"documents","_id":"c","version":26789800,"version_type":"external"}}`,
		},
		status: 200,
		reply: `{"took":30,"errors":true,"items":[
{"index":{"_index":"documents","_id":"a","_version":26789752,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"status":201,"_seq_no":0,"_primary_term":1}},
{"index":{"_index":"documents","_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[b]: version conflict, current version [26789900] is higher or equal to the one provided [26789760]","index_uuid":"aAsFqTI0Tc2W0LCWgPNrOA","shard":"0","index":"documents"}}},
{"delete":{"_index":"documents","_id":"c","_version":26789800,"result":"not_found","_shards":{"total":2,"successful":1,"failed":0},"status":404,"_seq_no":1,"_primary_term":1}}]}`,
	})
	res, err := x.Apply(context.Background(), []search.Op{
		{ID: "a", Version: 26789752, Doc: d},
		{ID: "b", Version: 26789760, Doc: search.Document{ID: "b"}},
		{ID: "c", Version: 26789800, Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 2 || res.Stale != 1 {
		t.Fatalf("result = %+v, want 2 applied, 1 stale", res)
	}
}

func TestApplyFailsWhenAnItemFailsForAnotherReason(t *testing.T) {
	x, c := open(t)
	c.expect(exchange{
		method: "POST", path: "/_bulk", query: "refresh=wait_for",
		ndjson: []string{`{"delete":{"_index":"documents","_id":"c","version":7,"version_type":"external"}}`},
		status: 200,
		reply:  `{"took":3,"errors":true,"items":[{"delete":{"_index":"documents","_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}}]}`,
	})
	_, err := x.Apply(context.Background(), []search.Op{{ID: "c", Version: 7, Delete: true}})
	if err == nil || !strings.Contains(err.Error(), "es_rejected_execution_exception") {
		t.Fatalf("err = %v, want the item's error", err)
	}
}

func TestSearchSendsQueryDSLAndDecodesHits(t *testing.T) {
	x, c := open(t)
	c.expect(exchange{
		method: "POST", path: "/documents/_search",
		body: `{"from":10,"size":5,"track_total_hits":10000,
"query":{"bool":{"must":[{"multi_match":{"query":"sales agrement","fields":["title^2","created_by","content"],"fuzziness":"AUTO"}}],
  "filter":[{"term":{"status":"signed"}},{"term":{"created_by.keyword":"john@x.com"}},{"term":{"signing_status":"completed"}}]}},
"highlight":{"pre_tags":["<mark>"],"post_tags":["</mark>"],"fields":{"title":{},"content":{}}},
"sort":[{"_score":"desc"},{"created_at":{"order":"desc","missing":"_last"}}],
"_source":{"excludes":["content"]}}`,
		status: 200,
		reply: `{"took":5,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},
"hits":{"total":{"value":11,"relation":"eq"},"max_score":1.3862942,"hits":[
{"_index":"documents","_id":"a","_score":1.3862942,"_source":{"id":"a","title":"Sales Agreement","content_type":"text/plain","content_size":5,"s3_key":"a/content","status":"signed","created_by":"john@x.com","created_at":"2025-11-20T01:46:31.657647Z","updated_at":"2025-11-20T01:46:31.657650Z","version":2,"signing_status":"completed"},
 "highlight":{"title":["<mark>Sales</mark> <mark>Agreement</mark>"]},"sort":[1.3862942,1763603191657]}]}}`,
	})
	r, err := x.Search(context.Background(), search.Query{Text: "sales agrement", Status: "signed", CreatedBy: "john@x.com", SigningStatus: "completed", From: 10, Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != 11 || len(r.Hits) != 1 {
		t.Fatalf("result = %+v", r)
	}
	h := r.Hits[0]
	if h.ID != "a" || h.Status != "signed" || h.SigningStatus != "completed" || h.Version != 2 || h.Score != 1.3862942 || h.UpdatedAt == nil ||
		h.UpdatedAt.Nanosecond() != 657650000 || !slices.Equal(h.Highlights["title"], []string{"<mark>Sales</mark> <mark>Agreement</mark>"}) {
		t.Fatalf("hit = %+v", h)
	}
}

func TestSuggestAndTerms(t *testing.T) {
	x, c := open(t)
	c.expect(
		exchange{
			method: "POST", path: "/documents/_search",
			body:   `{"size":0,"_source":false,"query":{"prefix":{"title.keyword":{"value":"sal","case_insensitive":true}}},"aggs":{"titles":{"terms":{"field":"title.keyword","size":5,"order":{"_key":"asc"}}}}}`,
			status: 200,
			reply:  `{"took":2,"timed_out":false,"hits":{"total":{"value":3,"relation":"eq"},"max_score":null,"hits":[]},"aggregations":{"titles":{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"Sales Agreement","doc_count":2},{"key":"Sales Forecast","doc_count":1}]}}}`,
		},
		exchange{
			method: "POST", path: "/documents/_search",
			body:   `{"size":0,"query":{"multi_match":{"query":"sales","fields":["title^2","created_by","content"],"fuzziness":"AUTO"}},"aggs":{"values":{"terms":{"field":"created_by.keyword","size":50}}}}`,
			status: 200,
			reply:  `{"took":2,"timed_out":false,"hits":{"total":{"value":3,"relation":"eq"},"max_score":null,"hits":[]},"aggregations":{"values":{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"john@x.com","doc_count":2},{"key":"jane@x.com","doc_count":1}]}}}`,
		},
		exchange{
			method: "POST", path: "/documents/_search",
			body:   `{"size":0,"query":{"match_all":{}},"aggs":{"values":{"terms":{"field":"status","size":50}}}}`,
			status: 200,
			reply:  `{"took":1,"timed_out":false,"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]},"aggregations":{"values":{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[]}}}`,
		},
	)
	s, err := x.Suggest(context.Background(), "sal", 5, search.Everything)
	if err != nil || !slices.Equal(s, []string{"Sales Agreement", "Sales Forecast"}) {
		t.Fatalf("suggest = %v, %v", s, err)
	}
	b, err := x.Terms(context.Background(), "created_by", "sales", 50, search.Everything)
	if err != nil || !slices.Equal(b, []search.Bucket{{Key: "john@x.com", Count: 2}, {Key: "jane@x.com", Count: 1}}) {
		t.Fatalf("terms = %v, %v", b, err)
	}
	b, err = x.Terms(context.Background(), "status", "", 50, search.Everything)
	if err != nil || len(b) != 0 {
		t.Fatalf("terms = %v, %v", b, err)
	}
}

func TestAppliedLSNIsAnExternallyVersionedMetaDocument(t *testing.T) {
	x, c := open(t)
	c.expect(
		exchange{method: "GET", path: "/documents_meta/_doc/applied_lsn", status: 404, reply: notFoundReply},
		exchange{method: "PUT", path: "/documents_meta/_doc/applied_lsn", query: "version=500&version_type=external", body: `{"lsn":500}`,
			status: 201, reply: `{"_index":"documents_meta","_id":"applied_lsn","_version":500,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1}`},
		// An older value loses to the stored one: not an error.
		exchange{method: "PUT", path: "/documents_meta/_doc/applied_lsn", query: "version=400&version_type=external", body: `{"lsn":400}`,
			status: 409, reply: `{"error":{"type":"version_conflict_engine_exception","reason":"[applied_lsn]: version conflict, current version [500] is higher or equal to the one provided [400]"},"status":409}`},
		exchange{method: "GET", path: "/documents_meta/_doc/applied_lsn", status: 200,
			reply: `{"_index":"documents_meta","_id":"applied_lsn","_version":500,"_seq_no":0,"_primary_term":1,"found":true,"_source":{"lsn":500}}`},
	)
	ctx := context.Background()
	if lsn, err := x.AppliedLSN(ctx); err != nil || lsn != 0 {
		t.Fatalf("applied lsn before any = %d, %v", lsn, err)
	}
	if err := x.SetAppliedLSN(ctx, 500); err != nil {
		t.Fatal(err)
	}
	if err := x.SetAppliedLSN(ctx, 400); err != nil {
		t.Fatal(err)
	}
	if lsn, err := x.AppliedLSN(ctx); err != nil || lsn != 500 {
		t.Fatalf("applied lsn = %d, %v", lsn, err)
	}
}

func TestErrorsNameWhatElasticsearchSaid(t *testing.T) {
	x, c := open(t)
	c.expect(exchange{method: "POST", path: "/documents/_count", status: 500,
		reply: `{"error":{"root_cause":[],"type":"search_phase_execution_exception","reason":"all shards failed","phase":"query","grouped":true,"failed_shards":[]},"status":500}`})
	_, err := x.Count(context.Background())
	if err == nil || !strings.Contains(err.Error(), "search_phase_execution_exception: all shards failed") {
		t.Fatalf("err = %v", err)
	}
}

// The access fields and signing_status were added after indexes existed.
func TestOpenAddsTheAddedFieldsToAnIndexThatExisted(t *testing.T) {
	c := newContractServer(t,
		exchange{method: "HEAD", path: "/documents", status: 200},
		exchange{method: "PUT", path: "/documents/_mapping", body: elastic.AddedMapping, status: 200, reply: `{"acknowledged":true}`},
		exchange{method: "HEAD", path: "/documents_meta", status: 200},
	)
	if _, err := elastic.Open(context.Background(), c.srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Mappings struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(elastic.Mapping), &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"owner", "readers", "signing_status"} {
		if m.Mappings.Properties[f]["type"] != "keyword" {
			t.Errorf("%s: type %v, want keyword (exact, not analysed)", f, m.Mappings.Properties[f]["type"])
		}
	}
}

func TestApplyIndexesOwnerAndReaders(t *testing.T) {
	x, c := open(t)
	c.expect(exchange{
		method: "POST", path: "/_bulk", query: "refresh=wait_for",
		ndjson: []string{
			`{"index":{"_index":"documents","_id":"a","version":9,"version_type":"external"}}`,
			`{"id":"a","title":"T","content_type":"","content_size":0,"s3_key":"","status":"","created_by":"","created_at":null,"updated_at":null,"version":1,"owner":"user:alice","readers":["user:alice","group:legal"]}`,
		},
		status: 200,
		reply:  `{"took":3,"errors":false,"items":[{"index":{"_index":"documents","_id":"a","_version":9,"result":"created","status":201}}]}`,
	})
	d := search.Document{ID: "a", Title: "T", Version: 1, Owner: "user:alice", Readers: []string{"user:alice", "group:legal"}}
	if _, err := x.Apply(context.Background(), []search.Op{{ID: "a", Version: 9, Doc: d}}); err != nil {
		t.Fatal(err)
	}
}

// TestAccessIsFilteredInsideEveryQuery: Alice's private document matches
// Bob's text, suggestion and aggregation; the terms filter the backend sends
// is what keeps it out of his hits, total, highlights, suggestions and
// counts, while an unrestricted query (open mode, admins) sends the
// reference's query unchanged.
func TestAccessIsFilteredInsideEveryQuery(t *testing.T) {
	corpus := []esDoc{
		{source: map[string]any{"id": "a", "title": "Sales Merger", "status": "created", "created_by": "alice@x.com", "readers": []string{"user:alice"}},
			highlight: map[string][]string{"content": {"secret <mark>sales</mark> merger"}}},
		{source: map[string]any{"id": "b", "title": "Sales Contract", "status": "signed", "created_by": "alice@x.com", "readers": []string{"user:alice", "group:legal"}},
			highlight: map[string][]string{"title": {"<mark>Sales</mark> Contract"}}},
		{source: map[string]any{"id": "c", "title": "Sales Forecast", "status": "sent", "created_by": "bob@x.com", "readers": []string{"user:bob"}}},
	}
	mm := `{"multi_match":{"query":"sales","fields":["title^2","created_by","content"],"fuzziness":"AUTO"}}`
	searchBody := func(filter string) string {
		return `{"from":0,"size":10,"track_total_hits":10000,"query":{"bool":{"must":[` + mm + `],"filter":[` + filter + `]}},
"highlight":{"pre_tags":["<mark>"],"post_tags":["</mark>"],"fields":{"title":{},"content":{}}},
"sort":[{"_score":"desc"},{"created_at":{"order":"desc","missing":"_last"}}],"_source":{"excludes":["content"]}}`
	}
	prefix := `{"prefix":{"title.keyword":{"value":"sal","case_insensitive":true}}}`
	suggestBody := func(q string) string {
		return `{"size":0,"_source":false,"query":` + q + `,"aggs":{"titles":{"terms":{"field":"title.keyword","size":5,"order":{"_key":"asc"}}}}}`
	}
	termsBody := func(q string) string {
		return `{"size":0,"query":` + q + `,"aggs":{"values":{"terms":{"field":"created_by.keyword","size":10}}}}`
	}
	filtered := func(q, keys string) string {
		return `{"bool":{"must":[` + q + `],"filter":[{"terms":{"readers":` + keys + `}}]}}`
	}
	cases := []struct {
		name                string
		acc                 search.Access
		keys                string // the terms filter's values; "" when unrestricted
		hits                []string
		suggestions         []string
		counts              []search.Bucket
		highlightsOfPrivate bool
	}{
		{"unrestricted", search.Everything, "", []string{"a", "b", "c"}, []string{"Sales Contract", "Sales Forecast", "Sales Merger"},
			[]search.Bucket{{Key: "alice@x.com", Count: 2}, {Key: "bob@x.com", Count: 1}}, true},
		{"bob", search.ReadersOf([]string{"user:bob", "email:bob@x.com"}), `["user:bob","email:bob@x.com"]`, []string{"c"}, []string{"Sales Forecast"},
			[]search.Bucket{{Key: "bob@x.com", Count: 1}}, false},
		{"a legal group member", search.ReadersOf([]string{"user:carol", "group:legal"}), `["user:carol","group:legal"]`, []string{"b"}, []string{"Sales Contract"},
			[]search.Bucket{{Key: "alice@x.com", Count: 1}}, false},
		{"no keys", search.ReadersOf(nil), `[]`, []string{}, []string{}, []search.Bucket{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, c := open(t)
			sb, pb, tb := searchBody(""), suggestBody(prefix), termsBody(mm)
			if tc.keys != "" {
				sb = searchBody(`{"terms":{"readers":` + tc.keys + `}}`)
				pb, tb = suggestBody(filtered(prefix, tc.keys)), termsBody(filtered(mm, tc.keys))
			}
			c.expect(
				exchange{method: "POST", path: "/documents/_search", body: sb, status: 200, corpus: corpus},
				exchange{method: "POST", path: "/documents/_search", body: pb, status: 200, corpus: corpus},
				exchange{method: "POST", path: "/documents/_search", body: tb, status: 200, corpus: corpus},
			)
			ctx := context.Background()
			r, err := x.Search(ctx, search.Query{Text: "sales", Size: 10, Access: tc.acc})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			private := false
			for _, h := range r.Hits {
				got = append(got, h.ID)
				for _, frags := range h.Highlights {
					for _, f := range frags {
						private = private || strings.Contains(f, "merger")
					}
				}
			}
			if !slices.Equal(got, tc.hits) || r.Total != int64(len(tc.hits)) || private != tc.highlightsOfPrivate {
				t.Fatalf("hits = %v, total %d, private highlight %v", got, r.Total, private)
			}
			s, err := x.Suggest(ctx, "sal", 5, tc.acc)
			if err != nil || !slices.Equal(s, tc.suggestions) {
				t.Fatalf("suggest = %v, %v, want %v", s, err, tc.suggestions)
			}
			b, err := x.Terms(ctx, "created_by", "sales", 10, tc.acc)
			if err != nil || !slices.Equal(b, tc.counts) {
				t.Fatalf("terms = %v, %v, want %v", b, err, tc.counts)
			}
		})
	}
}

// Extracted text arriving after the document is a partial update of the
// content alone, conditional on the document as read (if_seq_no): when
// another indexer process writes the document in between, the update is
// a 409 and the text is read and sent again, so the other process's
// fields are never put back to what was read (they were, when the text was
// an index of the whole document read before). A document whose version
// is already newer than the extraction, or that is gone, is stale.
func TestExtractedTextIsAConditionalPartialUpdateRetriedOnARace(t *testing.T) {
	x, c := open(t)
	mget := func(reply string) exchange {
		return exchange{method: "POST", path: "/documents/_mget", query: "_source=false", body: `{"ids":["a","b"]}`, status: 200, reply: reply}
	}
	c.expect(
		mget(`{"docs":[{"_index":"documents","_id":"a","_version":100,"_seq_no":7,"_primary_term":1,"found":true},
{"_index":"documents","_id":"b","_version":900,"_seq_no":3,"_primary_term":1,"found":true}]}`),
		exchange{
			method: "POST", path: "/_bulk", query: "refresh=wait_for",
			ndjson: []string{
				`{"update":{"_index":"documents","_id":"a","if_seq_no":7,"if_primary_term":1}}`,
				`{"doc":{"content":"quokka invoices"}}`,
			},
			status: 200,
			// Another indexer wrote "a" (a title change at version 150)
			// after the _mget.
			reply: `{"took":3,"errors":true,"items":[{"update":{"_index":"documents","_id":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict, required seqNo [7], primary term [1]. current document has seqNo [8] and primary term [1]"}}}]}`,
		},
		exchange{method: "POST", path: "/documents/_mget", query: "_source=false", body: `{"ids":["a"]}`, status: 200,
			reply: `{"docs":[{"_index":"documents","_id":"a","_version":150,"_seq_no":8,"_primary_term":1,"found":true}]}`},
		exchange{
			method: "POST", path: "/_bulk", query: "refresh=wait_for",
			ndjson: []string{
				`{"update":{"_index":"documents","_id":"a","if_seq_no":8,"if_primary_term":1}}`,
				`{"doc":{"content":"quokka invoices"}}`,
			},
			status: 200,
			reply:  `{"took":3,"errors":false,"items":[{"update":{"_index":"documents","_id":"a","_version":151,"result":"updated","status":200,"_seq_no":9,"_primary_term":1}}]}`,
		},
	)
	res, err := x.Apply(context.Background(), []search.Op{
		{ID: "a", Version: 200, ContentOnly: true, Doc: search.Document{ID: "a", Content: "quokka invoices"}},
		// "b" was changed after its extraction: its own event read the text.
		{ID: "b", Version: 200, ContentOnly: true, Doc: search.Document{ID: "b", Content: "old text"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 1 || res.Stale != 1 {
		t.Fatalf("result = %+v, want 1 applied (after one retry), 1 stale", res)
	}
}
