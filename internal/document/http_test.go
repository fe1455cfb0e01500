package document

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
)

func TestCreateThenGetReturnsTheReferenceFields(t *testing.T) {
	e := newEnv(t)
	content := "This agreement outlines the terms..."
	var d Document
	resp := e.do(t, "POST", "/documents", map[string]any{
		"title": "Sales Agreement Q4 2025", "content": content, "created_by": "ebemad@company.com",
	}, &d)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sum := sha256.Sum256([]byte(content))
	if d.Title != "Sales Agreement Q4 2025" || d.ContentType != "text/plain" || d.ContentSize != int64(len(content)) ||
		d.Status != StatusCreated || d.Version != 1 || d.S3Key != d.ID+"/content" || d.ContentSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("unexpected document %+v", d)
	}
	if got := resp.Header.Get("Location"); got != "/documents/"+d.ID {
		t.Errorf("Location = %q", got)
	}
	if resp.Header.Get(CommitLSNHeader) == "" {
		t.Error("no X-Commit-LSN on create")
	}
	if d.ID[14] != '7' {
		t.Errorf("id %s is not a UUIDv7", d.ID)
	}
	// The wire shape: exactly the reference's fields plus content_sha256.
	var raw map[string]any
	e.do(t, "GET", "/documents/"+d.ID, nil, &raw)
	for _, k := range []string{"id", "title", "content_type", "content_size", "s3_key", "status", "created_by", "created_at", "updated_at", "version", "content_sha256"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("GET response lacks %q: %v", k, raw)
		}
	}
	if ts, _ := raw["created_at"].(string); len(ts) != len("2025-11-20T01:46:31.657647Z") || !strings.HasSuffix(ts, "Z") {
		t.Errorf("created_at %q is not ISO-8601 UTC with microseconds", ts)
	}
	var got Document
	resp = e.do(t, "GET", "/documents/"+d.ID, nil, &got)
	if got.ID != d.ID || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("get: %+v etag %q", got, resp.Header.Get("ETag"))
	}
	// Content round-trips byte for byte.
	resp = e.do(t, "GET", "/documents/"+d.ID+"/content", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if string(body) != content || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("content %q (%s)", body, resp.Header.Get("Content-Type"))
	}
}

func TestGetCountsViewsAndServesFromCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Cached", "x")
	for i := 0; i < 3; i++ {
		e.do(t, "GET", "/documents/"+d.ID, nil, nil)
	}
	e.do(t, "GET", "/documents/"+d.ID, nil, nil, "X-Forwarded-For", "203.0.113.9")
	if _, err := e.rdb.Get(ctx, "document:"+d.ID).Result(); err != nil {
		t.Fatalf("document:%s not cached: %v", d.ID, err)
	}
	var st Stats
	e.do(t, "GET", "/documents/"+d.ID+"/stats", nil, &st)
	// 4 views from 2 addresses: the loopback peer and the forwarded client
	// (loopback is a trusted proxy by default in the server config? no: the
	// test server trusts nobody, so X-Forwarded-For is ignored).
	if st.DocumentID != d.ID || st.TotalViews != 4 || st.UniqueViews != 1 {
		t.Fatalf("stats %+v; want 4 total, 1 unique (untrusted X-Forwarded-For ignored)", st)
	}
	// The cache is served: change the row behind the cache's back and see the cached copy.
	if _, err := e.pool.Exec(ctx, `UPDATE documents.documents SET title = 'behind' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	var got Document
	e.do(t, "GET", "/documents/"+d.ID, nil, &got)
	if got.Title != "Cached" {
		t.Fatalf("title %q: want the cached copy", got.Title)
	}
}

func TestTrustedProxyForwardedForCountsUniqueViewers(t *testing.T) {
	e := newEnvWith(t, testDB(t), DefaultConfig())
	d := e.create(t, "Viewed", "x")
	for _, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.2"} {
		e.do(t, "GET", "/documents/"+d.ID, nil, nil, "X-Forwarded-For", ip)
	}
	var st Stats
	e.do(t, "GET", "/documents/"+d.ID+"/stats", nil, &st)
	if st.TotalViews != 3 || st.UniqueViews != 2 {
		t.Fatalf("stats %+v; want 3 total, 2 unique", st)
	}
}

func TestBadInputGetsExactStatusAndCode(t *testing.T) {
	e := newEnv(t)
	valid := `"title":"T","content":"c","created_by":"a@b.co"`
	long := strings.Repeat("x", 256)
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code                     apperr.Code
		field                    string
	}{
		{"malformed JSON is 400", "POST", "/documents", `{"title":`, nil, 400, "invalid", ""},
		{"an empty body is 400", "POST", "/documents", ``, nil, 400, "invalid", ""},
		{"a JSON array is 400", "POST", "/documents", `[1]`, nil, 400, "invalid", ""},
		{"trailing data is 400", "POST", "/documents", `{` + valid + `} {}`, nil, 400, "invalid", ""},
		{"a missing title is 422", "POST", "/documents", `{"content":"c","created_by":"a@b.co"}`, nil, 422, "validation", "title"},
		{"a blank title is 422", "POST", "/documents", `{"title":"  ","content":"c","created_by":"a@b.co"}`, nil, 422, "validation", "title"},
		{"a 256-char title is 422", "POST", "/documents", `{"title":"` + long + `","content":"c","created_by":"a@b.co"}`, nil, 422, "validation", "title"},
		{"a numeric title is 422", "POST", "/documents", `{"title":5,"content":"c","created_by":"a@b.co"}`, nil, 422, "validation", "title"},
		{"a missing created_by is 422", "POST", "/documents", `{"title":"T","content":"c"}`, nil, 422, "validation", "created_by"},
		{"a created_by that is no email is 422", "POST", "/documents", `{"title":"T","content":"c","created_by":"john"}`, nil, 422, "validation", "created_by"},
		{"a created_by without a domain dot is 422", "POST", "/documents", `{"title":"T","content":"c","created_by":"john@localhost"}`, nil, 422, "validation", "created_by"},
		{"a missing content is 422", "POST", "/documents", `{"title":"T","created_by":"a@b.co"}`, nil, 422, "validation", "content"},
		{"a content_type without a slash is 422", "POST", "/documents", `{` + valid + `,"content_type":"pdf"}`, nil, 422, "validation", "content_type"},
		{"an unknown field is 422", "POST", "/documents", `{` + valid + `,"owner":"x"}`, nil, 422, "validation", "owner"},
		{"a non-JSON content type is 400", "POST", "/documents", `title=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "invalid", ""},
		{"a non-UUID id is 400", "GET", "/documents/not-a-uuid", ``, nil, 400, "invalid", ""},
		{"an unknown id is 404", "GET", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813", ``, nil, 404, "not_found", ""},
		{"stats of an unknown id is 404", "GET", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813/stats", ``, nil, 404, "not_found", ""},
		{"content of an unknown id is 404", "GET", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813/content", ``, nil, 404, "not_found", ""},
		{"deleting an unknown id is 404", "DELETE", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813", ``, nil, 404, "not_found", ""},
		{"patching an unknown id is 404", "PATCH", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813", `{"title":"x"}`, nil, 404, "not_found", ""},
		{"limit 0 is 422", "GET", "/documents?limit=0", ``, nil, 422, "validation", "limit"},
		{"limit 1001 is 422", "GET", "/documents?limit=1001", ``, nil, 422, "validation", "limit"},
		{"a negative skip is 422", "GET", "/documents?skip=-1", ``, nil, 422, "validation", "skip"},
		{"a word for skip is 422", "GET", "/documents?skip=ten", ``, nil, 422, "validation", "skip"},
		{"an unknown path is a JSON 404", "GET", "/nothing-here", ``, nil, 404, "not_found", ""},
		{"an unknown method is a JSON 405", "PUT", "/documents", `{}`, nil, 405, "method_not_allowed", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			var er apperr.Body
			resp := e.do(t, c.method, c.path, body, &er, c.header...)
			if resp.StatusCode != c.status || er.Error.Code != c.code {
				t.Fatalf("got %d %q (%s); want %d %q", resp.StatusCode, er.Error.Code, er.Error.Message, c.status, c.code)
			}
			if c.field != "" && (len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field) {
				t.Fatalf("details %+v; want field %q named first", er.Error.Details, c.field)
			}
			if er.Error.Message == "" {
				t.Fatal("error without a message")
			}
		})
	}
	// Nothing half-written: no row and no blob came out of all that.
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM documents.documents").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows after only bad requests (%v)", n, err)
	}
	assertNoBlobs(t, e)
}

func TestInlineContentOverTenMiBIs413AndStoresNothing(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("a", MaxJSONContent+1)
	var er apperr.Body
	resp := e.do(t, "POST", "/documents", map[string]any{"title": "big", "content": big, "created_by": "a@b.co"}, &er)
	if resp.StatusCode != 413 || er.Error.Code != "too_large" {
		t.Fatalf("got %d %+v", resp.StatusCode, er.Error)
	}
	// A body beyond the JSON limit is cut off while reading.
	resp = e.do(t, "POST", "/documents", `{"title":"big","created_by":"a@b.co","content":"`+strings.Repeat("\\u0041", maxCreateBody/6+1)+`"}`, &er)
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	assertNoBlobs(t, e)
}

func TestListIsNewestFirstAndPages(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, e.create(t, fmt.Sprintf("doc %d", i), "x").ID)
	}
	var page []Document
	e.do(t, "GET", "/documents?skip=1&limit=2", nil, &page)
	if len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[2] {
		t.Fatalf("page %+v; want docs 3, 2", page)
	}
	var all []Document
	e.do(t, "GET", "/documents", nil, &all)
	if len(all) != 5 || all[0].ID != ids[4] {
		t.Fatalf("default list: %d docs", len(all))
	}
}

func TestPatchVersionsInvalidatesAndFollowsTheStateMachine(t *testing.T) {
	e := newEnv(t)
	d := e.create(t, "Draft", "x")
	e.do(t, "GET", "/documents/"+d.ID, nil, nil) // fill the cache

	var u Document
	resp := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Final", "status": "sent"}, &u)
	if resp.StatusCode != 200 || u.Version != 2 || u.Title != "Final" || u.Status != StatusSent || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("patch: %d %+v", resp.StatusCode, u)
	}
	if !u.UpdatedAt.Time.After(d.UpdatedAt.Time) {
		t.Errorf("updated_at not advanced by the trigger: %v -> %v", d.UpdatedAt, u.UpdatedAt)
	}
	var got Document
	e.do(t, "GET", "/documents/"+d.ID, nil, &got)
	if got.Title != "Final" || got.Version != 2 {
		t.Fatalf("after patch GET shows %+v: cache not invalidated", got)
	}

	var er apperr.Body
	if r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Stale"}, &er, "If-Match", `"1"`); r.StatusCode != 412 || er.Error.Code != "precondition_failed" {
		t.Fatalf("stale If-Match: %d %+v", r.StatusCode, er.Error)
	}
	if r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Fresh"}, &u, "If-Match", `"2"`); r.StatusCode != 200 || u.Version != 3 {
		t.Fatalf("current If-Match: %d %+v", r.StatusCode, u)
	}
	// Same values again: no new version.
	if r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Fresh"}, &u); r.StatusCode != 200 || u.Version != 3 {
		t.Fatalf("no-op patch bumped the version: %+v", u)
	}
	for _, step := range []struct {
		status string
		code   int
	}{{"signed", 200}, {"created", 409}, {"completed", 200}, {"archived", 200}, {"sent", 409}, {"bogus", 422}} {
		var er apperr.Body
		r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"status": step.status}, &er)
		if r.StatusCode != step.code {
			t.Fatalf("-> %s: %d %+v; want %d", step.status, r.StatusCode, er.Error, step.code)
		}
		if step.code == 409 && !(strings.Contains(er.Error.Message, step.status) && strings.Contains(er.Error.Message, "from")) {
			t.Fatalf("409 message %q does not name both states", er.Error.Message)
		}
	}
	if r := e.do(t, "PATCH", "/documents/"+d.ID, `{}`, &er); r.StatusCode != 422 {
		t.Fatalf("empty patch: %d", r.StatusCode)
	}
}

func TestTransitionTable(t *testing.T) {
	cases := []struct {
		from, to Status
		ok       bool
	}{
		{StatusCreated, StatusSigned, true},
		{StatusPending, StatusSigned, true},
		{StatusSigned, StatusSigned, true},
		{StatusSigned, StatusCreated, false},
		{StatusSigned, StatusPending, false},
		{StatusCancelled, StatusSigned, false},
		{StatusArchived, StatusCreated, false},
		{StatusCompleted, StatusArchived, true},
		{StatusApproved, StatusSent, false},
	}
	for _, c := range cases {
		if got := CanTransition(c.from, c.to); got != c.ok {
			t.Errorf("%s -> %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	for s := range transitions {
		for _, to := range transitions[s] {
			if to == StatusCreated {
				t.Errorf("%s may go back to created", s)
			}
		}
	}
}

// TestEveryWireStatusHasARule: the statuses a client can send
// (api.Statuses, which the 422 message lists) are exactly the rows of the
// transition table.
func TestEveryWireStatusHasARule(t *testing.T) {
	if len(api.Statuses) != len(transitions) {
		t.Errorf("api.Statuses has %d statuses, the transition table %d", len(api.Statuses), len(transitions))
	}
	for _, st := range api.Statuses {
		if _, ok := ParseStatus(string(st)); !ok {
			t.Errorf("%s is not accepted", st)
		}
	}
	if got := Statuses(); got != "created, sent, viewed, pending, approved, signed, completed, cancelled, archived" {
		t.Errorf("Statuses() = %q", got)
	}
}

func TestDeleteRemovesRowCacheCountersAndContent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Doomed", "bytes")
	e.do(t, "GET", "/documents/"+d.ID, nil, nil)
	if _, err := e.pool.Exec(ctx, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES (gen_random_uuid(), $1, 's@x.io', 'S')`, d.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "DELETE", "/documents/"+d.ID, nil, nil); r.StatusCode != 204 {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if r := e.do(t, "GET", "/documents/"+d.ID, nil, nil); r.StatusCode != 404 {
		t.Fatalf("get after delete: %d", r.StatusCode)
	}
	var sigs int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM signatures.signatures WHERE document_id = $1`, d.ID).Scan(&sigs)
	if sigs != 0 {
		t.Fatalf("%d signatures survived the delete", sigs)
	}
	if n, _ := e.rdb.Exists(ctx, "views:"+d.ID, "unique_views:"+d.ID).Result(); n != 0 {
		t.Fatalf("%d analytics keys survived", n)
	}
	if ok, _ := e.bucket.Exists(ctx, d.S3Key); ok {
		t.Fatal("content blob survived the delete")
	}
}

func TestContentSupportsRanges(t *testing.T) {
	e := newEnv(t)
	d := e.create(t, "Ranged", "0123456789")
	req, _ := http.NewRequest("GET", e.srv.URL+"/documents/"+d.ID+"/content", nil)
	req.Header.Set("Range", "bytes=2-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || string(b) != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/10" {
		t.Fatalf("range: %d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Range"))
	}
	if resp.Header.Get("ETag") != `"`+d.ContentSHA256+`"` {
		t.Fatalf("content ETag %q", resp.Header.Get("ETag"))
	}

	t.Run("a range past the end is a JSON 416", func(t *testing.T) {
		var er apperr.Body
		resp := e.do(t, "GET", "/documents/"+d.ID+"/content", nil, &er, "Range", "bytes=20-30")
		if resp.StatusCode != 416 || er.Error.Code != "range_not_satisfiable" || resp.Header.Get("Content-Range") != "bytes */10" {
			t.Fatalf("got %d %+v Content-Range %q", resp.StatusCode, er.Error, resp.Header.Get("Content-Range"))
		}
	})
}

func assertNoBlobs(t *testing.T, e *env) {
	t.Helper()
	if keys := testenv.Keys(t, e.bucket); len(keys) > 0 {
		t.Fatalf("left-over blobs %v", keys)
	}
}
