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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/bus"
)

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
	// exclude holds Config.ExcludeColumns.
	exclude map[string]bool
}

// excluded reports whether a column is in Config.ExcludeColumns.
func (e *Engine) excluded(schema, table, col string) bool {
	return e.exclude[schema+"."+table+"."+col]
}

// New checks cfg and returns an engine publishing on b.
func New(cfg Config, b bus.Bus) (*Engine, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("cdc: database URL required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HeartbeatSQL == "" {
		cfg.HeartbeatSQL = defaultHeartbeatSQL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if b == nil {
		return nil, errors.New("cdc: bus required")
	}
	e := &Engine{cfg: cfg, bus: b, exclude: map[string]bool{}}
	for _, c := range cfg.ExcludeColumns {
		e.exclude[c] = true
	}
	return e, nil
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
	if e.status.Active {
		active.Set(1)
	} else {
		active.Set(0)
	}
	e.mu.Unlock()
}

// Run waits to become the active engine, then captures changes until ctx is
// done. Errors of a running engine (connection lost, bus unavailable) are
// logged and retried from the slot with a backoff, so Run returns only
// when ctx is done (nil) or the configuration is unusable.
func (e *Engine) Run(ctx context.Context) error {
	log := e.cfg.Log.With("slot", e.cfg.Slot)
	e.prepare(ctx, log)
	backoff := time.Second
	var streamed time.Time // when a run last streamed
	for ctx.Err() == nil {
		began := time.Now()
		err := e.runOnce(ctx, log)
		if ctx.Err() != nil {
			break
		}
		if e.Status().Streaming {
			streamed = time.Now()
		}
		if time.Since(streamed) < maxRestartWait || time.Since(began) > maxRestartWait {
			// It streamed a moment ago (a bus failover, a dropped
			// connection): keep retrying at the first pace while the outage
			// is short, not after a backoff grown meanwhile (a stream
			// electing a leader fails each attempt for a few seconds).
			backoff = time.Second
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			e.setStatus(func(s *Status) { s.Active, s.Streaming, s.LastError = false, false, err.Error() })
			return err
		}
		log.Error("cdc engine stopped; restarting from the slot", "err", err, "in", backoff)
		e.setStatus(func(s *Status) { s.Active, s.Streaming, s.LastError = false, false, err.Error() })
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRestartWait)
	}
	e.setStatus(func(s *Status) { s.Active, s.Streaming = false, false })
	return nil
}

// maxRestartWait caps the pause between restarts of a failing engine. A
// bus that is back after 10 s (a stream electing a leader) must cost about
// that, not a 30 s backoff.
const maxRestartWait = 10 * time.Second

// preparer is a bus that can make sure the streams of topics exist ahead of
// the first publish (the NATS bus).
type preparer interface {
	Prepare(ctx context.Context, topics ...string) error
}

// prepare has the bus set up the engine's streams before the engine waits
// for its lock, so that an engine taking over publishes at once: nothing
// on the way from the lock to the first publish asks the bus's control
// plane (a JetStream meta leader being elected at the moment the active
// engine's node died would otherwise hold the first publish). A failure
// is only logged: the first publish sets them up then.
func (e *Engine) prepare(ctx context.Context, log *slog.Logger) {
	p, ok := e.bus.(preparer)
	if !ok {
		return
	}
	topics := []string{bus.TopicWatermarks}
	for _, t := range e.cfg.Tables {
		_, name, _ := strings.Cut(t, ".")
		topics = append(topics, e.cfg.TopicPrefix+"."+name)
	}
	if err := p.Prepare(ctx, topics...); err != nil {
		log.Warn("cdc: could not set up the bus's streams ahead of publishing; the first publish will", "err", err)
	}
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
	if err := directSession(ctx, conn.Conn()); err != nil {
		conn.Release()
		return nil, err
	}
	standby := false
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lockKey(e.cfg.Slot)).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("cdc: advisory lock: %w", err)
		}
		if ok {
			return conn, nil
		}
		if !standby {
			standby = true
			// A standby is healthy whatever made it lose the lock before.
			e.setStatus(func(s *Status) { s.Standby, s.LastError = true, "" })
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

// ErrPooledConnection is the cause of the fatal error Run returns when its
// database URL goes through a connection pooler.
var ErrPooledConnection = errors.New("cdc: the database URL goes through a connection pooler (PgBouncer?), not to PostgreSQL directly")

// directSession refuses a connection that is not a session of its own on
// the server. The engine's advisory lock is a session lock: taken through
// PgBouncer in transaction mode it lands on whichever server connection
// ran that statement, stays there when the engine goes, and the next
// engine waits for it forever. A pooler answers the startup with its own
// backend key (it must, to route cancel requests), so the process id the
// connection was given differs from the backend's pg_backend_pid(); a
// direct connection, or a plain TCP proxy, gets the backend's own.
func directSession(ctx context.Context, conn *pgx.Conn) error {
	var pid uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pid); err != nil {
		return fmt.Errorf("cdc: backend pid: %w", err)
	}
	if given := conn.PgConn().PID(); given != pid {
		return &fatalError{fmt.Errorf("%w: its connection was given process id %d, but the server process is %d. "+
			"The engine's advisory lock and WAL replication need a session of their own: set --direct-database-url (DIRECT_DATABASE_URL) "+
			"to a URL reaching PostgreSQL directly (the pooler stays for the other services' --database-url)",
			ErrPooledConnection, given, pid)}
	}
	return nil
}

// lockKey is the text whose hash is the advisory lock of slot.
func lockKey(slot string) string { return "docstream.cdc/" + slot }

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

// DescribeLSN prints an LSN in PostgreSQL's form (0/16B3748) both ways:
// as given and as the decimal the events carry in source.lsn.
func DescribeLSN(s string) string {
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		return s
	}
	return s + " (" + strconv.FormatUint(uint64(lsn), 10) + ")"
}
