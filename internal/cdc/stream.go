package cdc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/semaphore"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// maxWait bounds one wait for the server, so the loop notices a stop.
const maxWait = 100 * time.Millisecond

// batch is a unit handed from the reader to the publisher: events in WAL
// order and, when the batch ends at least one transaction, the LSN that may
// be confirmed once they are all acked (the end of the last complete
// transaction, or an idle server position). A batch with no events carries
// only a watermark.
type batch struct {
	events  []bus.Message
	confirm uint64
}

// stream runs START_REPLICATION from the slot's confirmed position and
// turns pgoutput messages into events until ctx is done.
func (e *Engine) stream(ctx context.Context, pool *pgxpool.Pool, repl *pgconn.PgConn, rp resumePoint, log *slog.Logger) error {
	err := pglogrepl.StartReplication(ctx, repl, e.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names '" + e.cfg.Publication + "'",
			"messages 'true'", // heartbeats arrive as logical decoding messages
		},
	})
	if err != nil {
		return fmt.Errorf("cdc: start replication: %w", err)
	}
	// Replication resumes after the slot's confirmed position: that is what
	// is acked so far.
	var s string
	if err := pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", e.cfg.Slot).Scan(&s); err != nil {
		return fmt.Errorf("cdc: read slot position: %w", err)
	}
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		return fmt.Errorf("cdc: slot position %q: %w", s, err)
	}
	confirmed := uint64(l)
	if rp.mark > confirmed {
		// The bus holds more than PostgreSQL persisted for the slot: the
		// mark is what is acked, and the next status update confirms it.
		confirmed = rp.mark
	}
	e.acked.Store(confirmed)
	e.setStatus(func(s *Status) { s.Streaming, s.LastError = true, "" })
	log.Info("streaming changes", "from", LSN(confirmed))

	// The publisher owns the bus round trips; it runs beside the reader so
	// decoding continues while a batch is in flight.
	work := make(chan batch, 4)
	pubErr := make(chan error, 1)
	var inflight atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.publisher(work, pubErr, &inflight)
	}()
	// On every way out: let the publisher finish what it has (so the last
	// acked position is reported), then send the final status.
	defer func() {
		close(work)
		wg.Wait()
		// CopyDone makes the server read everything sent before it (the
		// last status) before the connection goes; without it a clean stop
		// could leave the slot behind and repeat events on the next start.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = repl.Conn().SetReadDeadline(time.Time{}) // the loop's last one may have passed
		if err := pglogrepl.SendStandbyStatusUpdate(fctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(e.acked.Load())}); err == nil {
			_, _ = pglogrepl.SendStandbyCopyDone(fctx, repl)
		}
	}()

	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	slotErr := make(chan error, 1)
	go e.watchSlot(lagCtx, pool, log, slotErr)
	if e.cfg.HeartbeatInterval > 0 {
		hbCtx, stop := context.WithCancel(ctx)
		defer stop()
		go e.heartbeat(hbCtx, pool, log)
	}

	// The database name is read once: pool.Config() copies the whole
	// configuration, which showed in the capture profile when done per row.
	r := &reader{e: e, pool: pool, db: pool.Config().ConnConfig.Database, rels: map[uint32]*table{}, topics: map[string]bool{}, rp: rp, log: log}
	for _, t := range e.cfg.Tables {
		r.topics[t] = true
	}
	var (
		pending      batch
		pendingSince time.Time
		handed       uint64 // confirm position of the last batch handed over
		nextStatus   = time.Now().Add(e.cfg.StatusInterval)
		nextMark     = time.Now().Add(e.cfg.WatermarkInterval)
		lastSent     uint64
	)
	hand := func() error {
		if len(pending.events) == 0 && pending.confirm == 0 {
			return nil
		}
		inflight.Add(1)
		// No ctx case: the publisher consumes until work is closed, and what
		// was read before a stop is still worth publishing and confirming.
		select {
		case work <- pending:
		case err := <-pubErr:
			return err
		}
		if pending.confirm > handed {
			handed = pending.confirm
		}
		pending = batch{}
		return nil
	}
	sendStatus := func(reply bool) error {
		pos := e.acked.Load()
		lastSent = pos
		nextStatus = time.Now().Add(e.cfg.StatusInterval)
		err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(pos), ReplyRequested: reply})
		if err != nil {
			return fmt.Errorf("cdc: status update: %w", err)
		}
		confirmedLSN.WithLabelValues(e.cfg.Slot).Set(float64(pos))
		return nil
	}
	idle := func() bool { return !r.inTx && len(pending.events) == 0 && inflight.Load() == 0 }

	for {
		select {
		case err := <-pubErr:
			return err
		case err := <-slotErr:
			return err
		default:
		}
		if ctx.Err() != nil {
			return hand()
		}
		now := time.Now()
		if now.After(nextStatus) {
			if err := sendStatus(false); err != nil {
				return err
			}
		}
		if now.After(nextMark) {
			nextMark = now.Add(e.cfg.WatermarkInterval)
			if idle() {
				// The server answers with a keepalive carrying how far it has
				// decoded; see the keepalive case.
				if err := sendStatus(true); err != nil {
					return err
				}
			}
		}
		// Hand the pending events over when the bus is free (low latency
		// when quiet), when the batch is full, or when it has waited long
		// enough behind a busy bus (batching under load).
		if n := len(pending.events); n > 0 && !r.inTx && inflight.Load() == 0 ||
			n >= e.cfg.MaxBatch || n > 0 && now.Sub(pendingSince) >= e.cfg.FlushInterval {
			if err := hand(); err != nil {
				return err
			}
		}

		deadline := nextStatus
		if nextMark.Before(deadline) {
			deadline = nextMark
		}
		if len(pending.events) > 0 {
			if d := pendingSince.Add(e.cfg.FlushInterval); d.Before(deadline) {
				deadline = d
			}
			// Wake soon to see whether the publisher became free.
			if d := now.Add(time.Millisecond); d.Before(deadline) {
				deadline = d
			}
		}
		// A read deadline on the socket, not a context: a context per
		// receive costs pgconn a watcher goroutine per message, which shows
		// at tens of thousands of messages a second. Deadlines are at most
		// maxWait away, so a stop is noticed promptly.
		if d := now.Add(maxWait); d.Before(deadline) {
			deadline = d
		}
		_ = repl.Conn().SetReadDeadline(deadline)
		raw, err := repl.ReceiveMessage(context.Background())
		if err != nil {
			if pgconn.Timeout(err) || ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("cdc: receive: %w", err)
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("cdc: replication error: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyData:
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("cdc: keepalive: %w", err)
				}
				// Idle and everything handed is acked: every transaction the
				// server decoded before ServerWALEnd has reached us and the
				// bus, so that position is fully published.
				if idle() && uint64(ka.ServerWALEnd) > e.acked.Load() && uint64(ka.ServerWALEnd) > handed {
					pending.confirm = uint64(ka.ServerWALEnd)
					if err := hand(); err != nil {
						return err
					}
				}
				if ka.ReplyRequested || e.acked.Load() != lastSent && ka.ServerWALEnd > 0 {
					if err := sendStatus(false); err != nil {
						return err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("cdc: xlogdata: %w", err)
				}
				before := len(pending.events)
				confirm, err := r.handle(ctx, xld, &pending.events)
				if err != nil {
					return err
				}
				if before == 0 && len(pending.events) > 0 {
					pendingSince = time.Now()
				}
				if confirm > pending.confirm {
					pending.confirm = confirm
				}
				if confirm > 0 && len(pending.events) == 0 && idle() {
					// A transaction of no interest (or a heartbeat) ended:
					// its position can be confirmed right away.
					if err := hand(); err != nil {
						return err
					}
				}
			}
		}
	}
}

// publishWindow is how many events may be published and not yet acked at
// once, over as many batches as that takes. While the bus stores and
// fsyncs some batches, the next ones are already on their way, so neither
// the bus nor the reader waits out a round trip and an fsync per batch.
// That removes waiting, not work: it raised the capture benchmark's ratio
// to pg_recvlogical (0.58× → 0.69× median on a quiet machine) but not the
// engine's own rate, which CPU bounds (docs/benchmarks.md). A window in
// events, unlike a count of batches, holds for any --cdc-max-batch. It
// stays below the NATS client's limit of
// unacked async publishes (16,384, internal/bus/nats), which fails
// publishes beyond it, leaving room for the watermarks sent beside.
// Confirmation still goes batch by batch in order.
const publishWindow = 12_000

// asyncPublisher is a bus that can send a batch and wait for its acks later
// (the NATS bus). Calls made from one goroutine keep their order on the bus.
// Other buses are published to one batch at a time.
type asyncPublisher interface {
	PublishAsync(ctx context.Context, msgs ...bus.Message) (wait func(context.Context) error, err error)
}

// sent is a batch on its way: wait returns once the bus has acked all of
// its events; held is its share of the publish window.
type sent struct {
	b      batch
	held   int64
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
	wait   func(context.Context) error
}

// publisher publishes batches in order, with up to publishWindow events
// unacked at once, and hands each to confirmer, which waits for the acks in
// the same order. The acked position therefore only moves past a batch once
// it and every batch before it are acked. On failure the error is reported
// and the rest dropped: the engine restarts from the slot, and what was sent
// after the failed batch comes again (the dedup window drops it).
func (e *Engine) publisher(work <-chan batch, errc chan<- error, inflight *atomic.Int64) {
	var failed atomic.Bool
	fail := func(err error) {
		failed.Store(true)
		select {
		case errc <- err:
		default:
		}
	}
	async, _ := e.bus.(asyncPublisher)
	// The window counts the events of batches sent and not yet confirmed;
	// confirmer gives a batch's share back once it is done with it. A batch
	// larger than the window (--cdc-max-batch above it) takes all of it.
	window := semaphore.NewWeighted(publishWindow)
	// The batches sent and not yet confirmed, in order. Its capacity is a
	// second bound beside the window, in batches: with batches of
	// --cdc-max-batch (1,000) the window binds first (12 in flight); 64
	// binds only when batches average under publishWindow/64 ≈ 190 events
	// (a trickle of small transactions, which acks keep up with) or are
	// watermark-only (no room in the window). The publisher then waits for
	// the oldest batch's acks: 64 round trips in flight hide the bus's
	// latency as well as the window does. A full queue is backpressure,
	// never a deadlock: the confirmer drains it without the publisher.
	sentq := make(chan sent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.confirmer(sentq, window, inflight, &failed, fail)
	}()
	// Batches already handed over are still published when the engine stops,
	// so a clean shutdown confirms all it read; a bounded wait keeps a dead
	// bus from blocking shutdown for ever.
	for b := range work {
		if failed.Load() {
			inflight.Add(-1)
			continue
		}
		held := int64(min(len(b.events), publishWindow))
		if held > 0 {
			// Never fails: the context is never done. Confirmer releases
			// within the publish timeout even when the bus is gone.
			_ = window.Acquire(context.Background(), held)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s := sent{b: b, held: held, ctx: ctx, cancel: cancel, start: time.Now(), wait: func(context.Context) error { return nil }}
		if len(b.events) > 0 {
			var err error
			if async != nil {
				s.wait, err = async.PublishAsync(ctx, b.events...)
			} else {
				err = e.bus.Publish(ctx, b.events...)
			}
			if err != nil {
				cancel()
				window.Release(held)
				inflight.Add(-1)
				fail(fmt.Errorf("cdc: publish: %w", err))
				continue
			}
		}
		sentq <- s
	}
	close(sentq)
	<-done
}

// confirmer waits for each sent batch's acks in order, then advances the
// acked position and publishes a watermark.
func (e *Engine) confirmer(sentq <-chan sent, window *semaphore.Weighted, inflight *atomic.Int64, failed *atomic.Bool, fail func(error)) {
	for s := range sentq {
		if !failed.Load() {
			if err := e.confirm(s); err != nil {
				fail(err)
			}
		}
		s.cancel()
		window.Release(s.held)
		inflight.Add(-1)
	}
}

func (e *Engine) confirm(s sent) error {
	if len(s.b.events) > 0 {
		if err := s.wait(s.ctx); err != nil {
			return fmt.Errorf("cdc: publish: %w", err)
		}
		observePublish(s.b.events, time.Since(s.start))
	}
	if s.b.confirm == 0 || s.b.confirm <= e.acked.Load() {
		return nil
	}
	e.acked.Store(s.b.confirm)
	return e.publishMark(s.ctx, s.b.confirm, false)
}

// heartbeat runs the heartbeat action so the slot keeps advancing while the
// captured tables are idle.
func (e *Engine) heartbeat(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := pool.Exec(ctx, e.cfg.HeartbeatSQL); err != nil && ctx.Err() == nil {
				log.Warn("cdc heartbeat failed", "err", err)
			}
		}
	}
}

// watchSlot keeps the slot's gauges current and warns well before
// max_slot_wal_keep_size: at the limit PostgreSQL invalidates the slot, and
// then only a re-snapshot recovers. An invalidated slot is reported on lost
// (fatal).
func (e *Engine) watchSlot(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, lost chan<- error) {
	t := time.NewTicker(e.cfg.StatusInterval)
	defer t.Stop()
	var warned time.Time
	first := true
	for {
		info, err := Inspect(ctx, pool, e.cfg.Slot, e.cfg.Publication)
		if err == nil && info.Exists {
			slot := e.cfg.Slot
			slotLagBytes.WithLabelValues(slot).Set(float64(info.LagBytes))
			slotRetainedBytes.WithLabelValues(slot).Set(float64(info.RetainedBytes))
			safe := float64(-1)
			if info.SafeBytes != nil {
				safe = float64(*info.SafeBytes)
			}
			slotSafeBytes.WithLabelValues(slot).Set(safe)
			switch {
			case info.WALStatus == "lost":
				lost <- e.slotLost(log)
				return
			case info.MaxKeepBytes < 0 && first:
				log.Warn("max_slot_wal_keep_size is unlimited: while the engine is stopped or behind, the slot retains WAL until the disk is full; " +
					"set it, with an alert on docstream_cdc_slot_safe_wal_bytes (docs/architecture.md)")
			case info.MaxKeepBytes > 0 && (info.WALStatus == "unreserved" ||
				float64(info.RetainedBytes) >= e.cfg.SlotWALWarn*float64(info.MaxKeepBytes)) && time.Since(warned) >= time.Minute:
				warned = time.Now()
				log.Warn("replication slot retains WAL close to max_slot_wal_keep_size; at the limit PostgreSQL invalidates it and the engine must re-snapshot",
					"retained_bytes", info.RetainedBytes, "max_slot_wal_keep_bytes", info.MaxKeepBytes, "safe_wal_bytes", safe, "wal_status", info.WALStatus)
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reader turns pgoutput messages into events.
type reader struct {
	e      *Engine
	pool   *pgxpool.Pool
	db     string
	rels   map[uint32]*table
	topics map[string]bool

	inTx       bool
	xid        uint32
	commitLSN  uint64
	commitStr  string // commitLSN in decimal, the commit_lsn header of the transaction's events
	commitTime time.Time
	lastCommit uint64

	// What the bus already holds (see resume.go): skip is set for a
	// transaction committed before rp.mark, late for one committed before
	// the last one stored.
	rp   resumePoint
	skip bool
	late bool
	log  *slog.Logger

	// Reused per row: the decoded old and new tuples (only read while the
	// row is encoded) and the slab that keys and values are cut from, so a
	// row costs a few exact-size pieces of one large allocation instead of
	// a buffer each.
	before, after []value
	slab          []byte
}

// slabSize is the size of one slab; rows are a few hundred bytes to a few
// kilobytes, so one slab serves hundreds of them.
const slabSize = 256 << 10

// cut appends an encoding, produced by enc, at the end of the slab and
// returns it with its capacity capped, so nothing appended to it later can
// reach the next one. An encoding that does not fit grows into its own
// allocation (append copies it out), and the slab is left as it was.
func (r *reader) cut(enc func([]byte) []byte) []byte {
	if cap(r.slab)-len(r.slab) < 4096 {
		r.slab = make([]byte, 0, slabSize)
	}
	start := len(r.slab)
	out := enc(r.slab[start:start])
	if len(out) <= cap(r.slab)-start { // written in place
		r.slab = r.slab[:start+len(out)]
	}
	return out[:len(out):len(out)]
}

// handle decodes one XLogData. It appends events to out and returns the LSN
// that becomes confirmable once out is acked (non-zero at a commit or a
// non-transactional message).
func (r *reader) handle(ctx context.Context, xld pglogrepl.XLogData, out *[]bus.Message) (uint64, error) {
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return 0, fmt.Errorf("cdc: parse pgoutput: %w", err)
	}
	lsn := uint64(xld.WALStart)
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		r.inTx, r.xid, r.commitTime, r.commitLSN = true, m.Xid, m.CommitTime, uint64(m.FinalLSN)
		r.commitStr = strconv.FormatUint(r.commitLSN, 10)
		r.skip, r.late = r.commitLSN < r.rp.mark, false
		if r.rp.stored != nil && r.commitLSN > r.rp.last {
			r.rp.stored = nil // past everything the bus held at start
		}
	case *pglogrepl.CommitMessage:
		r.inTx = false
		r.lastCommit = uint64(m.CommitLSN)
		return uint64(m.TransactionEndLSN), nil
	case *pglogrepl.RelationMessage:
		return 0, r.relation(ctx, m)
	case *pglogrepl.InsertMessage:
		return 0, r.emit(m.RelationID, change.OpCreate, nil, m.Tuple, lsn, out)
	case *pglogrepl.UpdateMessage:
		return 0, r.emit(m.RelationID, change.OpUpdate, m.OldTuple, m.NewTuple, lsn, out)
	case *pglogrepl.DeleteMessage:
		return 0, r.emit(m.RelationID, change.OpDelete, m.OldTuple, nil, lsn, out)
	case *pglogrepl.LogicalDecodingMessage:
		if !m.Transactional && !r.inTx {
			return uint64(m.LSN), nil
		}
	case *pglogrepl.TruncateMessage:
		// Debezium's default (skipped.operations=t) emits nothing for TRUNCATE.
		r.e.cfg.Log.Warn("TRUNCATE of a captured table is not published", "lsn", LSN(lsn))
	}
	return 0, nil
}

// relation (re)defines a table from a Relation message: sent before the
// first change of a table in a session and again after its schema changed,
// so a column added at run time appears in the next event.
func (r *reader) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	keys, err := primaryKey(ctx, r.pool, m.RelationID)
	if err != nil {
		return err
	}
	t := &table{schema: m.Namespace, name: m.RelationName, topic: r.e.cfg.TopicPrefix + "." + m.RelationName}
	for _, c := range m.Columns {
		t.cols = append(t.cols, column{name: c.Name, oid: c.DataType, key: keys[c.Name], skip: r.e.excluded(m.Namespace, m.RelationName, c.Name)})
	}
	if len(keys) == 0 { // no primary key: the replica identity columns
		for i, c := range m.Columns {
			t.cols[i].key = c.Flags&1 != 0
		}
	}
	r.rels[m.RelationID] = t
	return nil
}

func (r *reader) emit(relID uint32, op string, oldT, newT *pglogrepl.TupleData, lsn uint64, out *[]bus.Message) error {
	t, ok := r.rels[relID]
	if !ok {
		return fmt.Errorf("cdc: change for unknown relation %d", relID)
	}
	if !r.topics[t.schema+"."+t.name] {
		return nil // in the publication but not configured here
	}
	if r.skip {
		eventsSkipped.WithLabelValues("before_mark").Inc()
		return nil
	}
	var before, after []value
	if oldT != nil {
		r.before = tupleValues(r.before[:0], oldT)
		before = r.before
	}
	if newT != nil {
		r.after = tupleValues(r.after[:0], newT)
		after = r.after
	}
	if before != nil && after != nil {
		// Unchanged TOAST values are not sent again; REPLICA IDENTITY FULL
		// put them in the old tuple.
		for i := range after {
			if after[i].toast && i < len(before) && !before[i].toast {
				after[i] = before[i]
			}
		}
	}
	env := envelope{op: op, before: before, after: after, producedMs: time.Now().UnixMilli(), source: change.Source{
		Version: r.e.cfg.Version, Connector: "postgresql", Name: r.e.cfg.Name, TsMs: r.commitTime.UnixMilli(),
		Snapshot: "false", DB: r.db, Sequence: sequence(r.lastCommit, lsn),
		Schema: t.schema, Table: t.name, TxID: int64(r.xid), LSN: lsn,
	}}
	keyRow := after
	if keyRow == nil {
		keyRow = before
	}
	m := bus.Message{
		Topic: t.topic,
		Key:   r.cut(func(b []byte) []byte { return appendKey(b, t, keyRow) }),
		Headers: map[string]string{
			bus.HeaderLSN:       strconv.FormatUint(lsn, 10),
			bus.HeaderOp:        op,
			bus.HeaderCommitLSN: r.commitStr,
		},
	}
	if r.rp.stored != nil {
		if r.rp.stored(m) {
			eventsSkipped.WithLabelValues("stored").Inc()
			return nil
		}
		if r.commitLSN < r.rp.last {
			m.Headers[bus.HeaderLate] = "true"
			if !r.late {
				r.late = true
				r.log.Warn("publishing a transaction the bus lacks after later ones it holds (a publish was lost); its events are marked late",
					"commit_lsn", LSN(r.commitLSN), "bus_last_commit", LSN(r.rp.last))
			}
		}
	}
	m.Value = r.cut(func(b []byte) []byte { return appendEnvelope(b, t, &env) })
	*out = append(*out, m)
	return nil
}

// tupleValues appends td's columns to vals.
func tupleValues(vals []value, td *pglogrepl.TupleData) []value {
	vals = slices.Grow(vals, len(td.Columns))[:len(td.Columns)]
	for i, c := range td.Columns {
		vals[i] = value{}
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			vals[i].null = true
		case pglogrepl.TupleDataTypeToast:
			vals[i].toast = true
		default:
			vals[i].text = c.Data
		}
	}
	return vals
}
