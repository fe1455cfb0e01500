package signature

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
)

// postKeyed posts body to /signatures with an Idempotency-Key (none when
// key is "").
func postKeyed(t *testing.T, url, key, body string) (*http.Response, signatureJSON, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/signatures", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(api.IdempotencyKeyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sig signatureJSON
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &sig); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp, sig, string(raw)
}

func (e *env) countSignatures(t *testing.T, docID string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM signatures.signatures WHERE document_id = $1`, docID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestARetriedSignatureWithTheSameIdempotencyKeyCreatesOnce: a client that
// got no answer retries its POST /signatures with the same key and gets the
// first answer; one signature exists, and the retry's second copy of
// signature_data is removed from object storage. Another key, or none, is
// a new signature; the same key with another request is 422.
func TestARetriedSignatureWithTheSameIdempotencyKeyCreatesOnce(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Sign once", "terms")
	body := `{"document_id":"` + doc.ID + `","signer_email":"a@company.com","signer_name":"A","signature_data":"data:image/png;base64,iVBORw0KGgo="}`

	first, s1, raw1 := postKeyed(t, sig.url, "sig-1", body)
	if first.StatusCode != http.StatusCreated || first.Header.Get(api.IdempotentReplayedHeader) != "" {
		t.Fatalf("first: %d %s (replayed %q)", first.StatusCode, raw1, first.Header.Get(api.IdempotentReplayedHeader))
	}
	for _, key := range []string{"sig-1", `"sig-1"`} {
		again, s2, raw2 := postKeyed(t, sig.url, key, body)
		if again.StatusCode != http.StatusCreated || again.Header.Get(api.IdempotentReplayedHeader) != "true" {
			t.Fatalf("retry with %s: %d %s, replayed %q; want 201 and replayed", key, again.StatusCode, raw2, again.Header.Get(api.IdempotentReplayedHeader))
		}
		if s2.ID != s1.ID || s2.SignedAt != s1.SignedAt || s2.SignatureKey == nil || *s2.SignatureKey != *s1.SignatureKey {
			t.Fatalf("retry answered %s, want the first answer %s", raw2, raw1)
		}
	}
	if n := e.countSignatures(t, doc.ID); n != 1 {
		t.Fatalf("%d signatures, want 1", n)
	}
	// Only the first request's object is left in the bucket: each retry
	// wrote its own copy before it was known to be a retry, and removed it.
	var keys []string
	it := e.sigs.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	if len(keys) != 1 || keys[0] != *s1.SignatureKey {
		t.Fatalf("objects %v, want only the first signature's %s", keys, *s1.SignatureKey)
	}

	// The same key with another request is refused, naming the header.
	other := strings.Replace(body, `"signer_name":"A"`, `"signer_name":"B"`, 1)
	if resp, _, raw := postKeyed(t, sig.url, "sig-1", other); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(raw, "Idempotency-Key") {
		t.Fatalf("key reused for another request: %d %s; want 422 naming Idempotency-Key", resp.StatusCode, raw)
	}
	// A malformed key is 400 before the body is read.
	if resp, _, raw := postKeyed(t, sig.url, "two words", body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(raw, "Idempotency-Key") {
		t.Fatalf("malformed key: %d %s; want 400 naming Idempotency-Key", resp.StatusCode, raw)
	}
	// No key, or another key: a new signature each.
	if resp, _, raw := postKeyed(t, sig.url, "", body); resp.StatusCode != http.StatusCreated {
		t.Fatalf("no key: %d %s", resp.StatusCode, raw)
	}
	if resp, s3, raw := postKeyed(t, sig.url, "sig-2", body); resp.StatusCode != http.StatusCreated || s3.ID == s1.ID {
		t.Fatalf("another key: %d %s", resp.StatusCode, raw)
	}
	if n := e.countSignatures(t, doc.ID); n != 3 {
		t.Fatalf("%d signatures, want 3", n)
	}
}
