package cdc_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// bouncer starts PgBouncer (transaction mode) in front of the pipeline's
// database and returns its URL.
func bouncer(t *testing.T, f *fixture) string {
	t.Helper()
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	pg := *testenv.Postgres()
	pg.Database = strings.TrimPrefix(u.Path, "/")
	b, err := localstack.StartPgBouncer(context.Background(), testenv.TempDir(t), &pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b.URL()
}

// TestAnEngineThroughPgBouncerRefusesToTakeItsLock: given a PgBouncer URL
// (the mistake of leaving out --direct-database-url), the engine takes no
// advisory lock through it (it would stay on a pooled server connection
// and the next engine would wait forever) and stops with an error naming
// the flag; nothing is left holding the lock or the slot.
func TestAnEngineThroughPgBouncerRefusesToTakeItsLock(t *testing.T) {
	f := newFixture(t)
	cfg := f.Config()
	cfg.DatabaseURL = bouncer(t, f)
	e, err := cdc.New(cfg, f.Bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = e.Run(ctx) // returns: a pooled URL is a configuration error, not retried
	if !errors.Is(err, cdc.ErrPooledConnection) || !strings.Contains(err.Error(), "--direct-database-url") {
		t.Fatalf("Run = %v, want the pooled-connection error naming --direct-database-url", err)
	}
	if st := e.Status(); st.Active || !strings.Contains(st.LastError, "--direct-database-url") {
		t.Errorf("status %+v: want inactive with the error", st)
	}
	var locks int
	if err := f.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database =
		(SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Errorf("%d advisory locks held after the engine refused", locks)
	}
	// The same engine on the direct URL streams.
	f.StartEngine(t, f.Config(), f.Bus)
}

// TestSlotInspectionWorksThroughPgBouncer: `docstream cdc status` reads the
// slot with cdc.Inspect; through PgBouncer in transaction mode (no
// prepared statements) it must work as directly.
func TestSlotInspectionWorksThroughPgBouncer(t *testing.T) {
	f := newFixture(t)
	f.StartEngine(t, f.Config(), f.Bus)
	conn, err := cdc.ConnectForStatus(context.Background(), bouncer(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for range 3 { // the same statements again: no prepared statement may be left behind
		info, err := cdc.Inspect(context.Background(), conn, f.Slot, cdc.DefaultConfig().Publication)
		if err != nil {
			t.Fatalf("inspect through PgBouncer: %v", err)
		}
		if !info.Exists || info.ConfirmedLSN == "" || info.ActiveEngine == nil {
			t.Fatalf("inspect through PgBouncer: %+v", info)
		}
	}
}
