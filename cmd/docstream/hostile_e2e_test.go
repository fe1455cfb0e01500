package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/apperr"
)

// hostile is one request a hostile or broken client sends.
type hostile struct {
	name    string
	service string // the flag of the service's own listener: document-addr, …
	method  string
	path    string
	body    io.Reader
	size    int64 // Content-Length when body is a generated stream
	header  []string
}

// zeros is an endless body of a given length that costs no memory.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	for i := range p[:n] {
		p[i] = 'a'
	}
	z.left -= int64(n)
	return n, nil
}

func multipartBody(fields [][2]string, fileCT string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if f[0] == "file" {
			h := map[string][]string{"Content-Disposition": {`form-data; name="file"; filename="f.bin"`}}
			if fileCT != "" {
				h["Content-Type"] = []string{fileCT}
			}
			w, _ := mw.CreatePart(h)
			_, _ = w.Write([]byte(f[1]))
			continue
		}
		_ = mw.WriteField(f[0], f[1])
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// hostileRequests is the issue 11 table: malformed JSON, wrong types, huge
// fields, NUL and invalid UTF-8, bad UUIDs, bad content types and oversized
// bodies, on every endpoint. docID names an existing document.
func hostileRequests(docID string) []hostile {
	const good = `"title":"T","content":"c","created_by":"a@b.co"`
	jsonReq := func(name, service, method, path, body string) hostile {
		return hostile{name: name, service: service, method: method, path: path, body: strings.NewReader(body),
			header: []string{"Content-Type", "application/json"}}
	}
	form := func(name string, fields [][2]string, fileCT string) hostile {
		body, ct := multipartBody(fields, fileCT)
		return hostile{name: name, service: "document-addr", method: "POST", path: "/documents", body: body, header: []string{"Content-Type", ct}}
	}
	get := func(name, service, path string) hostile {
		return hostile{name: name, service: service, method: "GET", path: path}
	}
	big := strings.Repeat("x", 300)
	rows := []hostile{
		// POST /documents, JSON
		jsonReq("create: malformed JSON", "document-addr", "POST", "/documents", `{"title":`),
		jsonReq("create: not an object", "document-addr", "POST", "/documents", `[1,2]`),
		jsonReq("create: null", "document-addr", "POST", "/documents", `null`),
		jsonReq("create: empty body", "document-addr", "POST", "/documents", ``),
		jsonReq("create: two values", "document-addr", "POST", "/documents", `{`+good+`} {}`),
		jsonReq("create: a number for the title", "document-addr", "POST", "/documents", `{"title":5,"content":"c","created_by":"a@b.co"}`),
		jsonReq("create: an object for the content", "document-addr", "POST", "/documents", `{"title":"T","content":{},"created_by":"a@b.co"}`),
		jsonReq("create: an unknown field", "document-addr", "POST", "/documents", `{`+good+`,"owner":"x"}`),
		jsonReq("create: a 300-character title", "document-addr", "POST", "/documents", `{"title":"`+big+`","content":"c","created_by":"a@b.co"}`),
		jsonReq("create: a 300-character author", "document-addr", "POST", "/documents", `{"title":"T","content":"c","created_by":"`+big+`@b.co"}`),
		jsonReq("create: a NUL in the title", "document-addr", "POST", "/documents", `{"title":"a\u0000b","content":"c","created_by":"a@b.co"}`),
		jsonReq("create: invalid UTF-8 in the content", "document-addr", "POST", "/documents", `{"title":"T","content":"`+"\xff\xfe"+`","created_by":"a@b.co"}`),
		jsonReq("create: invalid UTF-8 in the title", "document-addr", "POST", "/documents", `{"title":"`+"\xc3\x28"+`","content":"c","created_by":"a@b.co"}`),
		jsonReq("create: a content type with a space", "document-addr", "POST", "/documents", `{`+good+`,"content_type":"a/b c"}`),
		jsonReq("create: a content type with an empty parameter", "document-addr", "POST", "/documents", `{`+good+`,"content_type":"text/plain; ="}`),
		jsonReq("create: a content type with a NUL", "document-addr", "POST", "/documents", `{`+good+`,"content_type":"text/\u0000plain"}`),
		jsonReq("create: a 200-character content type", "document-addr", "POST", "/documents", `{`+good+`,"content_type":"text/`+strings.Repeat("p", 200)+`"}`),
		jsonReq("create: inline content over 10 MiB", "document-addr", "POST", "/documents", `{"title":"T","created_by":"a@b.co","content":"`+strings.Repeat("c", 10<<20+1)+`"}`),
		{name: "create: a body over every limit", service: "document-addr", method: "POST", path: "/documents",
			body: &zeros{left: 101 << 20}, size: 101 << 20, header: []string{"Content-Type", "application/json"}},
		// POST /documents, multipart
		{name: "create: multipart without a boundary", service: "document-addr", method: "POST", path: "/documents",
			body: strings.NewReader("--x\r\n"), header: []string{"Content-Type", "multipart/form-data"}},
		{name: "create: a truncated multipart body", service: "document-addr", method: "POST", path: "/documents",
			body: strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nT"), header: []string{"Content-Type", "multipart/form-data; boundary=b"}},
		form("create: multipart content_type that is no media type", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"content_type", "a/b c"}, {"file", "x"}}, ""),
		form("create: multipart file part typed `text/plain; =`", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "x"}}, "text/plain; ="),
		form("create: multipart title with invalid UTF-8 after the file", [][2]string{{"created_by", "a@b.co"}, {"file", "x"}, {"title", "\xff"}}, ""),
		form("create: multipart author with a NUL", [][2]string{{"title", "T"}, {"created_by", "a\x00@b.co"}, {"file", "x"}}, ""),
		form("create: multipart without a file", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}}, ""),
		form("create: multipart with two files", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "x"}, {"file", "y"}}, ""),
		// GET/PATCH/DELETE /documents/{id}
		get("get: a bad UUID", "document-addr", "/documents/not-a-uuid"),
		get("get: a NUL as the id", "document-addr", "/documents/%00"),
		get("get: invalid UTF-8 as the id", "document-addr", "/documents/%ff%fe"),
		get("get: a 10 kB id", "document-addr", "/documents/"+strings.Repeat("a", 10000)),
		get("get: dot segments", "document-addr", "/documents/../../etc/passwd"),
		get("list: a negative skip", "document-addr", "/documents?skip=-1"),
		get("list: a word for the limit", "document-addr", "/documents?limit=many"),
		get("list: a huge limit", "document-addr", "/documents?limit=99999999999999999999"),
		get("content: a bad UUID", "document-addr", "/documents/x/content"),
		get("stats: a bad UUID", "document-addr", "/documents/x/stats"),
		{name: "content: a Range outside the content", service: "document-addr", method: "GET", path: "/documents/" + docID + "/content", header: []string{"Range", "bytes=999999-"}},
		jsonReq("update: a bad UUID", "document-addr", "PATCH", "/documents/not-a-uuid", `{"title":"x"}`),
		jsonReq("update: malformed JSON", "document-addr", "PATCH", "/documents/"+docID, `{"title"`),
		jsonReq("update: a number for the title", "document-addr", "PATCH", "/documents/"+docID, `{"title":1}`),
		jsonReq("update: a NUL in the title", "document-addr", "PATCH", "/documents/"+docID, `{"title":"\u0000"}`),
		jsonReq("update: invalid UTF-8 in the title", "document-addr", "PATCH", "/documents/"+docID, `{"title":"`+"\xff"+`"}`),
		jsonReq("update: a status that does not exist", "document-addr", "PATCH", "/documents/"+docID, `{"status":"bogus"}`),
		jsonReq("update: an illegal transition", "document-addr", "PATCH", "/documents/"+docID, `{"status":"created"}`),
		jsonReq("update: a 300-character title", "document-addr", "PATCH", "/documents/"+docID, `{"title":"`+big+`"}`),
		jsonReq("update: nothing to update", "document-addr", "PATCH", "/documents/"+docID, `{}`),
		{name: "update: a weak If-Match", service: "document-addr", method: "PATCH", path: "/documents/" + docID,
			body: strings.NewReader(`{"title":"weak"}`), header: []string{"Content-Type", "application/json", "If-Match", `W/"1"`}},
		{name: "update: a garbage If-Match", service: "document-addr", method: "PATCH", path: "/documents/" + docID,
			body: strings.NewReader(`{"title":"garbage"}`), header: []string{"Content-Type", "application/json", "If-Match", `"<script>"`}},
		{name: "update: a body over the limit", service: "document-addr", method: "PATCH", path: "/documents/" + docID,
			body: strings.NewReader(`{"title":"` + strings.Repeat("x", 70<<10) + `"}`), header: []string{"Content-Type", "application/json"}},
		{name: "delete: a bad UUID", service: "document-addr", method: "DELETE", path: "/documents/not-a-uuid"},
		// POST /signatures and reads
		jsonReq("sign: malformed JSON", "signature-addr", "POST", "/signatures", `{"document_id":`),
		jsonReq("sign: not an object", "signature-addr", "POST", "/signatures", `"x"`),
		jsonReq("sign: a number for the email", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":1,"signer_name":"A"}`),
		jsonReq("sign: a bad document UUID", "signature-addr", "POST", "/signatures", `{"document_id":"not-a-uuid","signer_email":"a@b.co","signer_name":"A"}`),
		jsonReq("sign: a NUL in the name", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"A\u0000"}`),
		jsonReq("sign: invalid UTF-8 in the name", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"`+"\xff"+`"}`),
		jsonReq("sign: invalid UTF-8 in the data", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"A","signature_data":"`+"\xfe"+`"}`),
		jsonReq("sign: a NUL in the email", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a\u0000@b.co","signer_name":"A"}`),
		jsonReq("sign: a 300-character name", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"`+big+`"}`),
		jsonReq("sign: signature data over 1 MiB", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"A","signature_data":"`+strings.Repeat("d", 1<<20+1)+`"}`),
		jsonReq("sign: a status that does not exist", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"A","document_status":"bogus"}`),
		jsonReq("sign: an unknown field", "signature-addr", "POST", "/signatures", `{"document_id":"`+docID+`","signer_email":"a@b.co","signer_name":"A","role":"admin"}`),
		{name: "sign: a body over the limit", service: "signature-addr", method: "POST", path: "/signatures",
			body: &zeros{left: 3 << 20}, size: 3 << 20, header: []string{"Content-Type", "application/json"}},
		get("signature: a bad UUID", "signature-addr", "/signatures/not-a-uuid"),
		get("signatures of a document: a bad UUID", "signature-addr", "/documents/not-a-uuid/signatures"),
		get("signatures: a word for the limit", "signature-addr", "/signatures?limit=x"),
		// search
		get("search: no query", "search-addr", "/search"),
		get("search: a NUL query", "search-addr", "/search?q=%00"),
		get("search: an invalid UTF-8 query", "search-addr", "/search?q=%ff%fe"),
		get("search: an invalid UTF-8 status filter", "search-addr", "/search?q=x&status=%ff"),
		get("search: a NUL author filter", "search-addr", "/search?q=x&created_by=a%00b"),
		get("search: a 2000-character query", "search-addr", "/search?q="+strings.Repeat("q", 2000)),
		get("search: a negative size", "search-addr", "/search?q=x&size=-1"),
		get("search: a page past the window", "search-addr", "/search?q=x&from=9999&size=100"),
		get("search: a bad min_lsn", "search-addr", "/search?q=x&min_lsn=-1"),
		get("suggest: an invalid UTF-8 prefix", "search-addr", "/suggest?q=%ff%ff"),
		get("suggest: a one-character prefix", "search-addr", "/suggest?q=a"),
		get("aggregations: an unknown field", "search-addr", "/aggregations/password"),
		get("aggregations: a NUL query", "search-addr", "/aggregations/status?q=%00"),
		// realtime
		get("watch: a bad UUID", "realtime-addr", "/ws/not-a-uuid"),
		get("watch: no token", "realtime-addr", "/ws/"+docID),
		{name: "watch: a forged token", service: "realtime-addr", method: "GET", path: "/ws/" + docID + "?token=eyJhbGciOiJub25lIn0.eyJleHAiOiI5OTk5OTk5OTk5In0.",
			header: []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}},
	}
	return rows
}

// checkHostileRequests sends the hostile table to every endpoint, directly
// and through the gateway: every answer is a 4xx in the JSON error shape,
// never a 5xx, and nothing is half-written (no new row, no new object, the
// existing document unchanged).
func checkHostileRequests(t *testing.T, addr map[string]string, dbURL, blobDir string) {
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var docID string
	if err := db.QueryRow(ctx, "SELECT id::text FROM documents.documents ORDER BY created_at LIMIT 1").Scan(&docID); err != nil {
		t.Fatalf("the hostile table needs one document: %v", err)
	}
	type state struct {
		docs, sigs, objects int
		version             int
		title               string
	}
	snapshot := func() state {
		var s state
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM documents.documents), (SELECT count(*) FROM signatures.signatures),
			version, title FROM documents.documents WHERE id = $1`, docID).Scan(&s.docs, &s.sigs, &s.version, &s.title); err != nil {
			t.Fatal(err)
		}
		_ = filepath.WalkDir(blobDir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				s.objects++
			}
			return nil
		})
		return s
	}
	before := snapshot()
	for _, via := range []string{"direct", "gateway"} {
		for _, h := range hostileRequests(docID) {
			base := addr[h.service]
			if via == "gateway" {
				base = addr["gateway-addr"]
			}
			// Bodies are read once: build the table again for each pass.
			t.Run(via+": "+h.name, func(t *testing.T) {
				req, err := http.NewRequest(h.method, "http://"+base, h.body)
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = h.path // sent as written: no client-side cleaning or escaping
				if h.size > 0 {
					req.ContentLength = h.size
				}
				for i := 0; i+1 < len(h.header); i += 2 {
					req.Header.Set(h.header[i], h.header[i+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				var e apperr.Body
				if resp.StatusCode < 400 || resp.StatusCode > 499 {
					t.Fatalf("%d %s, want a 4xx", resp.StatusCode, raw)
				}
				if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("%d %q (%s): not the JSON error shape", resp.StatusCode, raw, resp.Header.Get("Content-Type"))
				}
				t.Logf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
			})
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("half-written by refused requests: before %+v, after %+v", before, after)
	}
}
