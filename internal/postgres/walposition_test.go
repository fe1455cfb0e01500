package postgres_test

import (
	"context"
	"testing"

	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// A record that ends exactly at a WAL page boundary leaves the insert
// position past the next page's header (24 bytes on), while the change
// stream carries the boundary as that commit's end. WALPosition gives the
// boundary, so a read-your-writes wait on it is met by that commit (with
// pg_current_wal_insert_lsn() it stayed stale until more WAL came).
// Logical messages sized to end on a boundary put the position there.
func TestWALPositionAtAPageBoundaryIsTheRecordsEnd(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Database(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	raw := func() uint64 {
		var lsn string
		if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		return postgres.ParseLSN(lsn)
	}
	emit := func(n int) {
		if _, err := pool.Exec(ctx, "SELECT pg_logical_emit_message(false, 'wal-position-test', repeat('x', $1))", n); err != nil {
			t.Fatal(err)
		}
	}
	var page uint64 // wal_block_size, as WALPositionSQL reads it
	if err := pool.QueryRow(ctx, "SELECT current_setting('wal_block_size')::bigint").Scan(&page); err != nil {
		t.Fatal(err)
	}
	// Another session's WAL (autovacuum, a checkpoint) may land between
	// the reads: try again until one message ends on the boundary.
	for try := 0; try < 50; try++ {
		before := raw()
		emit(0)
		empty := raw() - before // an empty message's record, aligned
		at := raw()
		left := page - at%page
		if at%page == 0 || left <= empty || empty == 0 || empty > 200 {
			emit(64) // too close to a boundary (or crossed one): move on
			continue
		}
		emit(int(left - empty))
		end := raw()
		if end%page != 24 || end-24 != at+left {
			continue
		}
		if got := postgres.WALPosition(ctx, pool); got != end-24 {
			t.Fatalf("WALPosition %X with the insert position at %X, past the header of the page at %X", got, end, end-24)
		}
		emit(8) // and anywhere else it is the insert position
		if got, want := postgres.WALPosition(ctx, pool), raw(); got != want {
			t.Fatalf("WALPosition %X, insert position %X", got, want)
		}
		return
	}
	t.Fatal("no message ended on a page boundary in 50 tries")
}
