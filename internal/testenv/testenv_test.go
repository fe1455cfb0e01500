package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestDatabaseHasSchemaAndLogicalWAL(t *testing.T) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var wal string
	if err := c.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil || wal != "logical" {
		t.Fatalf("wal_level = %q, %v; want logical", wal, err)
	}
	var ident string
	err = c.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE oid = 'documents.documents'::regclass").Scan(&ident)
	if err != nil || ident != "f" {
		t.Fatalf("documents replica identity = %q, %v; want f (FULL)", ident, err)
	}
	var v1 int
	err = c.QueryRow(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES (gen_random_uuid(), 't', 'a@b.c') RETURNING version`).Scan(&v1)
	if err != nil || v1 != 1 {
		t.Fatalf("insert: version %d, %v", v1, err)
	}
}
