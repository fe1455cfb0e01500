package signature

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/testenv"
)

// FuzzCreate drives POST /signatures (middleware, decoder, validation,
// the document service over gRPC, PostgreSQL, object storage) with
// arbitrary bodies. "{{doc}}" in a body stands for an existing document,
// so mutations of a valid body reach the whole path. The oracle: a 2xx, or
// a 4xx in the JSON error shape, never a 5xx; a 201 stored one row and its
// object (removed again, so the store stays empty), anything else nothing.
// By hand:
//
//	go test -run '^$' -fuzz '^FuzzCreate$' -fuzztime 1000000x -parallel 1 ./internal/signature/
func FuzzCreate(f *testing.F) {
	for _, seed := range []string{
		`{"document_id":"{{doc}}","signer_email":"a@b.co","signer_name":"A"}`,
		`{"document_id":"{{doc}}","signer_email":"a@b.co","signer_name":"A","signature_data":"iVBORw0KGgo=","document_status":"pending"}`,
		`{"document_id":"{{doc}}","signer_email":"a@b.co","signer_name":"A","signature_data":"data:image/png;base64,iVBORw0KGgo=","ip_address":"<script>"}`,
		`{"document_id":"{{doc}}","signer_email":"a@b.co","signer_name":"A\u0000"}`,
		"{\"document_id\":\"{{doc}}\",\"signer_email\":\"a@b.co\",\"signer_name\":\"\xff\"}",
		`{"document_id":"0194c3a0-0000-7000-8000-00000000beef","signer_email":"a@b.co","signer_name":"A"}`,
		`{"document_id":"x","signer_email":1}`, `[]`, `null`, `{`, `{"role":"admin"}`, ``,
	} {
		f.Add(seed)
	}
	e := newEnv(f)
	doc := e.createDocument(f, "Fuzz", "fuzzed content")
	sig := e.startSignature(f, testOptions{noRecon: true})
	cfg := DefaultConfig()
	cfg.TrustedProxies = mustPrefixes(f, "127.0.0.1")
	h := NewServer(sig.svc, cfg, testLog())
	ctx := context.Background()
	counts := func(t *testing.T) (rows, objects int) {
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM signatures.signatures").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return rows, len(testenv.Keys(t, e.sigs))
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/signatures", strings.NewReader(strings.ReplaceAll(body, "{{doc}}", doc.ID)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusCreated:
			var s signatureJSON
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatalf("body %q: 201 with %q", body, w.Body.String())
			}
			if s.SignatureKey != nil {
				if ok, err := e.sigs.Exists(ctx, *s.SignatureKey); err != nil || !ok {
					t.Fatalf("body %q: signature %s without its object (%v)", body, s.ID, err)
				}
				if err := e.sigs.Delete(ctx, *s.SignatureKey); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.pool.Exec(ctx, "DELETE FROM signatures.signatures WHERE id = $1", s.ID); err != nil {
				t.Fatal(err)
			}
		case w.Code >= 400 && w.Code < 500:
			var er struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || er.Error == nil || er.Error.Code == "" || er.Error.Message == "" {
				t.Fatalf("body %q: %d without the JSON error shape: %q", body, w.Code, w.Body.String())
			}
		default:
			t.Fatalf("body %q: answered %d %s", body, w.Code, w.Body.String())
		}
		if rows, objects := counts(t); rows != 0 || objects != 0 {
			t.Fatalf("body %q: answered %d and left %d rows, %d objects", body, w.Code, rows, objects)
		}
	})
}
