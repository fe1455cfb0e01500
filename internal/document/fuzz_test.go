package document

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// The fuzz targets below drive the real handler (middleware, decoder,
// validation, service, PostgreSQL) with arbitrary requests. The oracle is
// the issue 11 one: the answer is a 2xx or a 4xx in the JSON error shape,
// never a 5xx, and nothing is half-written. Content goes to an in-memory
// bucket: object storage parses the content type the same way whatever the
// driver, and a file bucket's fsync per create would cut the executions
// per second tenfold. `go test` runs the seeds; by hand, for example:
//
//	go test -run '^$' -fuzz '^FuzzCreateJSON$' -fuzztime 1000000x -parallel 1 ./internal/document/

// fuzzEnv is one document service over a fresh database, without Redis.
type fuzzEnv struct {
	h      http.Handler
	svc    *Service
	pool   *pgxpool.Pool
	bucket *blob.Bucket
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	pool, err := postgres.Open(context.Background(), testenv.Database(tb), 4)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	bucket := memblob.OpenBucket(nil)
	tb.Cleanup(func() { bucket.Close() })
	log := logging.Discard()
	svc := NewService(NewStore(pool), blobstore.Wrap(bucket), NewCache(nil, time.Minute, log), log)
	return &fuzzEnv{h: NewServer(svc, withMaxUpload(1<<20), log), svc: svc, pool: pool, bucket: bucket}
}

func (e *fuzzEnv) serve(method, path string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, body)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// checkAnswer fails unless w is a 2xx, or a 4xx in the JSON error shape.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, input any) {
	t.Helper()
	switch {
	case w.Code >= 200 && w.Code < 300:
		return
	case w.Code >= 400 && w.Code < 500:
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("input %q: %d without the JSON error shape: %q", input, w.Code, w.Body.String())
		}
	default:
		t.Fatalf("input %q: answered %d %s", input, w.Code, w.Body.String())
	}
}

// counts is what is stored: rows and objects.
func (e *fuzzEnv) counts(t *testing.T) (rows, objects int) {
	t.Helper()
	ctx := context.Background()
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM documents.documents").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return rows, len(testenv.Keys(t, e.bucket))
}

// checkCreate applies the oracle to a create: a 201 stored exactly one row
// and its content (which are then deleted again, so the store stays empty);
// anything else stored nothing.
func (e *fuzzEnv) checkCreate(t *testing.T, w *httptest.ResponseRecorder, input any) {
	t.Helper()
	checkAnswer(t, w, input)
	if w.Code == http.StatusCreated {
		var d Document
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatalf("input %q: 201 with %q: %v", input, w.Body.String(), err)
		}
		ctx := context.Background()
		if ok, err := e.bucket.Exists(ctx, d.S3Key); err != nil || !ok {
			t.Fatalf("input %q: created %s without its content (%v)", input, d.ID, err)
		}
		if err := e.svc.Delete(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	if rows, objects := e.counts(t); rows != 0 || objects != 0 {
		t.Fatalf("input %q: answered %d and left %d rows, %d objects", input, w.Code, rows, objects)
	}
}

func FuzzCreateJSON(f *testing.F) {
	for _, seed := range []string{
		`{"title":"T","content":"c","created_by":"a@b.co"}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"text/plain"}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"text/html; charset=utf-8"}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"a/b c"}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"text/plain; ="}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"text/plain; x=\"\u0000\""}`,
		`{"title":"a\u0000b","content":"c","created_by":"a@b.co"}`,
		"{\"title\":\"\xff\",\"content\":\"c\",\"created_by\":\"a@b.co\"}",
		`{"title":5}`, `[]`, `null`, `{`, `{"owner":1}`, `{} {}`, ``,
		`{"title":"` + strings.Repeat("é", 300) + `","content":"","created_by":"x@y.z"}`,
	} {
		f.Add(seed)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		w := e.serve("POST", "/documents", strings.NewReader(body), "Content-Type", "application/json")
		e.checkCreate(t, w, body)
	})
}

const fuzzBoundary = "fuzzboundary"

func multipartSeed(fields [][2]string, fileCT string) []byte {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.SetBoundary(fuzzBoundary)
	for _, kv := range fields {
		if kv[0] == "file" {
			h := map[string][]string{"Content-Disposition": {`form-data; name="file"; filename="f"`}}
			if fileCT != "" {
				h["Content-Type"] = []string{fileCT}
			}
			w, _ := mw.CreatePart(h)
			_, _ = w.Write([]byte(kv[1]))
			continue
		}
		_ = mw.WriteField(kv[0], kv[1])
	}
	_ = mw.Close()
	return buf.Bytes()
}

// FuzzCreateMultipart mutates whole multipart bodies (boundary fixed), so
// the part parser, the field order and every field are exercised.
func FuzzCreateMultipart(f *testing.F) {
	ok := [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "%PDF-1.7 x"}}
	f.Add(multipartSeed(ok, ""))
	f.Add(multipartSeed(ok, "application/pdf"))
	f.Add(multipartSeed(ok, "a/b c"))
	f.Add(multipartSeed([][2]string{{"file", "x"}, {"title", "T"}, {"created_by", "a@b.co"}, {"content_type", "text/plain; ="}}, ""))
	f.Add(multipartSeed([][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"content_type", "text/csv"}, {"file", "a,b"}}, ""))
	f.Add(multipartSeed([][2]string{{"title", "\xff"}, {"created_by", "a\x00@b.co"}, {"file", "x"}}, ""))
	f.Add(multipartSeed([][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "x"}, {"file", "y"}}, ""))
	f.Add(multipartSeed([][2]string{{"title", "T"}}, ""))
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nT"))
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := e.serve("POST", "/documents", bytes.NewReader(body), "Content-Type", "multipart/form-data; boundary="+fuzzBoundary)
		e.checkCreate(t, w, body)
	})
}

// FuzzUpdate sends arbitrary PATCH bodies and If-Match values to one
// document: a 2xx changed it, anything else left it as it was. The
// document is put back between runs so transitions stay reachable.
func FuzzUpdate(f *testing.F) {
	for _, seed := range [][2]string{
		{`{"title":"New"}`, ``}, {`{"status":"sent"}`, `"1"`}, {`{"status":"archived"}`, `*`},
		{`{"title":"x","status":"signed"}`, `W/"1"`}, {`{"status":"bogus"}`, `1`}, {`{}`, `"<script>"`},
		{`{"title":"\u0000"}`, ``}, {"{\"title\":\"\xfe\"}", ``}, {`{"title":null}`, ``}, {`{"status":5}`, ``},
		{`{"title":"` + strings.Repeat("x", 256) + `"}`, ``}, {`[`, ``}, {``, `"1", "2"`},
	} {
		f.Add(seed[0], seed[1])
	}
	e := newFuzzEnv(f)
	ctx := context.Background()
	created := e.serve("POST", "/documents", strings.NewReader(`{"title":"T","content":"c","created_by":"a@b.co"}`))
	var doc Document
	if err := json.Unmarshal(created.Body.Bytes(), &doc); err != nil || created.Code != http.StatusCreated {
		f.Fatalf("fixture: %d %s", created.Code, created.Body.String())
	}
	type row struct {
		title, status string
		version       int32
	}
	read := func(t *testing.T) row {
		var r row
		if err := e.pool.QueryRow(ctx, "SELECT title, status, version FROM documents.documents WHERE id = $1", doc.ID).Scan(&r.title, &r.status, &r.version); err != nil {
			t.Fatal(err)
		}
		return r
	}
	f.Fuzz(func(t *testing.T, body, ifMatch string) {
		before := read(t)
		w := e.serve("PATCH", "/documents/"+doc.ID, strings.NewReader(body), "Content-Type", "application/json", "If-Match", ifMatch)
		checkAnswer(t, w, [2]string{body, ifMatch})
		after := read(t)
		if w.Code >= 300 && after != before {
			t.Fatalf("input %q / If-Match %q: answered %d but changed %+v to %+v", body, ifMatch, w.Code, before, after)
		}
		if after.status != string(StatusCreated) || after.title != "T" {
			if _, err := e.pool.Exec(ctx, "UPDATE documents.documents SET status = 'created', title = 'T' WHERE id = $1", doc.ID); err != nil {
				t.Fatal(err)
			}
		}
		if rows, objects := e.counts(t); rows != 1 || objects != 1 {
			t.Fatalf("input %q: %d rows, %d objects, want the one document", body, rows, objects)
		}
	})
}

// FuzzShare sends arbitrary share bodies and grantees in the revoke path:
// a 2xx granted or revoked exactly one share with a valid level and a
// grantee in canonical form, anything else changed nothing, and the
// document's readers are always its owner and its grantees. Shares are
// cleared between runs.
func FuzzShare(f *testing.F) {
	for _, seed := range [][2]string{
		{`{"grantee":"user:bob","level":"view"}`, `user:bob`}, {`{"grantee":"email:A@B.co","level":"sign"}`, `email:a@b.co`},
		{`{"grantee":"group:legal","level":"own"}`, `group:legal`}, {`{"grantee":"service:x","level":"view"}`, `service:x`},
		{`{"grantee":"user:","level":"edit"}`, `user:`}, {`{"grantee":"user:b\u0000","level":"view"}`, "user:b\x00"},
		{`{"grantee":"user:b","level":"admin"}`, `nonsense`}, {`{"grantee":5}`, `%zz`}, {`[`, ``},
		{`{"grantee":"user:` + strings.Repeat("x", 400) + `","level":"view"}`, `user:` + strings.Repeat("x", 400)},
	} {
		f.Add(seed[0], seed[1])
	}
	e := newFuzzEnv(f)
	ctx := context.Background()
	created := e.serve("POST", "/documents", strings.NewReader(`{"title":"T","content":"c","created_by":"a@b.co"}`))
	var doc Document
	if err := json.Unmarshal(created.Body.Bytes(), &doc); err != nil || created.Code != http.StatusCreated {
		f.Fatalf("fixture: %d %s", created.Code, created.Body.String())
	}
	state := func(t *testing.T) (shares []string, readers []string) {
		rows, err := e.pool.Query(ctx, "SELECT grantee || '=' || level FROM documents.shares WHERE document_id = $1 ORDER BY grantee", doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			shares = append(shares, s)
		}
		rows.Close()
		if err := e.pool.QueryRow(ctx, "SELECT readers FROM documents.documents WHERE id = $1", doc.ID).Scan(&readers); err != nil {
			t.Fatal(err)
		}
		return shares, readers
	}
	f.Fuzz(func(t *testing.T, body, grantee string) {
		w := e.serve("POST", "/documents/"+doc.ID+"/shares", strings.NewReader(body), "Content-Type", "application/json")
		checkAnswer(t, w, body)
		shares, readers := state(t)
		switch {
		case w.Code == http.StatusOK && len(shares) != 1:
			t.Fatalf("input %q: 200 with shares %q", body, shares)
		case w.Code != http.StatusOK && len(shares) != 0:
			t.Fatalf("input %q: %d but shares %q", body, w.Code, shares)
		}
		for _, s := range shares {
			g, _, _ := strings.Cut(s, "=")
			if canon, problem := ParseGrantee(g); problem != "" || canon != g {
				t.Fatalf("input %q: stored grantee %q", body, g)
			}
			if len(readers) != 1 || readers[0] != g {
				t.Fatalf("input %q: readers %q for shares %q", body, readers, shares)
			}
		}
		if r := httptest.NewRequest("DELETE", "/documents/"+doc.ID+"/shares/x", nil); r != nil {
			r.URL.RawPath = ""
			r.URL.Path = "/documents/" + doc.ID + "/shares/" + grantee
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, r)
			checkAnswer(t, rec, grantee)
		}
		if _, err := e.pool.Exec(ctx, "DELETE FROM documents.shares WHERE document_id = $1", doc.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, "UPDATE documents.documents SET readers = '{}' WHERE id = $1", doc.ID); err != nil {
			t.Fatal(err)
		}
	})
}
