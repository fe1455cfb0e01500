package search_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
)

// As puts the principal a test names on the request's context, standing in
// for the authentication middleware (which puts the verified one there).
var as = map[string]auth.Principal{
	"alice":   {Kind: auth.KindUser, Subject: "alice", Email: "alice@x.com", EmailVerified: true},
	"bob":     {Kind: auth.KindUser, Subject: "bob", Email: "bob@x.com", EmailVerified: true},
	"carol":   {Kind: auth.KindUser, Subject: "carol", Groups: []string{"legal"}},
	"admin":   {Kind: auth.KindUser, Subject: "root", Admin: true},
	"keyless": {Kind: auth.KindUser},
	// Alice's own key for signing: it is among her documents' readers, but
	// its scopes do not include read.
	"signkey":  {Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeSign}},
	"adminkey": {Kind: auth.KindAPIKey, Subject: "k2", Admin: true, Scopes: []auth.Scope{auth.ScopeWrite}},
}

func withPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := as[r.Header.Get("X-Test-As")]; ok {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	})
}

// accessServer indexes Alice's private merger plan, her contract shared
// with the legal group, Bob's forecast and an anonymous note (no readers).
func accessServer(t *testing.T, mode auth.Mode) (*httptest.Server, search.Index) {
	t.Helper()
	idx, err := bleve.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	t0 := time.Date(2025, 11, 20, 1, 46, 31, 0, time.UTC)
	doc := func(v uint64, id, title, by, content, owner string, readers ...string) search.Op {
		created := t0.Add(time.Duration(v) * time.Minute)
		return search.Op{ID: id, Version: v, Doc: search.Document{ID: id, Title: title, ContentType: "text/plain", S3Key: id + "/content",
			Status: "created", CreatedBy: by, CreatedAt: &created, UpdatedAt: &created, Version: 1, Content: content, Owner: owner, Readers: readers}}
	}
	if _, err := idx.Apply(context.Background(), []search.Op{
		doc(1, "a", "Quarterly merger plan", "alice@x.com", "The zephyr acquisition closes in March.", "user:alice", "user:alice", "apikey:k1"),
		doc(2, "b", "Quarterly contract", "alice@x.com", "Contract terms reviewed by legal.", "user:alice", "user:alice", "group:legal"),
		doc(3, "c", "Quarterly forecast", "bob@x.com", "Bob's numbers.", "user:bob", "user:bob"),
		doc(4, "d", "Quarterly notes", "anon@x.com", "Anonymous notes.", ""),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := search.DefaultConfig()
	cfg.Mode = mode
	srv := httptest.NewServer(withPrincipal(search.NewServer(idx, cfg, logging.Discard())))
	t.Cleanup(srv.Close)
	return srv, idx
}

// seen is everything a response says about documents: ids, titles,
// suggestions, aggregation keys and counts, totals, highlights.
func seen(t *testing.T, srv *httptest.Server, who, path string) (int, string) {
	t.Helper()
	code, body := get(t, srv.URL+path, "X-Test-As", who)
	return code, fmt.Sprint(body)
}

func TestSearchShowsOnlyWhatTheCallerMayView(t *testing.T) {
	srv, _ := accessServer(t, auth.ModeRequired)
	// Alice warms whatever caches there are with her private document
	// first; nothing of it may reach anyone else afterwards.
	for _, path := range []string{"/search?q=zephyr", "/search?q=quarterly", "/suggest?q=qu", "/aggregations/created_by", "/aggregations/status?q=zephyr"} {
		code, body := seen(t, srv, "alice", path)
		if code != 200 || strings.Contains(body, "total:0") || strings.Contains(body, "[]") {
			t.Fatalf("alice %s: %d %s", path, code, body)
		}
	}
	cases := []struct {
		name, who, path string
		want            string // in the answer (empty: nothing to check)
		leak            []string
	}{
		{"bob's search for a word of alice's private content finds nothing", "bob", "/search?q=zephyr", "total:0", []string{"merger", "zephyr", `id:a`}},
		{"bob's search total counts only his document", "bob", "/search?q=quarterly", "total:1", []string{"merger", "contract", "notes", "alice"}},
		{"bob's fuzzy search finds nothing of alice's", "bob", "/search?q=zephir", "total:0", []string{"merger", "zephyr"}},
		{"bob's filter by alice's address finds nothing", "bob", "/search?q=quarterly&created_by=alice@x.com", "total:0", []string{"merger", "contract"}},
		{"bob's suggestions hold only his title", "bob", "/suggest?q=qu", "Quarterly forecast", []string{"merger", "contract", "notes"}},
		{"bob's aggregation counts only his document", "bob", "/aggregations/created_by", "count:1 key:bob@x.com", []string{"alice", "anon"}},
		{"bob's aggregation of alice's word is empty", "bob", "/aggregations/status?q=zephyr", "values:[]", []string{"created"}},
		{"a legal group member finds the shared contract with its highlight", "carol", "/search?q=legal", "<mark>legal</mark>", []string{"merger"}},
		{"a legal group member sees neither the private plan nor the others", "carol", "/search?q=quarterly", "total:1", []string{"merger", "forecast", "notes"}},
		{"a caller without reader keys sees nothing", "keyless", "/search?q=quarterly", "total:0", []string{"Quarterly"}},
		{"a caller without reader keys suggests nothing", "keyless", "/suggest?q=qu", "suggestions:[]", []string{"Quarterly"}},
		{"no principal at all sees nothing", "nobody", "/aggregations/status", "values:[]", []string{"created"}},
		{"an admin sees every document", "admin", "/search?q=quarterly", "total:4", nil},
		{"an admin's aggregation counts every document", "admin", "/aggregations/created_by", "count:2 key:alice@x.com", nil},
		{"the owner finds her private document", "alice", "/search?q=zephyr", "total:1", nil},
		{"a key without the read scope finds nothing it is a reader of", "signkey", "/search?q=zephyr", "total:0", []string{"merger", "zephyr"}},
		{"a key without the read scope suggests nothing", "signkey", "/suggest?q=qu", "suggestions:[]", []string{"Quarterly"}},
		{"a key without the read scope aggregates nothing", "signkey", "/aggregations/created_by", "values:[]", []string{"alice"}},
		{"an admin's key without the read scope reads nothing", "adminkey", "/search?q=quarterly", "total:0", []string{"Quarterly"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := seen(t, srv, c.who, c.path)
			if code != 200 || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s, want %q in it", code, body, c.want)
			}
			for _, l := range c.leak {
				if strings.Contains(body, l) {
					t.Fatalf("%q leaked: %s", l, body)
				}
			}
		})
	}
}

func TestOpenModeSearchIsUnrestricted(t *testing.T) {
	srv, _ := accessServer(t, auth.ModeOpen)
	for _, who := range []string{"bob", "nobody"} {
		if code, body := seen(t, srv, who, "/search?q=quarterly"); code != 200 || !strings.Contains(body, "total:4") {
			t.Fatalf("%s: %d %s", who, code, body)
		}
	}
}

// TestASharedDocumentIsFoundWithTheSharesLSN: the share reaches the index
// as a readers-only change of the document (same version, newer LSN); a
// search with min_lsn at the share's commit waits for it and finds the
// document, and the revocation removes it the same way.
func TestASharedDocumentIsFoundWithTheSharesLSN(t *testing.T) {
	srv, idx := accessServer(t, auth.ModeRequired)
	ctx := context.Background()
	if err := idx.SetAppliedLSN(ctx, 10); err != nil {
		t.Fatal(err)
	}
	readers := func(lsn uint64, keys ...string) {
		time.Sleep(100 * time.Millisecond)
		created := time.Date(2025, 11, 20, 1, 47, 31, 0, time.UTC)
		_, _ = idx.Apply(ctx, []search.Op{{ID: "a", Version: lsn, Doc: search.Document{ID: "a", Title: "Quarterly merger plan", ContentType: "text/plain",
			S3Key: "a/content", Status: "created", CreatedBy: "alice@x.com", CreatedAt: &created, UpdatedAt: &created, Version: 1,
			Content: "The zephyr acquisition closes in March.", Owner: "user:alice", Readers: keys}}})
		_ = idx.SetAppliedLSN(ctx, lsn)
	}
	go readers(20, "user:alice", "user:bob")
	if code, body := seen(t, srv, "bob", "/search?q=zephyr&min_lsn=20"); code != 200 || !strings.Contains(body, "total:1") || strings.Contains(body, "stale") {
		t.Fatalf("after the share: %d %s", code, body)
	}
	go readers(30, "user:alice")
	if code, body := seen(t, srv, "bob", "/search?"+url.Values{"q": {"zephyr"}, "min_lsn": {"30"}}.Encode()); code != 200 || !strings.Contains(body, "total:0") {
		t.Fatalf("after the revocation: %d %s", code, body)
	}
}
