package search_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
)

func newServer(t *testing.T, opts search.Config) (*httptest.Server, search.Index) {
	t.Helper()
	idx, err := bleve.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	t0 := time.Date(2025, 11, 20, 1, 46, 31, 657647000, time.UTC)
	doc := func(id, title, status, signing, by string) search.Op {
		created := t0.Add(time.Duration(len(id)) * time.Minute)
		return search.Op{ID: id, Version: 10, Doc: search.Document{ID: id, Title: title, ContentType: "text/plain", ContentSize: 36,
			S3Key: id + "/content", Status: status, CreatedBy: by, CreatedAt: &created, UpdatedAt: &created, Version: 1,
			SigningStatus: signing, Content: "This agreement outlines the terms of " + title}}
	}
	if _, err := idx.Apply(context.Background(), []search.Op{
		doc("a", "Sales Agreement Q4 2025", "created", "", "john.doe@company.com"),
		doc("bb", "Sales Forecast", "signed", "completed", "jane@company.com"),
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(search.NewServer(idx, opts, logging.Discard()))
	t.Cleanup(srv.Close)
	return srv, idx
}

func get(t *testing.T, url string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", url, err)
	}
	return res.StatusCode, body
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSearchResponseShape(t *testing.T) {
	srv, _ := newServer(t, search.DefaultConfig())
	code, body := get(t, srv.URL+"/search?q=sales&status=created&from=0&size=5")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	if got, want := keys(body), []string{"documents", "from", "size", "took_ms", "total", "total_relation"}; !slices.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	if body["total"] != 1.0 || body["total_relation"] != "eq" || body["from"] != 0.0 || body["size"] != 5.0 {
		t.Fatalf("body = %v", body)
	}
	d := body["documents"].([]any)[0].(map[string]any)
	want := []string{"content_size", "content_type", "created_at", "created_by", "highlights", "id", "s3_key", "score", "status", "title", "updated_at", "version"}
	if got := keys(d); !slices.Equal(got, want) {
		t.Fatalf("document keys = %v, want %v", got, want)
	}
	if d["id"] != "a" || d["created_at"] != "2025-11-20T01:47:31.657647Z" || d["score"].(float64) <= 0 {
		t.Fatalf("document = %v", d)
	}
	if hl := d["highlights"].(map[string]any)["title"].([]any); !strings.Contains(hl[0].(string), "<mark>Sales</mark>") {
		t.Fatalf("highlights = %v", d["highlights"])
	}
}

func TestSuggestAndAggregations(t *testing.T) {
	srv, _ := newServer(t, search.DefaultConfig())
	code, body := get(t, srv.URL+"/suggest?q=sA&size=1")
	if code != 200 || len(body["suggestions"].([]any)) != 1 || body["suggestions"].([]any)[0] != "Sales Agreement Q4 2025" {
		t.Fatalf("suggest: %d %v", code, body)
	}
	code, body = get(t, srv.URL+"/aggregations/status?q=forecast")
	if code != 200 || body["field"] != "status" {
		t.Fatalf("aggregations: %d %v", code, body)
	}
	if vals := body["values"].([]any); len(vals) != 1 || vals[0].(map[string]any)["key"] != "signed" || vals[0].(map[string]any)["count"] != 1.0 {
		t.Fatalf("values = %v", body["values"])
	}
}

// signing_status filters by the state of the document's newest signing
// request, and a hit carries it (absent for a document that never had one).
func TestSearchFiltersBySigningStatus(t *testing.T) {
	srv, _ := newServer(t, search.DefaultConfig())
	code, body := get(t, srv.URL+"/search?q=sales&signing_status=completed")
	docs, _ := body["documents"].([]any)
	if code != 200 || len(docs) != 1 || docs[0].(map[string]any)["id"] != "bb" || docs[0].(map[string]any)["signing_status"] != "completed" {
		t.Fatalf("signing_status=completed: %d %v", code, body)
	}
	code, body = get(t, srv.URL+"/search?q=sales&signing_status=declined")
	if code != 200 || body["total"] != 0.0 {
		t.Fatalf("signing_status=declined: %d %v", code, body)
	}
	code, body = get(t, srv.URL+"/search?q=sales&status=created")
	docs, _ = body["documents"].([]any)
	if code != 200 || len(docs) != 1 || docs[0].(map[string]any)["id"] != "a" {
		t.Fatalf("status=created: %d %v", code, body)
	}
	if _, ok := docs[0].(map[string]any)["signing_status"]; ok {
		t.Fatalf("a document that never had a request carries signing_status: %v", docs[0])
	}
}

func TestBadParameters(t *testing.T) {
	srv, _ := newServer(t, search.DefaultConfig())
	cases := []struct {
		name   string
		path   string
		header []string
		status int
		field  string
	}{
		{"an empty q is refused", "/search?q=", nil, 422, "q"},
		{"a blank q is refused", "/search?q=%20%20", nil, 422, "q"},
		{"a missing q is refused", "/search", nil, 422, "q"},
		{"size 0 is refused", "/search?q=a&size=0", nil, 422, "size"},
		{"size over 100 is refused", "/search?q=a&size=101", nil, 422, "size"},
		{"a non-numeric size is refused", "/search?q=a&size=ten", nil, 422, "size"},
		{"a negative from is refused", "/search?q=a&from=-1", nil, 422, "from"},
		{"paging past the window is refused", "/search?q=a&from=9995&size=10", nil, 422, "from"},
		{"a bad min_lsn is refused", "/search?q=a&min_lsn=x", nil, 422, "min_lsn"},
		{"an unknown signing_status is refused", "/search?q=a&signing_status=signed", nil, 422, "signing_status"},
		{"a list of signing states is refused (one, as status)", "/search?q=a&signing_status=sent,declined", nil, 422, "signing_status"},
		{"a bad X-Min-LSN is refused", "/search?q=a", []string{"X-Min-LSN", "-4"}, 422, "X-Min-LSN"},
		{"a one-letter suggestion prefix is refused", "/suggest?q=s", nil, 422, "q"},
		{"a missing suggestion prefix is refused", "/suggest", nil, 422, "q"},
		{"suggestion size over 20 is refused", "/suggest?q=sa&size=21", nil, 422, "size"},
		{"suggestion size 0 is refused", "/suggest?q=sa&size=0", nil, 422, "size"},
		{"an unknown aggregation field is refused", "/aggregations/title", nil, 400, ""},
		{"aggregating by id is refused", "/aggregations/id?q=x", nil, 400, ""},
		{"a bad aggregation size is refused", "/aggregations/status?size=1000", nil, 422, "size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := get(t, srv.URL+c.path, c.header...)
			if code != c.status {
				t.Fatalf("status = %d, want %d: %v", code, c.status, body)
			}
			e := body["error"].(map[string]any)
			if c.field == "" {
				if e["code"] != "invalid" {
					t.Fatalf("error = %v", e)
				}
				return
			}
			details := e["details"].([]any)
			if e["code"] != "validation" || len(details) == 0 || details[0].(map[string]any)["field"] != c.field {
				t.Fatalf("error = %v, want field %s named", e, c.field)
			}
		})
	}
}

func TestReadYourWrites(t *testing.T) {
	srv, idx := newServer(t, search.DefaultConfig())
	ctx := context.Background()
	if err := idx.SetAppliedLSN(ctx, 100); err != nil {
		t.Fatal(err)
	}

	t.Run("an applied LSN answers at once, not stale", func(t *testing.T) {
		code, body := get(t, srv.URL+"/search?q=sales&min_lsn=100")
		if code != 200 || body["stale"] != nil {
			t.Fatalf("%d %v", code, body)
		}
	})

	t.Run("a request waits until the indexer applies its LSN", func(t *testing.T) {
		go func() {
			time.Sleep(150 * time.Millisecond)
			created := time.Now()
			_, _ = idx.Apply(ctx, []search.Op{{ID: "new", Version: 200, Doc: search.Document{ID: "new", Title: "Sales memo", Status: "created", CreatedBy: "x", CreatedAt: &created}}})
			_ = idx.SetAppliedLSN(ctx, 200)
		}()
		code, body := get(t, srv.URL+"/search?q=memo", "X-Min-LSN", "200")
		if code != 200 || body["stale"] != nil || body["total"] != 1.0 {
			t.Fatalf("%d %v", code, body)
		}
	})

	t.Run("past the bound the answer is marked stale", func(t *testing.T) {
		srv2 := httptest.NewServer(search.NewServer(idx, maxWait(100*time.Millisecond), logging.Discard()))
		defer srv2.Close()
		for _, path := range []string{"/search?q=sales&min_lsn=999", "/suggest?q=sa&min_lsn=999", "/aggregations/status?min_lsn=999"} {
			code, body := get(t, srv2.URL+path)
			if code != 200 || body["stale"] != true {
				t.Fatalf("%s: %d %v", path, code, body)
			}
		}
	})
}

func TestHealth(t *testing.T) {
	srv, _ := newServer(t, search.DefaultConfig())
	code, body := get(t, srv.URL+"/health/ready")
	if code != 200 || body["status"] != "ok" {
		t.Fatalf("%d %v", code, body)
	}
}

// maxWait is the default configuration with another MaxWait.
func maxWait(d time.Duration) search.Config {
	c := search.DefaultConfig()
	c.MaxWait = d
	return c
}

// countingIndex answers every search with total matches.
type countingIndex struct {
	search.Index
	total int64
}

func (c countingIndex) Search(ctx context.Context, q search.Query) (search.Result, error) {
	return search.Result{Total: c.total}, nil
}

// TestSearchTotalIsCappedAsElasticsearchCapsIt: exact up to 10,000, then
// 10,000 and "gte".
func TestSearchTotalIsCappedAsElasticsearchCapsIt(t *testing.T) {
	cfg := search.DefaultConfig()
	cfg.CacheEntries = 0 // the fake has no applied LSN to key a cache by
	for total, want := range map[int64][2]any{9999: {9999.0, "eq"}, 10000: {10000.0, "eq"}, 10001: {10000.0, "gte"}, 2_000_000: {10000.0, "gte"}} {
		srv := httptest.NewServer(search.NewServer(countingIndex{total: total}, cfg, logging.Discard()))
		_, body := get(t, srv.URL+"/search?q=test")
		srv.Close()
		if body["total"] != want[0] || body["total_relation"] != want[1] {
			t.Errorf("%d matches: total %v %v, want %v %v", total, body["total"], body["total_relation"], want[0], want[1])
		}
	}
}

// TestCachedSearchesSeeEveryChange: with the result cache on (the
// default), a search repeated after a write answers with the write,
// whether the write moved the applied LSN or not yet, and a caller's
// min_lsn is honoured.
func TestCachedSearchesSeeEveryChange(t *testing.T) {
	srv, idx := newServer(t, search.DefaultConfig())
	ctx := context.Background()
	total := func(path string) float64 {
		t.Helper()
		code, body := get(t, srv.URL+path)
		if code != 200 {
			t.Fatalf("%s: %d %v", path, code, body)
		}
		return body["total"].(float64)
	}
	if total("/search?q=memo") != 0 || total("/search?q=memo") != 0 {
		t.Fatal("memo found before it was written")
	}
	created := time.Now()
	memo := func(id string, lsn uint64) {
		t.Helper()
		if _, err := idx.Apply(ctx, []search.Op{{ID: id, Version: lsn, Doc: search.Document{ID: id, Title: "Sales memo",
			Status: "created", CreatedBy: "x", CreatedAt: &created}}}); err != nil {
			t.Fatal(err)
		}
	}
	memo("m1", 50) // applied, the watermark not moved
	if n := total("/search?q=memo"); n != 1 {
		t.Fatalf("after a write: total %v, want 1", n)
	}
	memo("m2", 60)
	if err := idx.SetAppliedLSN(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if n := total("/search?q=memo&min_lsn=60"); n != 2 {
		t.Fatalf("at min_lsn 60: total %v, want 2", n)
	}
	if n := total("/search?q=memo"); n != 2 {
		t.Fatalf("repeated: total %v, want 2", n)
	}
}
