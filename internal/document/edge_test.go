package document

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
)

// assertNothingWritten fails when the service holds any document row or any
// stored object: a refused create must leave neither behind.
func (e *env) assertNothingWritten(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var rows int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM documents.documents").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	keys := testenv.Keys(t, e.bucket)
	if rows != 0 || len(keys) != 0 {
		t.Fatalf("half-written: %d rows, objects %v", rows, keys)
	}
}

// Issue 11 §1: a content type that is not a media type, a NUL byte or bytes
// that are not UTF-8 are the client's mistake: 422 naming the field, never
// "object storage unavailable", and nothing is stored.
func TestBadInputIsRefusedBeforeObjectStorage(t *testing.T) {
	e := newEnv(t)
	const ok = `"title":"T","content":"c","created_by":"a@b.co"`
	cases := []struct {
		name, body, field string
	}{
		{"a content type with a space in the subtype", `{` + ok + `,"content_type":"a/b c"}`, "content_type"},
		{"a content type with an empty parameter", `{` + ok + `,"content_type":"text/plain; ="}`, "content_type"},
		{"a content type without a subtype", `{` + ok + `,"content_type":"text"}`, "content_type"},
		{"a content type with a NUL", `{` + ok + `,"content_type":"text/pl\u0000ain"}`, "content_type"},
		{"a content type that is not UTF-8", `{` + ok + `,"content_type":"text/plain; x=\"` + "\xff" + `\""}`, "content_type"},
		{"a title with a NUL", `{"title":"a\u0000b","content":"c","created_by":"a@b.co"}`, "title"},
		{"a title that is not UTF-8", `{"title":"a` + "\xc3\x28" + `b","content":"c","created_by":"a@b.co"}`, "title"},
		{"content that is not UTF-8", `{"title":"T","content":"` + "\xff\xfe" + `","created_by":"a@b.co"}`, "content"},
		{"an author with a NUL", `{"title":"T","content":"c","created_by":"a\u0000@b.co"}`, "created_by"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er apperr.Body
			resp := e.do(t, "POST", "/documents", c.body, &er)
			if resp.StatusCode != http.StatusUnprocessableEntity || er.Error.Code != "validation" ||
				len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field {
				t.Fatalf("%d %+v, want 422 naming %s", resp.StatusCode, er.Error, c.field)
			}
			e.assertNothingWritten(t)
		})
	}

	multipartCases := []struct {
		name   string
		fields [][2]string
		fileCT string
		field  string
	}{
		{"a content_type field that is not a media type, before the file",
			[][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"content_type", "a/b c"}, {"file", "x"}}, "", "content_type"},
		{"a content_type field that is not a media type, after the file",
			[][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "x"}, {"content_type", "text/plain; ="}}, "", "content_type"},
		{"a file part whose Content-Type is not a media type",
			[][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "x"}}, "a/b c", "file"},
		{"a title field that is not UTF-8, after the file",
			[][2]string{{"file", "x"}, {"title", "bad \xff title"}, {"created_by", "a@b.co"}}, "", "title"},
		{"a created_by field with a NUL",
			[][2]string{{"title", "T"}, {"created_by", "a\x00@b.co"}, {"file", "x"}}, "", "created_by"},
	}
	for _, c := range multipartCases {
		t.Run("multipart: "+c.name, func(t *testing.T) {
			body, ct := form(t, c.fields, c.fileCT)
			var er apperr.Body
			resp := e.upload(t, body, ct, &er)
			if resp.StatusCode != http.StatusUnprocessableEntity || len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field {
				t.Fatalf("%d %+v, want 422 naming %s", resp.StatusCode, er.Error, c.field)
			}
			e.assertNothingWritten(t)
		})
	}

	// The route is not hurt: a good create right after is stored, with the
	// content type in its canonical form.
	var d Document
	resp := e.do(t, "POST", "/documents", `{`+ok+`,"content_type":"Text/Plain; Charset=utf-8"}`, &d)
	if resp.StatusCode != http.StatusCreated || d.ContentType != "text/plain; charset=utf-8" {
		t.Fatalf("good create after bad ones: %d %+v", resp.StatusCode, d)
	}
}

// Issue 11 §9: If-Match compares strongly, so a weak validator never
// matches; "*" means any current version.
func TestIfMatchIsStrongAndAcceptsAnyVersionStar(t *testing.T) {
	e := newEnv(t)
	d := e.create(t, "Tag", "c")
	cases := []struct {
		name, ifMatch string
		want          int
		version       int32
	}{
		{"a weak validator of the current version fails", `W/"1"`, 412, 1},
		{"star matches any current version", `*`, 200, 2},
		{"a stale strong validator fails", `"1"`, 412, 2},
		{"the current strong validator matches", `"2"`, 200, 3},
		{"a bare current version number matches", `3`, 200, 4},
		{"something that is no ETag is a bad request", `"three"`, 400, 4},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got map[string]any
			resp := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "v" + strings.Repeat("x", i)}, &got, "If-Match", c.ifMatch)
			if resp.StatusCode != c.want {
				t.Fatalf("If-Match %s: %d %v, want %d", c.ifMatch, resp.StatusCode, got, c.want)
			}
			var now Document
			e.do(t, "GET", "/documents/"+d.ID, nil, &now)
			if now.Version != c.version {
				t.Fatalf("version %d after If-Match %s, want %d", now.Version, c.ifMatch, c.version)
			}
		})
	}
}
