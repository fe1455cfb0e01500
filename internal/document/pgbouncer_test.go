package document

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// The document API through a real PgBouncer in transaction pooling mode
// with scram-sha-256, under concurrency: no prepared-statement or session
// errors, every write visible.
func TestDocumentAPIThroughPgBouncerTransactionPooling(t *testing.T) {
	ctx := context.Background()
	direct := testenv.Database(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	pg := testenv.Postgres()
	b, err := localstack.StartPgBouncerFor(ctx, testenv.TempDir(t), pg, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	e := newEnvWith(t, b.URL(), DefaultConfig())

	const workers, each = 40, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	ids := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d, code := e.tryCreate(fmt.Sprintf("pooled %d-%d", w, i))
				if code != 201 {
					errs <- fmt.Errorf("create: %d", code)
					continue
				}
				ids <- d.ID
				if code := e.tryStatus("PATCH", "/documents/"+d.ID, `{"status":"sent"}`); code != 200 {
					errs <- fmt.Errorf("patch: %d", code)
				}
				if code := e.tryStatus("GET", "/documents/"+d.ID, ""); code != 200 {
					errs <- fmt.Errorf("get: %d", code)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM documents.documents WHERE status = 'sent' AND version = 2").Scan(&n); err != nil || n != workers*each {
		t.Fatalf("%d documents sent at version 2, want %d (%v)", n, workers*each, err)
	}
	if len(ids) != workers*each {
		t.Fatalf("%d ids", len(ids))
	}
}
