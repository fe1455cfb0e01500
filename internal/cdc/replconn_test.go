package cdc

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// TestTheReplicationErrorNamesTheDirectURLFlag: a replication connection
// through PgBouncer (which refuses the replication parameter) fails with
// an error that says which flag to set.
func TestTheReplicationErrorNamesTheDirectURLFlag(t *testing.T) {
	u, err := url.Parse(testenv.Database(t))
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
	cfg, err := pgconn.ParseConfig(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("PgBouncer accepted a replication connection (1.23+?): the engine's lock check is then what refuses a pooled URL")
	}
	got := replicationConnectError(err).Error()
	for _, want := range []string{"replication connection refused", "--direct-database-url", err.Error()} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q does not say %q", got, want)
		}
	}
}
