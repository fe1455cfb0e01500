package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// replicationConnectError is the error of a failed replication connection.
// One the server (or a pooler) refused names the flag to set: PgBouncer
// refuses the replication parameter, and a role or pg_hba.conf may lack
// replication.
func replicationConnectError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("cdc: replication connection refused (WAL streaming needs a direct connection to PostgreSQL by a role with REPLICATION: "+
			"set --direct-database-url (DIRECT_DATABASE_URL), not a PgBouncer URL; see docs/operations.md): %w", err)
	}
	return fmt.Errorf("cdc: replication connection: %w", err)
}

// capture ensures the publication and slot exist, snapshots if the slot is
// new, and streams until ctx is done or an error.
func (e *Engine) capture(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	if err := e.ensurePublication(ctx, pool); err != nil {
		return err
	}
	rcfg, err := pgconn.ParseConfig(e.cfg.DatabaseURL)
	if err != nil {
		return &fatalError{fmt.Errorf("cdc: database url: %w", err)}
	}
	rcfg.RuntimeParams["replication"] = "database"
	rcfg.RuntimeParams["application_name"] = "docstream-cdc"
	// pgoutput writes timestamptz in the walsender's time zone.
	rcfg.RuntimeParams["TimeZone"] = "UTC"
	repl, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return replicationConnectError(err)
	}
	defer repl.Close(context.Background())
	rp, err := e.resume(ctx, repl, log)
	if err != nil {
		return err
	}

	var done, exists bool
	var slotRowExists bool
	var walStatus string
	err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()),
		coalesce((SELECT snapshot_done_at IS NOT NULL FROM cdc.slots WHERE slot_name = $1), false),
		EXISTS (SELECT 1 FROM cdc.slots WHERE slot_name = $1),
		coalesce((SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1), '')`, e.cfg.Slot).Scan(&exists, &done, &slotRowExists, &walStatus)
	if err != nil {
		return fmt.Errorf("cdc: read slot state (is migration 00003 applied?): %w", err)
	}
	if exists && done && walStatus == "lost" {
		return e.slotLost(log)
	}
	if exists && slotRowExists && !done {
		// An engine died during the snapshot: PostgreSQL cannot tell how
		// far it got, so start over with a new slot and snapshot.
		log.Warn("slot left by an unfinished snapshot; recreating it")
		if err := pglogrepl.DropReplicationSlot(ctx, repl, e.cfg.Slot, pglogrepl.DropReplicationSlotOptions{Wait: true}); err != nil {
			return fmt.Errorf("cdc: drop unfinished slot: %w", err)
		}
		exists = false
	}
	if !exists {
		if err := e.createSlot(ctx, pool, repl, log); err != nil {
			return err
		}
		// The new slot starts after its consistent point, above anything
		// of this history already on the bus: nothing to skip.
		rp = resumePoint{}
	}
	return e.stream(ctx, pool, repl, rp, log)
}

// ErrSlotLost is the cause of the fatal error Run returns when PostgreSQL
// invalidated the slot (wal_status lost).
var ErrSlotLost = errors.New("cdc: the replication slot was invalidated")

// slotLost logs and returns the fatal error of an invalidated slot. The
// engine never recreates such a slot by itself: the changes in the WAL
// PostgreSQL removed are gone, and only a re-snapshot, which an operator
// decides on, brings the consumers back to the table's state.
func (e *Engine) slotLost(log *slog.Logger) error {
	what := fmt.Sprintf("replication slot %s is invalidated (wal_status lost): it retained more WAL than max_slot_wal_keep_size, "+
		"PostgreSQL removed WAL holding changes not yet published, and those changes can no longer be captured", e.cfg.Slot)
	remedy := fmt.Sprintf("Remedy: drop the slot (SELECT pg_drop_replication_slot('%s')) and start the engine again: it creates a new slot and "+
		"publishes every row as a snapshot (op r) so consumers converge on the table's state; changes in between reach them as their result, "+
		"not as events (docs/architecture.md, \"Re-snapshot\"). To avoid it, keep the engine running or raise max_slot_wal_keep_size, "+
		"and alert on docstream_cdc_slot_safe_wal_bytes.", e.cfg.Slot)
	log.Error("cdc engine refuses to start: "+what, "remedy", remedy)
	return &fatalError{fmt.Errorf("%w: %s. %s", ErrSlotLost, what, remedy)}
}

func (e *Engine) ensurePublication(ctx context.Context, pool *pgxpool.Pool) error {
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", e.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("cdc: publication: %w", err)
	}
	if exists {
		return e.addMissingTables(ctx, pool)
	}
	// Names were checked against identRe in Config.defaults.
	_, err := pool.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", e.cfg.Publication, strings.Join(e.cfg.Tables, ", ")))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" { // created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("cdc: create publication: %w", err)
	}
	return nil
}

// addMissingTables adds to an existing publication the captured tables it
// lacks: a table a later version captures (documents.extractions) reaches
// the bus from the moment it is added, without a new slot. A table the
// publication has and the configuration does not is left alone (another
// engine's configuration may want it).
func (e *Engine) addMissingTables(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", e.cfg.Publication)
	if err != nil {
		return fmt.Errorf("cdc: publication tables: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("cdc: publication tables: %w", err)
	}
	for _, t := range e.cfg.Tables {
		if slices.Contains(have, t) {
			continue
		}
		_, err := pool.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", e.cfg.Publication, t))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // added concurrently
			continue
		}
		if err != nil {
			return fmt.Errorf("cdc: add %s to publication %s: %w", t, e.cfg.Publication, err)
		}
		e.cfg.Log.Info("cdc: table added to the publication", "table", t, "publication", e.cfg.Publication)
	}
	return nil
}

// createSlot creates the slot and, in initial mode, publishes the rows that
// exist at its consistent point as op "r", reading them inside the
// snapshot the slot exported: streaming then starts exactly after it, so
// no row is missed or doubled whatever is written meanwhile.
func (e *Engine) createSlot(ctx context.Context, pool *pgxpool.Pool, repl *pgconn.PgConn, log *slog.Logger) error {
	action := "NOEXPORT_SNAPSHOT"
	if e.cfg.Snapshot == SnapshotInitial {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, e.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
	if err != nil {
		return fmt.Errorf("cdc: create slot %s: %w", e.cfg.Slot, err)
	}
	point, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO cdc.slots (slot_name, consistent_lsn, snapshot_mode) VALUES ($1, $2, $3)
		ON CONFLICT (slot_name) DO UPDATE SET consistent_lsn = $2, snapshot_mode = $3, created_at = now(), snapshot_done_at = NULL`,
		e.cfg.Slot, res.ConsistentPoint, e.cfg.Snapshot); err != nil {
		return fmt.Errorf("cdc: record slot: %w", err)
	}
	log.Info("replication slot created", "consistent_point", res.ConsistentPoint, "snapshot", e.cfg.Snapshot)
	if e.cfg.Snapshot == SnapshotInitial {
		start := time.Now()
		n, err := e.snapshot(ctx, pool, res.SnapshotName, uint64(point))
		if err != nil {
			return err
		}
		log.Info("initial snapshot published", "rows", n, "took", time.Since(start))
		// The snapshot is everything committed before the consistent point:
		// a watermark says so, and is the high-water mark a restart resumes
		// from until streaming publishes the next one.
		if err := e.publishMark(ctx, uint64(point), true); err != nil {
			return err
		}
	}
	if _, err := pool.Exec(ctx, "UPDATE cdc.slots SET snapshot_done_at = now() WHERE slot_name = $1", e.cfg.Slot); err != nil {
		return fmt.Errorf("cdc: record snapshot: %w", err)
	}
	return nil
}

// snapshot publishes every row of the captured tables as seen by the
// exported snapshot. The exported snapshot lives until the replication
// connection runs its next command, which is START_REPLICATION after this.
func (e *Engine) snapshot(ctx context.Context, pool *pgxpool.Pool, snapName string, point uint64) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapName+"'"); err != nil {
		return 0, fmt.Errorf("cdc: import snapshot: %w", err)
	}
	var xmin int64
	if err := tx.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").Scan(&xmin); err != nil {
		return 0, err
	}
	srcTs := time.Now().UnixMilli()

	// One event is held back so the last one of the whole snapshot can be
	// marked snapshot:"last".
	var (
		held    *bus.Message
		heldEnv *envelope
		heldTab *table
		batch   []bus.Message
		total   int
	)
	flush := func(force bool) error {
		if len(batch) >= e.cfg.MaxBatch || (force && len(batch) > 0) {
			start := time.Now()
			if err := e.bus.Publish(ctx, batch...); err != nil {
				return fmt.Errorf("cdc: publish snapshot: %w", err)
			}
			observePublish(batch, time.Since(start))
			batch = batch[:0]
		}
		return nil
	}
	emitHeld := func(last bool) error {
		if held == nil {
			return nil
		}
		if last {
			heldEnv.source.Snapshot = "last"
		}
		held.Value = appendEnvelope(nil, heldTab, heldEnv)
		batch = append(batch, *held)
		held = nil
		total++
		return flush(false)
	}
	for _, name := range e.cfg.Tables {
		t, err := catalogTable(ctx, tx, name, e.cfg.TopicPrefix)
		if err != nil {
			return 0, err
		}
		cols := make([]string, len(t.cols))
		for i, c := range t.cols {
			cols[i] = pgx.Identifier{c.name}.Sanitize() + "::text"
			if t.cols[i].skip = e.excluded(t.schema, t.name, c.name); t.cols[i].skip {
				cols[i] = "NULL::text" // not even read
			}
		}
		rows, err := tx.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+name, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return 0, fmt.Errorf("cdc: snapshot %s: %w", name, err)
		}
		for rows.Next() {
			raw := rows.RawValues()
			vals := make([]value, len(raw))
			for i, r := range raw {
				if r == nil {
					vals[i] = value{null: true}
				} else {
					vals[i] = value{text: append([]byte(nil), r...)}
				}
			}
			if err := emitHeld(false); err != nil {
				rows.Close()
				return 0, err
			}
			heldTab = t
			heldEnv = &envelope{op: change.OpRead, after: vals, producedMs: time.Now().UnixMilli(), source: change.Source{
				Version: e.cfg.Version, Connector: "postgresql", Name: e.cfg.Name, TsMs: srcTs, Snapshot: "true",
				DB: conn.Conn().Config().Database, Sequence: sequence(0, point), Schema: t.schema, Table: t.name,
				TxID: xmin, LSN: point,
			}}
			held = &bus.Message{Topic: t.topic, Key: appendKey(nil, t, vals), Headers: map[string]string{
				bus.HeaderLSN: strconv.FormatUint(point, 10), bus.HeaderOp: change.OpRead,
				bus.HeaderCommitLSN: strconv.FormatUint(point, 10)}}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("cdc: snapshot %s: %w", name, err)
		}
	}
	if err := emitHeld(true); err != nil {
		return 0, err
	}
	return total, flush(true)
}

// catalogTable reads a table's columns (table order) and primary key.
func catalogTable(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name, prefix string) (*table, error) {
	schema, rel, _ := strings.Cut(name, ".")
	rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid::int8, coalesce(a.attnum = ANY (i.indkey::int2[]), false)
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, schema, rel)
	if err != nil {
		return nil, fmt.Errorf("cdc: columns of %s: %w", name, err)
	}
	t := &table{schema: schema, name: rel, topic: prefix + "." + rel}
	for rows.Next() {
		var c column
		var oid int64
		if err := rows.Scan(&c.name, &oid, &c.key); err != nil {
			return nil, err
		}
		c.oid = uint32(oid)
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("cdc: table %s not found", name)
	}
	return t, nil
}

// primaryKey reads the primary key column names of the relation with oid.
func primaryKey(ctx context.Context, pool *pgxpool.Pool, relID uint32) (map[string]bool, error) {
	rows, err := pool.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
		WHERE i.indrelid = $1::oid AND i.indisprimary`, int64(relID))
	if err != nil {
		return nil, fmt.Errorf("cdc: primary key: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cdc: primary key: %w", err)
	}
	keys := map[string]bool{}
	for _, n := range names {
		keys[n] = true
	}
	return keys, nil
}
