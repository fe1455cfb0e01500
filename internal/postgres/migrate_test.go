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

// A change of a document's readers is a change of access, not an edit: it
// leaves updated_at alone, while any other change still sets it.
func TestReadersAloneDoNotTouchUpdatedAt(t *testing.T) {
	ctx := context.Background()
	url, err := testenv.Postgres().CreateDatabase(ctx, fmt.Sprintf("readers_%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, url, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const id = "6f0c3f4e-8a0b-4c1d-9e2f-0a1b2c3d4e5f"
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by, updated_at, owner, readers)
		VALUES ($1, 't', 'a@example.com', $2, 'user:a', '{user:a}')`, id, past); err != nil {
		t.Fatal(err)
	}
	updatedAt := func() time.Time {
		var at time.Time
		if err := pool.QueryRow(ctx, `SELECT updated_at FROM documents.documents WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	if _, err := pool.Exec(ctx, `UPDATE documents.documents SET readers = '{user:a,user:b}' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if at := updatedAt(); !at.Equal(past) {
		t.Fatalf("a readers-only change moved updated_at to %v", at)
	}
	// As the document service writes it: readers with access_version
	// (00006), which orders the cache's entries.
	if _, err := pool.Exec(ctx, `UPDATE documents.documents SET readers = '{user:a,user:c}', access_version = access_version + 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if at := updatedAt(); !at.Equal(past) {
		t.Fatalf("a readers and access_version change moved updated_at to %v", at)
	}
	if _, err := pool.Exec(ctx, `UPDATE documents.documents SET title = 'u', readers = '{user:a}' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if at := updatedAt(); at.Equal(past) {
		t.Fatal("a title change left updated_at alone")
	}
}
