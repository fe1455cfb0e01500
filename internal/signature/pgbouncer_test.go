package signature

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// The signature API and its reconciler through PgBouncer 1.18 in
// transaction mode (no server-side prepared statements, no session state),
// under concurrency, including updates left pending and reconciled.
func TestSignaturesThroughPgBouncer(t *testing.T) {
	direct := testenv.Database(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	// PgBouncer serves one database: this test's.
	pg := *testenv.Postgres()
	pg.Database = strings.TrimPrefix(u.Path, "/")
	bouncer, err := localstack.StartPgBouncer(context.Background(), testenv.TempDir(t), &pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bouncer.Stop)

	e := newEnvWith(t, bouncer.URL())
	sig := e.startSignature(t, testOptions{})
	const workers, each = 8, 10
	docs := make([]documentJSON, workers*each)
	for i := range docs {
		docs[i] = e.createDocument(t, fmt.Sprint("Pooled ", i), "x")
	}
	signAll := func(part []documentJSON, want UpdateState) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(part); i += workers {
					resp, got := sig.sign(t, map[string]any{"document_id": part[i].ID, "signer_email": "a@b.co", "signer_name": "A", "signature_data": "sig"})
					if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != want {
						t.Errorf("sign: status %d, update %q, want 201 %s: %s", resp.StatusCode, got.DocumentStatusUpdate, want, readBody(resp))
					}
				}
			})
		}
		wg.Wait()
	}
	half := len(docs) / 2
	signAll(docs[:half], "applied")
	e.doc.stopGRPC()
	signAll(docs[half:], "pending")
	e.doc.startGRPC(t)
	for _, d := range docs {
		e.waitStatus(t, d.ID, "signed", recovery)
	}
	var all []signatureJSON
	if resp := testenv.Do(t, "GET", sig.url+"/signatures?limit=1000", nil, &all); resp.StatusCode != 200 || len(all) != len(docs) {
		t.Fatalf("GET /signatures: %d, %d signatures, want %d", resp.StatusCode, len(all), len(docs))
	}
}
