package postgres_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// TestErrorMapsWhatPostgreSQLAnswersToOneCode runs real statements that
// fail and checks the code each failure becomes.
func TestErrorMapsWhatPostgreSQLAnswersToOneCode(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Database(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const id = "0194c3a0-0000-7000-8000-000000000001"
	if _, err := pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 't', 'a@b.co')`, id); err != nil {
		t.Fatal(err)
	}
	scalar := func(sql string, args ...any) error {
		var v any
		return pool.QueryRow(ctx, sql, args...).Scan(&v)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	cases := []struct {
		name string
		err  error
		code apperr.Code
	}{
		{"no row is not_found", scalar(`SELECT id FROM documents.documents WHERE id = $1`, "0194c3a0-0000-7000-8000-000000000002"), apperr.NotFound},
		{"a unique violation is conflict", scalar(`INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 't', 'a@b.co') RETURNING id`, id), apperr.Conflict},
		{"a value too long for its column is validation", scalar(`UPDATE documents.documents SET status = repeat('x', 51) WHERE id = $1 RETURNING id`, id), apperr.Validation},
		{"a not-null violation is validation", scalar(`UPDATE documents.documents SET title = NULL WHERE id = $1 RETURNING id`, id), apperr.Validation},
		{"text that is no uuid is invalid", scalar(`SELECT $1::text::uuid`, "not-a-uuid"), apperr.Invalid},
		{"a canceled caller is canceled", pool.QueryRow(canceled, `SELECT 1`).Scan(new(int)), apperr.Canceled},
		{"a syntax error is internal", scalar(`SELEKT 1`), apperr.Internal},
		{"an application error passes through", apperr.E(apperr.PreconditionFailed, "stale"), apperr.PreconditionFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the statement did not fail")
			}
			got := apperr.As(postgres.Error(c.err, "document "+id))
			if got.Code != c.code || got.Message == "" {
				t.Fatalf("%v became %s %q, want %s", c.err, got.Code, got.Message, c.code)
			}
			if got.Code == apperr.Internal && got.Message != "internal error" {
				t.Fatalf("an internal error shows its cause: %q", got.Message)
			}
		})
	}
	if postgres.Error(nil, "x") != nil {
		t.Fatal("nil became an error")
	}

	t.Run("a database out of reach is unavailable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		conn, err := pgx.Connect(ctx, "postgres://u@"+addr+"/db?connect_timeout=2")
		if err == nil {
			conn.Close(ctx)
			t.Fatal("connected to a closed port")
		}
		if got := apperr.CodeOf(postgres.Error(err, "x")); got != apperr.Unavailable {
			t.Fatalf("%v became %s", err, got)
		}
		var ae *apperr.Error
		if !errors.As(postgres.Error(err, "x"), &ae) || ae.Err == nil {
			t.Fatal("the cause was dropped")
		}
	})
}
