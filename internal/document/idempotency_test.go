package document

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/api"
)

// post sends a create with an Idempotency-Key (none when key is "").
func (e *env) post(t *testing.T, key, contentType string, body []byte) (*http.Response, Document, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/documents", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set(api.IdempotencyKeyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var d Document
	_ = json.Unmarshal(raw, &d)
	return resp, d, string(raw)
}

func (e *env) countTitled(t *testing.T, title string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM documents.documents WHERE title = $1`, title).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestARetriedCreateWithTheSameIdempotencyKeyCreatesOnce(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"title":"Lease once","content":"terms","created_by":"a@company.com"}`)
	first, d1, raw1 := e.post(t, "key-1", "application/json", body)
	if first.StatusCode != http.StatusCreated || first.Header.Get(api.IdempotentReplayedHeader) != "" {
		t.Fatalf("first create: %d %s (replayed %q)", first.StatusCode, raw1, first.Header.Get(api.IdempotentReplayedHeader))
	}
	// The draft's quoted form names the same key.
	for _, key := range []string{"key-1", `"key-1"`} {
		again, d2, raw2 := e.post(t, key, "application/json", body)
		if again.StatusCode != http.StatusCreated || again.Header.Get(api.IdempotentReplayedHeader) != "true" {
			t.Fatalf("retry with %s: %d %s, replayed %q; want 201 and replayed", key, again.StatusCode, raw2, again.Header.Get(api.IdempotentReplayedHeader))
		}
		if raw2 != raw1 || d2.ID != d1.ID || again.Header.Get("Location") != first.Header.Get("Location") || again.Header.Get("ETag") != first.Header.Get("ETag") {
			t.Fatalf("retry answered %s, want the first answer %s", raw2, raw1)
		}
	}
	if n := e.countTitled(t, "Lease once"); n != 1 {
		t.Fatalf("%d documents, want 1", n)
	}
	// Without a key, or with another key, the same body is a new document.
	if resp, _, _ := e.post(t, "", "application/json", body); resp.StatusCode != http.StatusCreated {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if resp, d3, _ := e.post(t, "key-2", "application/json", body); resp.StatusCode != http.StatusCreated || d3.ID == d1.ID {
		t.Fatalf("another key: %d, id %s", resp.StatusCode, d3.ID)
	}
	if n := e.countTitled(t, "Lease once"); n != 3 {
		t.Fatalf("%d documents, want 3", n)
	}
}

func TestAnIdempotencyKeyReusedForAnotherRequestIs422(t *testing.T) {
	e := newEnv(t)
	if resp, _, raw := e.post(t, "reused", "application/json", []byte(`{"title":"A","content":"x","created_by":"a@company.com"}`)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", resp.StatusCode, raw)
	}
	for name, body := range map[string]string{
		"another title":   `{"title":"B","content":"x","created_by":"a@company.com"}`,
		"another content": `{"title":"A","content":"y","created_by":"a@company.com"}`,
	} {
		resp, _, raw := e.post(t, "reused", "application/json", []byte(body))
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(raw, "Idempotency-Key") {
			t.Errorf("%s: %d %s; want 422 naming Idempotency-Key", name, resp.StatusCode, raw)
		}
	}
	if n := e.countTitled(t, "B"); n != 0 {
		t.Fatalf("a refused request created %d documents", n)
	}
}

func TestAMalformedIdempotencyKeyIs400(t *testing.T) {
	e := newEnv(t)
	for name, key := range map[string]string{
		"too long":       strings.Repeat("k", 256),
		"a space":        "two words",
		"non-ASCII":      "clé",
		"a quote":        `a"b`,
		"empty quoted":   `""`,
		"a control char": "a\x01b",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/documents", strings.NewReader(`{"title":"bad key","content":"x","created_by":"a@company.com"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header[api.IdempotencyKeyHeader] = []string{key}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Skipf("the transport refused the header itself: %v", err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if name == "empty quoted" {
				// "" is no key: an ordinary create.
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("%d %s", resp.StatusCode, raw)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "Idempotency-Key") {
				t.Fatalf("%d %s; want 400 naming Idempotency-Key", resp.StatusCode, raw)
			}
		})
	}
	if n := e.countTitled(t, "bad key"); n != 1 {
		t.Fatalf("%d documents created, want only the empty key's", n)
	}
}

// TestConcurrentCreatesWithOneIdempotencyKeyCreateOnce: many copies of one
// keyed create at once make one document; each answer is that document or
// 409 (still in progress), never a second document.
func TestConcurrentCreatesWithOneIdempotencyKeyCreateOnce(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"title":"Raced","content":"x","created_by":"a@company.com"}`)
	const n = 16
	var wg sync.WaitGroup
	codes := make([]int, n)
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/documents", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(api.IdempotencyKeyHeader, "raced")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			var d Document
			_ = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			codes[i], ids[i] = resp.StatusCode, d.ID
		})
	}
	wg.Wait()
	var created string
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			if created != "" && ids[i] != created {
				t.Fatalf("two documents answered: %s and %s", created, ids[i])
			}
			created = ids[i]
		case http.StatusConflict:
		default:
			t.Fatalf("answer %d: %d; want 201 or 409", i, c)
		}
	}
	if created == "" {
		t.Fatalf("no create succeeded: %v", codes)
	}
	if got := e.countTitled(t, "Raced"); got != 1 {
		t.Fatalf("%d documents, want 1 (answers %v)", got, codes)
	}
}

func TestAnUploadWithAnIdempotencyKeyIsReplayedAndItsSecondCopyRemoved(t *testing.T) {
	e := newEnv(t)
	form := func() ([]byte, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("title", "Uploaded once")
		_ = mw.WriteField("created_by", "a@company.com")
		fw, _ := mw.CreateFormFile("file", "c.pdf")
		_, _ = fw.Write([]byte("%PDF-1.4 the same bytes"))
		_ = mw.Close()
		return b.Bytes(), mw.FormDataContentType()
	}
	body, ct := form()
	first, d1, raw := e.post(t, "upload-1", ct, body)
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", first.StatusCode, raw)
	}
	body, ct = form()
	again, d2, _ := e.post(t, "upload-1", ct, body)
	if again.StatusCode != http.StatusCreated || d2.ID != d1.ID || again.Header.Get(api.IdempotentReplayedHeader) != "true" {
		t.Fatalf("retry: %d id %s (first %s)", again.StatusCode, d2.ID, d1.ID)
	}
	if n := e.countTitled(t, "Uploaded once"); n != 1 {
		t.Fatalf("%d documents, want 1", n)
	}
	// Only the first upload's content is kept: the retry's copy is removed.
	var keys []string
	iter := e.bucket.List(nil)
	for {
		obj, err := iter.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Key)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], d1.ID) {
		t.Fatalf("bucket holds %v; want only %s's content", keys, d1.ID)
	}
}
