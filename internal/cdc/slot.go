package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SlotInfo describes a replication slot and its publication, for
// `docstream cdc status` and the slot lag metric.
type SlotInfo struct {
	Slot         string `json:"slot"`
	Exists       bool   `json:"exists"`
	Active       bool   `json:"active"`
	ActivePID    *int32 `json:"active_pid"`
	ConfirmedLSN string `json:"confirmed_flush_lsn"`
	RestartLSN   string `json:"restart_lsn"`
	CurrentLSN   string `json:"current_wal_lsn"`
	LagBytes     int64  `json:"lag_bytes"` // pg_current_wal_lsn() - confirmed_flush_lsn: WAL kept for the slot
	// RetainedBytes is pg_current_wal_lsn() - restart_lsn: the WAL the slot
	// holds back from recycling. WALStatus is pg_replication_slots.wal_status:
	// reserved, extended, unreserved (removed at the next checkpoint) or
	// lost (the slot is invalidated and can never stream again).
	// SafeBytes is safe_wal_size, WAL that can still be written before the
	// slot is in danger; nil when max_slot_wal_keep_size is unlimited.
	RetainedBytes int64  `json:"retained_wal_bytes"`
	WALStatus     string `json:"wal_status"`
	SafeBytes     *int64 `json:"safe_wal_size"`
	// MaxKeepBytes is max_slot_wal_keep_size in bytes, -1 when unlimited.
	MaxKeepBytes int64    `json:"max_slot_wal_keep_bytes"`
	Publication  string   `json:"publication"`
	Tables       []string `json:"publication_tables"`
	SnapshotDone *bool    `json:"snapshot_done"` // from cdc.slots; nil when the slot was not created by the engine
	// ActiveEngine is the database session of the engine holding the
	// slot's lock (the active one; the others are standbys); nil when no
	// engine holds it.
	ActiveEngine *EngineSession `json:"active_engine"`
}

// EngineSession is an engine's lock session as PostgreSQL sees it.
type EngineSession struct {
	PID             int32     `json:"pid"`
	ClientAddr      string    `json:"client_addr"` // "local" over a Unix socket
	ApplicationName string    `json:"application_name"`
	Since           time.Time `json:"backend_start"`
}

// Querier is what Inspect needs (a pgx.Conn, pgxpool.Pool or Tx).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Inspect reads the state of slot and publication.
func Inspect(ctx context.Context, q Querier, slot, publication string) (SlotInfo, error) {
	info := SlotInfo{Slot: slot, Publication: publication}
	if err := q.QueryRow(ctx, `SELECT CASE WHEN setting::int8 < 0 THEN -1 ELSE setting::int8 * 1024 * 1024 END
		FROM pg_settings WHERE name = 'max_slot_wal_keep_size'`).Scan(&info.MaxKeepBytes); err != nil {
		return info, fmt.Errorf("cdc: max_slot_wal_keep_size: %w", err)
	}
	err := q.QueryRow(ctx, `SELECT active, active_pid, coalesce(confirmed_flush_lsn::text, ''), coalesce(restart_lsn::text, ''),
			pg_current_wal_lsn()::text, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::int8,
			coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::int8, coalesce(wal_status, ''), safe_wal_size
		FROM pg_replication_slots WHERE slot_name = $1`, slot).
		Scan(&info.Active, &info.ActivePID, &info.ConfirmedLSN, &info.RestartLSN, &info.CurrentLSN, &info.LagBytes,
			&info.RetainedBytes, &info.WALStatus, &info.SafeBytes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := q.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&info.CurrentLSN); err != nil {
			return info, fmt.Errorf("cdc: current wal lsn: %w", err)
		}
	case err != nil:
		return info, fmt.Errorf("cdc: slot %s: %w", slot, err)
	default:
		info.Exists = true
	}
	rows, err := q.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", publication)
	if err != nil {
		return info, fmt.Errorf("cdc: publication %s: %w", publication, err)
	}
	if info.Tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return info, fmt.Errorf("cdc: publication %s: %w", publication, err)
	}
	var done bool
	err = q.QueryRow(ctx, "SELECT snapshot_done_at IS NOT NULL FROM cdc.slots WHERE slot_name = $1", slot).Scan(&done)
	if err == nil {
		info.SnapshotDone = &done
	}
	// A bigint advisory lock shows in pg_locks as classid (high 32 bits)
	// and objid (low 32 bits) with objsubid 1.
	var es EngineSession
	err = q.QueryRow(ctx, `SELECT a.pid, coalesce(host(a.client_addr), 'local'), a.application_name, a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND ((l.classid::int8 << 32) | l.objid::int8) = hashtextextended($1, 0)`, lockKey(slot)).
		Scan(&es.PID, &es.ClientAddr, &es.ApplicationName, &es.Since)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return info, fmt.Errorf("cdc: engine lock: %w", err)
	default:
		info.ActiveEngine = &es
	}
	return info, nil
}

// ConnectForStatus opens a connection for Inspect (`docstream cdc status`).
// Its queries use no named prepared statement, so it works through
// PgBouncer in transaction mode as well as directly.
func ConnectForStatus(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}
