package apikey

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// API keys through a real PgBouncer in transaction pooling mode, as
// required mode runs them: two instances' verifiers, no cache, a last-used
// write allowed on almost every verification, under concurrency. Every
// verification succeeds (no prepared-statement or session error), every
// key's last_used_at is written, no write failed, and a key revoked on one
// instance is refused by the other.
func TestKeysThroughPgBouncerTransactionPooling(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := localstack.StartPgBouncerFor(ctx, testenv.TempDir(t), testenv.Postgres(), strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	pool := open(t, b.URL())
	var logs testenv.SyncBuffer
	log := logging.New(&logs, "debug")
	cfg := DefaultConfig()
	cfg.CacheTTL, cfg.TouchEvery, cfg.AdminOpen = 0, time.Millisecond, true
	store := NewStore(pool)
	verifiers := []*Verifier{NewVerifier(store, cfg, log), NewVerifier(store, cfg, log)}
	svc := NewService(store, verifiers[1], cfg, log)
	var raws, ids []string
	for i := range 4 {
		k, raw, err := svc.Create(ctx, CreateInput{Name: fmt.Sprint("pooled ", i), Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		raws, ids = append(raws, raw), append(ids, k.ID)
	}

	const workers, each = 24, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := verifiers[(w+i)%2].VerifyKey(ctx, raws[(w+i)%len(raws)]); err != nil {
					errs <- fmt.Errorf("worker %d: %v", w, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		var used bool
		if err := pool.QueryRow(ctx, `SELECT last_used_at IS NOT NULL FROM auth.api_keys WHERE id = $1`, id).Scan(&used); err != nil || !used {
			t.Fatalf("key %s: last_used_at written %v (%v)", id, used, err)
		}
	}
	if strings.Contains(logs.String(), "last-used time not recorded") {
		t.Fatalf("a last-used write failed through PgBouncer:\n%s", logs.String())
	}
	if _, err := svc.Revoke(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := verifiers[0].VerifyKey(ctx, raws[0]); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("the key revoked on the other instance: %v, want 401", err)
	}
}
