package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// listQuery has the shape of a required-mode list page: its best plan
// depends on the caller's keys (few documents: the readers GIN index; many:
// a walk of created_at).
const listQuery = `SELECT id FROM documents.documents WHERE readers && $1::text[]
	ORDER BY created_at DESC, id DESC LIMIT 100`

// TestOpenLeavesNoStatementToPlanGenerically: PostgreSQL may switch a
// named prepared statement to a generic plan (made without the parameter
// values) from its sixth execution, which for the list above is a walk of
// the whole created_at index filtering readers. The pool from Open sends
// every query as an unnamed statement, parsed and planned with its values
// on each call, so no statement stays on the connection to go generic.
// The control shows the check sees one when a statement is cached.
func TestOpenLeavesNoStatementToPlanGenerically(t *testing.T) {
	ctx := context.Background()
	url := testenv.Database(t)
	prepared := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) int {
		t.Helper()
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}) {
		t.Helper()
		for range 8 {
			if _, err := q.Exec(ctx, listQuery, []string{"user7@bench.example"}); err != nil {
				t.Fatal(err)
			}
		}
	}

	pool, err := postgres.Open(ctx, url, 1) // one connection: the checks see the list's session
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	run(pool)
	if n := prepared(pool); n != 0 {
		t.Fatalf("the pool left %d prepared statements on its connection; want none", n)
	}

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	run(conn)
	if n := prepared(conn); n == 0 {
		t.Fatal("control: a statement-caching connection shows no prepared statement, so the check above proves nothing")
	}
}
