package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Instances starting at once must not race: the advisory lock serialises
// them, each migration is applied once, and every caller succeeds.
func TestConcurrentMigrateAppliesEachMigrationOnce(t *testing.T) {
	ctx := context.Background()
	url, err := testenv.Postgres().CreateDatabase(ctx, fmt.Sprintf("migrate_race_%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = postgres.Migrate(ctx, url, logging.Discard())
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	pool, err := postgres.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var applied, distinct int
	err = pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&applied, &distinct)
	if err != nil || applied != distinct || applied == 0 {
		t.Fatalf("applied %d rows for %d versions (%v)", applied, distinct, err)
	}
	var trigger bool
	_ = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'documents_updated_at')`).Scan(&trigger)
	if !trigger {
		t.Fatal("updated_at trigger missing")
	}
}
