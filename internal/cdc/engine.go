// Package cdc is the change data capture engine: it reads the PostgreSQL
// WAL through a logical replication slot (pgoutput), turns every committed
// row change of the captured tables into a Debezium-compatible envelope and
// publishes it on the bus, one topic per table (cdc.documents,
// cdc.signatures).
//
// Guarantees:
//   - No loss: the LSN confirmed to PostgreSQL only moves past a transaction
//     once the bus has acked all of its events and every event before them.
//     After a crash the slot replays from there, so only events with an LSN
//     above the last confirmed one can be published again, with the same
//     LSN (and on NATS the same message ID, which JetStream's dedup window
//     drops).
//   - Order: events are published in commit order.
//   - Watermarks: after each acknowledged batch, and when idle, the engine
//     publishes on bus.TopicWatermarks the WAL position up to which
//     everything is published.
//   - One active engine per slot: engines take a PostgreSQL advisory lock
//     first; the others wait as hot standbys and take over within
//     Config.StandbyPoll after the active one's session ends.
package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/bus"
)

// Snapshot modes.
const (
	SnapshotInitial = "initial" // read existing rows as op "r" when the slot is created
	SnapshotNever   = "never"
)

// Config configures an Engine. DatabaseURL and Bus are required.
type Config struct {
	// DatabaseURL reaches PostgreSQL directly (never through PgBouncer:
	// replication and session advisory locks need a real session).
	DatabaseURL string
	Slot        string   // replication slot (default docstream_slot)
	Publication string   // publication (default docstream_pub)
	Tables      []string // schema-qualified captured tables (default documents.documents, signatures.signatures)
	// TopicPrefix + "." + table name is a table's topic (default "cdc").
	TopicPrefix string
	// Snapshot is SnapshotInitial (default) or SnapshotNever.
	Snapshot string
	// StatusInterval is how often the confirmed position is reported to
	// PostgreSQL (default 10s).
	StatusInterval time.Duration
	// WatermarkInterval is how often an idle engine asks the server for its
	// WAL position and publishes it as a watermark (default 1s).
	WatermarkInterval time.Duration
	// HeartbeatInterval runs HeartbeatSQL so the slot advances while the
	// captured tables are idle (default 30s; negative: off).
	HeartbeatInterval time.Duration
	// HeartbeatSQL is the heartbeat action (default: a non-transactional
	// logical decoding message, which writes WAL and reaches this slot).
	HeartbeatSQL string
	// MaxBatch is the most events published in one bus round trip (default 1000).
	MaxBatch int
	// FlushInterval is the longest events wait to be batched while the bus
	// is busy with the previous batch (default 20ms).
	FlushInterval time.Duration
	// StandbyPoll is how often a standby tries to become active (default 1s).
	StandbyPoll time.Duration
	// SlotWALWarn is the share of max_slot_wal_keep_size the slot may
	// retain before the engine logs a warning every minute (default 0.5):
	// at the limit PostgreSQL invalidates the slot and only a re-snapshot
	// recovers.
	SlotWALWarn float64
	// Name is source.name (default "cdc"); Version is source.version.
	Name    string
	Version string
	Log     *slog.Logger
}

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func (c *Config) defaults() error {
	if c.DatabaseURL == "" {
		return errors.New("cdc: database URL required")
	}
	if c.Slot == "" {
		c.Slot = "docstream_slot"
	}
	if c.Publication == "" {
		c.Publication = "docstream_pub"
	}
	if !identRe.MatchString(c.Slot) || !identRe.MatchString(c.Publication) {
		return fmt.Errorf("cdc: slot %q and publication %q must be lower-case identifiers", c.Slot, c.Publication)
	}
	if len(c.Tables) == 0 {
		c.Tables = []string{"documents.documents", "signatures.signatures"}
	}
	for _, t := range c.Tables {
		s, n, ok := strings.Cut(t, ".")
		if !ok || !identRe.MatchString(s) || !identRe.MatchString(n) {
			return fmt.Errorf("cdc: table %q must be schema.table in lower case", t)
		}
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "cdc"
	}
	switch c.Snapshot {
	case "":
		c.Snapshot = SnapshotInitial
	case SnapshotInitial, SnapshotNever:
	default:
		return fmt.Errorf("cdc: snapshot mode %q: want initial or never", c.Snapshot)
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 10 * time.Second
	}
	if c.WatermarkInterval <= 0 {
		c.WatermarkInterval = time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 30 * time.Second
	}
	if c.HeartbeatSQL == "" {
		c.HeartbeatSQL = "SELECT pg_logical_emit_message(false, 'docstream.heartbeat', '')"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 20 * time.Millisecond
	}
	if c.StandbyPoll <= 0 {
		c.StandbyPoll = time.Second
	}
	if c.SlotWALWarn <= 0 || c.SlotWALWarn > 1 {
		c.SlotWALWarn = 0.5
	}
	if c.Name == "" {
		c.Name = "cdc"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Status is a point-in-time view of the engine (health, CLI, tests).
type Status struct {
	Active       bool   // holds the lock
	Standby      bool   // waiting for the lock another engine holds
	Streaming    bool   // snapshot done, replication running
	ConfirmedLSN uint64 // everything up to here is acked by the bus
	LastError    string
}

// Engine is one CDC engine. Run it with Run; it is safe to read Status
// from other goroutines.
type Engine struct {
	cfg Config
	bus bus.Bus

	mu     sync.Mutex
	status Status
	acked  atomic.Uint64
	src    source // set by resume before anything is published
}

// New checks cfg and returns an engine publishing on b.
func New(cfg Config, b bus.Bus) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("cdc: bus required")
	}
	return &Engine{cfg: cfg, bus: b}, nil
}

// WaitStarted waits until the engine streams, waits as a standby, or has
// failed once, or until timeout; it reports which (for start-up banners:
// changes committed from then on are captured as they happen).
func (e *Engine) WaitStarted(ctx context.Context, timeout time.Duration) Status {
	deadline := time.Now().Add(timeout)
	for {
		st := e.Status()
		if st.Streaming || st.Standby || st.LastError != "" || time.Now().After(deadline) || ctx.Err() != nil {
			return st
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Status returns the engine's current status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	s.ConfirmedLSN = e.acked.Load()
	return s
}

func (e *Engine) setStatus(f func(s *Status)) {
	e.mu.Lock()
	f(&e.status)
	e.mu.Unlock()
}

// Run waits to become the active engine, then captures changes until ctx is
// done. Errors of a running engine (connection lost, bus unavailable) are
// logged and retried from the slot with a backoff, so Run returns only
// when ctx is done (nil) or the configuration is unusable.
func (e *Engine) Run(ctx context.Context) error {
	log := e.cfg.Log.With("slot", e.cfg.Slot)
	backoff := time.Second
	for ctx.Err() == nil {
		err := e.runOnce(ctx, log)
		if ctx.Err() != nil {
			break
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return err
		}
		log.Error("cdc engine stopped; restarting from the slot", "err", err, "in", backoff)
		e.setStatus(func(s *Status) { s.Active, s.Streaming, s.LastError = false, false, err.Error() })
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	e.setStatus(func(s *Status) { s.Active, s.Streaming = false, false })
	return nil
}

// fatalError is a configuration problem retrying cannot fix.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

// runOnce takes the lock (waiting as a standby), sets up and streams.
func (e *Engine) runOnce(ctx context.Context, log *slog.Logger) error {
	pool, err := pgxpool.New(ctx, withParams(e.cfg.DatabaseURL, map[string]string{"timezone": "UTC", "application_name": "docstream-cdc"}))
	if err != nil {
		return &fatalError{fmt.Errorf("cdc: database url: %w", err)}
	}
	defer pool.Close()

	lock, err := e.acquireLock(ctx, pool, log)
	if err != nil {
		return err
	}
	defer lock.Release()
	// The lock belongs to the session of lock: if that session dies (the
	// database restarts, the network drops) another engine may take over,
	// so this one must stop. The watcher ends the active run when it does.
	// Deferred in this order so that the watcher has stopped using the lock's
	// connection before the connection goes back to the pool.
	runCtx, cancel := context.WithCancelCause(ctx)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel(nil)
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		t := time.NewTicker(e.cfg.StandbyPoll)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := lock.Ping(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("cdc: lost the advisory lock session: %w", err))
					return
				}
			}
		}
	}()
	e.setStatus(func(s *Status) { s.Active, s.Standby = true, false })
	log.Info("cdc engine active")
	err = e.capture(runCtx, pool, log)
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// acquireLock polls for the session advisory lock of the slot. A lock that
// waited (pg_advisory_lock) could not be given up when ctx ends without
// cancelling the query; polling keeps a standby interruptible.
func (e *Engine) acquireLock(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*pgxpool.Conn, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	standby := false
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "docstream.cdc/"+e.cfg.Slot).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("cdc: advisory lock: %w", err)
		}
		if ok {
			return conn, nil
		}
		if !standby {
			standby = true
			e.setStatus(func(s *Status) { s.Standby = true })
			log.Info("another cdc engine is active; waiting as hot standby")
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, ctx.Err()
		case <-time.After(e.cfg.StandbyPoll):
		}
	}
}

// withParams adds query parameters to a postgres:// URL (or key=value DSN).
func withParams(url string, params map[string]string) string {
	if strings.Contains(url, "://") {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		for k, v := range params {
			url += sep + k + "=" + v
			sep = "&"
		}
		return url
	}
	for k, v := range params {
		url += " " + k + "=" + v
	}
	return url
}

// LSN formats an LSN as PostgreSQL does (0/16B3748).
func LSN(lsn uint64) string { return pglogrepl.LSN(lsn).String() }
