package search_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
)

// FuzzQueryParams sends arbitrary query strings (and aggregation fields and
// X-Min-LSN headers) to /search, /suggest and /aggregations over a small
// Bleve index. The oracle: a 2xx, or a 4xx in the JSON error shape, never a
// 5xx; the index, which the service only reads, is unchanged. By hand:
//
//	go test -run '^$' -fuzz '^FuzzQueryParams$' -fuzztime 1000000x -parallel 1 ./internal/search/
func FuzzQueryParams(f *testing.F) {
	for _, seed := range []struct {
		route                uint8
		field, query, minLSN string
	}{
		{0, "", "q=agreement&status=signed&from=0&size=10", ""},
		{0, "", "q=%00", ""}, {0, "", "q=%ff%fe&created_by=%ff", ""}, {0, "", "q=x&from=9999&size=100", ""},
		{0, "", "q=sales&min_lsn=1", ""}, {0, "", "q=sales", "18446744073709551615"}, {0, "", "q=a&size=-1", "x"},
		{0, "", "q=*&status=created", ""}, {0, "", `q="unterminated`, ""}, {0, "", "q=title:sales~2", ""},
		{1, "", "q=sa&size=5", ""}, {1, "", "q=%ff%ff", ""}, {1, "", "q=a", ""},
		{2, "status", "q=sales&size=3", ""}, {2, "password", "", ""}, {2, "created_by", "q=%00", ""}, {2, "../x", "", ""},
	} {
		f.Add(seed.route, seed.field, seed.query, seed.minLSN)
	}
	idx, err := bleve.OpenMem()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { idx.Close() })
	t0 := time.Date(2025, 11, 20, 1, 46, 31, 0, time.UTC)
	var ops []search.Op
	for i, title := range []string{"Sales Agreement Q4 2025", "Sales Forecast", "Ünïcode – 契約"} {
		id := string(rune('a' + i))
		ops = append(ops, search.Op{ID: id, Version: 10, Doc: search.Document{ID: id, Title: title, ContentType: "text/plain",
			S3Key: id + "/content", Status: "created", CreatedBy: "john.doe@company.com", CreatedAt: &t0, UpdatedAt: &t0, Version: 1,
			Content: "This agreement outlines the terms of " + title}})
	}
	if _, err := idx.Apply(context.Background(), ops); err != nil {
		f.Fatal(err)
	}
	// min_lsn waits are cut to a millisecond: the wait is not what is fuzzed.
	cfg := search.DefaultConfig()
	cfg.MaxWait, cfg.Poll = time.Millisecond, time.Millisecond
	h := search.NewServer(idx, cfg, logging.Discard())
	total := func(tb testing.TB) int64 {
		res, err := idx.Search(context.Background(), search.Query{Text: "agreement", Size: 10})
		if err != nil {
			tb.Fatal(err)
		}
		return res.Total
	}
	want := total(f)
	f.Fuzz(func(t *testing.T, route uint8, field, query, minLSN string) {
		path := [...]string{"/search", "/suggest", "/aggregations/" + field}[route%3]
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawQuery = path, query
		if minLSN != "" {
			r.Header["X-Min-Lsn"] = []string{minLSN}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code >= 200 && w.Code < 300:
		case w.Code >= 400 && w.Code < 500:
			var e struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Code == "" {
				t.Fatalf("%s?%s: %d without the JSON error shape: %q", path, query, w.Code, w.Body.String())
			}
		default:
			t.Fatalf("%s?%s (X-Min-LSN %q): answered %d %s", path, query, minLSN, w.Code, w.Body.String())
		}
		if got := total(t); got != want {
			t.Fatalf("%s?%s changed the index: %d hits, want %d", path, query, got, want)
		}
	})
}
