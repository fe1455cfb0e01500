// Package postgres opens pgx pools that work both directly and through
// PgBouncer in transaction pooling mode, and applies the embedded schema
// migrations.
package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open returns a pool for url. Every query runs in QueryExecModeExec: the
// extended protocol with an unnamed statement, one round trip, no prepared
// statement left on the server connection and no session state. That is
// what lets the same pool run through PgBouncer 1.18 in transaction mode,
// which cannot track named prepared statements.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// ExistingIDs returns which of ids (canonical UUIDs) have a row in table,
// whose id column is a uuid: a blob sweeper's ownership check. table is a
// schema-qualified constant of the caller, never input.
func ExistingIDs(ctx context.Context, pool *pgxpool.Pool, table string, ids []string) (map[string]bool, error) {
	rows, err := pool.Query(ctx, `SELECT id::text FROM `+table+` WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, Error(err, "ownership lookup")
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, Error(err, "ownership lookup")
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// WALPositionSQL is the current WAL insert position as the change stream
// can reach it: pg_current_wal_insert_lsn(), except that a position just
// past a page header is given as the page boundary before it. When the
// last record ends exactly at a WAL page boundary, the insert position
// has already skipped the next page's header (24 bytes; 40 at the start of
// a segment), but that commit's end LSN, the one CDC carries and the
// indexer applies, is the boundary: an X-Commit-LSN 24 bytes above it
// would keep a read-your-writes wait stale until some later WAL arrived
// (about one commit in a thousand; found when a migration shifted a test's
// delete onto a boundary). No record can end at those offsets (a record
// continued onto a page ends past its header), so nothing later is
// skipped. The page size is the server's wal_block_size (8 KiB unless
// PostgreSQL was built otherwise); the header sizes are those of every
// 64-bit build.
const WALPositionSQL = `(SELECT CASE
	WHEN o.file_offset = 40 THEN p.l - 40
	WHEN o.file_offset % current_setting('wal_block_size')::int = 24 THEN p.l - 24
	ELSE p.l END
	FROM (SELECT pg_current_wal_insert_lsn() AS l) p, pg_walfile_name_offset(p.l) o)`

// WALPosition is the current WAL insert position (WALPositionSQL) as a
// number ("16/B374D848" → 0x16B374D848). Read after a commit returned, it
// is at or past that commit's end, so whatever has applied the change
// stream up to it has applied the commit: the X-Commit-LSN a write
// answers with, which search takes as min_lsn. 0 when it cannot be read
// (read-your-writes then does not wait).
func WALPosition(ctx context.Context, pool *pgxpool.Pool) uint64 {
	var lsn string
	if err := pool.QueryRow(ctx, "SELECT "+WALPositionSQL+"::text").Scan(&lsn); err != nil {
		return 0
	}
	return ParseLSN(lsn)
}

// WALFlushPosition is the server's WAL flush position: every commit
// acknowledged so far ends at or below it (synchronous_commit on, the
// default), as the replication keepalives that CDC turns into idle
// watermarks report it.
func WALFlushPosition(ctx context.Context, pool *pgxpool.Pool) (uint64, error) {
	var lsn string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err != nil {
		return 0, err
	}
	return ParseLSN(lsn), nil
}

// ParseLSN reads PostgreSQL's text form of an LSN ("16/B374D848" →
// 0x16B374D848); 0 when it is malformed.
func ParseLSN(lsn string) uint64 {
	hi, lo, ok := strings.Cut(lsn, "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}
