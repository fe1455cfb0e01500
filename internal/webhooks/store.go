package webhooks

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/postgres"
)

// Store is the webhooks schema's queries (PostgreSQL), nothing else.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks the database (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// endpoint is a row of webhooks.endpoints.
type endpoint struct {
	api.Webhook
	OwnerKeys    []string
	Unrestricted bool
	SecretEnc    []byte
	PreviousEnc  []byte
}

const endpointColumns = `id::text, url, events, description, coalesce(document_id::text, ''), coalesce(created_by, ''), enabled,
	coalesce(disabled_reason, ''), coalesce(owner, ''), failing_since, previous_until, created_at, updated_at,
	owner_keys, unrestricted, secret_enc, previous_enc`

func scanEndpoint(row pgx.Row) (*endpoint, error) {
	var e endpoint
	err := row.Scan(&e.ID, &e.URL, &e.Events, &e.Description, &e.DocumentID, &e.CreatedBy, &e.Enabled, &e.DisabledReason,
		&e.Owner, &e.FailingSince, &e.PreviousSecretUntil, &e.CreatedAt, &e.UpdatedAt, &e.OwnerKeys, &e.Unrestricted, &e.SecretEnc, &e.PreviousEnc)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// startCursor starts the fan-out at the current WAL position unless it has
// started already: nothing committed before it is fanned out.
const startCursor = `INSERT INTO webhooks.cursor (name, commit_lsn)
	VALUES ('fanout', (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint) ON CONFLICT (name) DO NOTHING`

// Create inserts an endpoint, and starts the fan-out's cursor in the same
// statement if no fan-out has: every change committed after the endpoint
// is then fanned out, even when the fan-out itself starts later (a target
// is serving its API before its fan-out has read the cursor; left to the
// fan-out, the cursor would start after changes made in between).
func (s *Store) Create(ctx context.Context, e *endpoint) (*endpoint, error) {
	var reason *string
	if !e.Enabled {
		reason = nullable("disabled by its owner")
	}
	out, err := scanEndpoint(s.pool.QueryRow(ctx, `WITH cursor AS (`+startCursor+`)
		INSERT INTO webhooks.endpoints
		(id, url, events, description, document_id, created_by, enabled, disabled_reason, owner, owner_keys, unrestricted, secret_enc)
		VALUES ($1, $2, $3, $4, $5::uuid, $6, $7, $8, $9, $10, $11, $12) RETURNING `+endpointColumns,
		e.ID, e.URL, e.Events, e.Description, nullable(e.DocumentID), nullable(e.CreatedBy), e.Enabled, reason,
		nullable(e.Owner), e.OwnerKeys, e.Unrestricted, e.SecretEnc))
	return out, postgres.Error(err, "webhook")
}

// Get returns an endpoint; NotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (*endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhooks.endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.E(apperr.NotFound, "webhook %s not found", id)
	}
	return e, postgres.Error(err, "webhook "+id)
}

// List returns the endpoints owned by owner, or every one when all.
func (s *Store) List(ctx context.Context, owner string, all bool) ([]*endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhooks.endpoints
		WHERE $2::boolean OR owner IS NOT DISTINCT FROM $1::text ORDER BY created_at DESC, id DESC LIMIT 1000`, nullable(owner), all)
	if err != nil {
		return nil, postgres.Error(err, "webhooks")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*endpoint, error) { return scanEndpoint(r) })
	return out, postgres.Error(err, "webhooks")
}

// Update writes the endpoint's editable fields as e holds them.
func (s *Store) Update(ctx context.Context, e *endpoint) (*endpoint, error) {
	out, err := scanEndpoint(s.pool.QueryRow(ctx, `UPDATE webhooks.endpoints SET url = $2, events = $3, description = $4,
		document_id = $5::uuid, created_by = $6, enabled = $7, disabled_reason = $8,
		failing_since = CASE WHEN $7::boolean AND NOT enabled THEN NULL ELSE failing_since END, updated_at = now()
		WHERE id = $1 RETURNING `+endpointColumns,
		e.ID, e.URL, e.Events, e.Description, nullable(e.DocumentID), nullable(e.CreatedBy), e.Enabled, nullable(e.DisabledReason)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.E(apperr.NotFound, "webhook %s not found", e.ID)
	}
	return out, postgres.Error(err, "webhook "+e.ID)
}

// Delete removes an endpoint and its deliveries.
func (s *Store) Delete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks.endpoints WHERE id = $1`, id)
	if err != nil {
		return postgres.Error(err, "webhook "+id)
	}
	if tag.RowsAffected() == 0 {
		return apperr.E(apperr.NotFound, "webhook %s not found", id)
	}
	return nil
}

// Rotate stores a new secret, the current one becoming the previous one
// until until.
func (s *Store) Rotate(ctx context.Context, id string, newEnc, prevEnc []byte, until time.Time) (*endpoint, error) {
	out, err := scanEndpoint(s.pool.QueryRow(ctx, `UPDATE webhooks.endpoints SET secret_enc = $2, previous_enc = $3,
		previous_until = $4, updated_at = now() WHERE id = $1 RETURNING `+endpointColumns, id, newEnc, prevEnc, until))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.E(apperr.NotFound, "webhook %s not found", id)
	}
	return out, postgres.Error(err, "webhook "+id)
}

// Deliveries lists an endpoint's newest deliveries with their attempts,
// optionally of one status.
func (s *Store) Deliveries(ctx context.Context, endpointID, status string, limit int) ([]api.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, webhook_id, type, coalesce(document_id::text, ''), status, attempts,
		CASE WHEN status = 'pending' THEN next_attempt_at END, coalesce(last_status, 0), coalesce(last_error, ''), created_at, finished_at
		FROM webhooks.deliveries WHERE endpoint_id = $1 AND ($2::text = '' OR status = $2::text) ORDER BY id DESC LIMIT $3`, endpointID, status, limit)
	if err != nil {
		return nil, postgres.Error(err, "deliveries")
	}
	var ids []int64
	out := []api.Delivery{}
	for rows.Next() {
		var d api.Delivery
		var id int64
		if err := rows.Scan(&id, &d.WebhookID, &d.Type, &d.DocumentID, &d.Status, &d.Attempts, &d.NextAttemptAt, &d.LastStatus,
			&d.LastError, &d.CreatedAt, &d.FinishedAt); err != nil {
			rows.Close()
			return nil, postgres.Error(err, "deliveries")
		}
		d.ID = formatID(id)
		d.History = []api.DeliveryAttempt{}
		ids = append(ids, id)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, postgres.Error(err, "deliveries")
	}
	if len(ids) == 0 {
		return out, nil
	}
	arows, err := s.pool.Query(ctx, `SELECT delivery_id, at, coalesce(status_code, 0), duration_ms, coalesce(error, ''), coalesce(response, '')
		FROM webhooks.attempts WHERE delivery_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, postgres.Error(err, "attempts")
	}
	defer arows.Close()
	index := map[int64]int{}
	for i, id := range ids {
		index[id] = i
	}
	for arows.Next() {
		var id int64
		var a api.DeliveryAttempt
		if err := arows.Scan(&id, &a.At, &a.StatusCode, &a.DurationMS, &a.Error, &a.Response); err != nil {
			return nil, postgres.Error(err, "attempts")
		}
		out[index[id]].History = append(out[index[id]].History, a)
	}
	return out, postgres.Error(arows.Err(), "attempts")
}

// Redeliver queues a delivery again, at the head of its endpoint's queue,
// with its webhook-id and body.
func (s *Store) Redeliver(ctx context.Context, endpointID string, id int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhooks.deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
		first_attempt_at = NULL, finished_at = NULL WHERE id = $1 AND endpoint_id = $2`, id, endpointID)
	if err != nil {
		return postgres.Error(err, "delivery")
	}
	if tag.RowsAffected() == 0 {
		return apperr.E(apperr.NotFound, "delivery %d of webhook %s not found", id, endpointID)
	}
	return nil
}

// QueueTest queues a webhook.test delivery.
func (s *Store) QueueTest(ctx context.Context, endpointID, webhookID string, payload []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhooks.deliveries (endpoint_id, webhook_id, type, payload) VALUES ($1, $2, $3, $4)`,
		endpointID, webhookID, api.WebhookTest, payload)
	return postgres.Error(err, "delivery")
}

// storedEvent is a row of webhooks.events.
type storedEvent struct {
	Seq        int64
	Topic      string
	LSN        uint64
	CommitLSN  uint64
	Key        string
	Type       string
	DocumentID string
	CreatedBy  string
	Readers    []string
	HasReaders bool
	Payload    []byte
	At         time.Time
	Late       bool  // not stored: the bus's late mark
	Partition  int32 // not stored: the bus partition it came from
}

// Replay queues again every stored event of the range that e subscribes
// to (its filters applied), in commit order; an event already delivered
// to e is queued again under its webhook-id.
func (s *Store) Replay(ctx context.Context, e *endpoint, req api.ReplayRequest) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, topic, lsn, key, type, coalesce(document_id::text, ''), payload
		FROM webhooks.events ev
		WHERE type = ANY($1) AND ($2::uuid IS NULL OR document_id = $2::uuid)
		  AND ($3::text IS NULL OR coalesce(created_by, (SELECT d.created_by FROM documents.documents d WHERE d.id = ev.document_id)) = $3)
		  AND ($4::bigint = 0 OR commit_lsn >= $4::bigint) AND ($5::bigint = 0 OR commit_lsn <= $5::bigint)
		  AND ($6::timestamptz IS NULL OR occurred_at >= $6) AND ($7::timestamptz IS NULL OR occurred_at <= $7)
		ORDER BY seq LIMIT 100000`, e.Events, nullable(e.DocumentID), nullable(e.CreatedBy), int64(req.FromLSN), int64(req.ToLSN), req.Since, req.Until)
	if err != nil {
		return 0, postgres.Error(err, "replay")
	}
	type ev struct {
		seq                  int64
		topic, key, typ, doc string
		lsn                  int64
		payload              []byte
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
		var x ev
		err := r.Scan(&x.seq, &x.topic, &x.lsn, &x.key, &x.typ, &x.doc, &x.payload)
		return x, err
	})
	if err != nil {
		return 0, postgres.Error(err, "replay")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, postgres.Error(err, "replay")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	for _, x := range evs {
		b.Queue(`INSERT INTO webhooks.deliveries (endpoint_id, event_seq, webhook_id, type, payload, document_id)
			VALUES ($1, $2, $3, $4, $5, $6::uuid)
			ON CONFLICT (endpoint_id, webhook_id) DO UPDATE SET status = 'pending', attempts = 0, next_attempt_at = now(),
				first_attempt_at = NULL, finished_at = NULL`,
			e.ID, x.seq, WebhookID(e.ID, x.topic, uint64(x.lsn), x.key), x.typ, x.payload, nullable(x.doc))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, postgres.Error(err, "replay")
	}
	return len(evs), postgres.Error(tx.Commit(ctx), "replay")
}

// FanOut stores a batch of events (in commit order) and queues a delivery
// of each for every enabled endpoint that subscribes to it, then moves the
// cursor, all in one transaction. The cursor row is held FOR UPDATE, so
// instances fan out one batch at a time; an event whose commit LSN is
// below the cursor was fanned out already (by another instance, or before
// a restart) and is skipped, and one stored already is not queued twice
// (UNIQUE (topic, lsn, key)). Returns the deliveries queued.
//
// perPartition is for a bus without one order across its partitions and
// topics (Kafka): an event of a partition that lags behind another has a
// commit LSN below events fanned out already, and must not be skipped for
// it. Each topic's partition then has a cursor of its own
// ('fanout/<topic>/<partition>', from the 'fanout' row's position the
// first time), and the 'fanout' row stays where the deployment began: a
// restart reads from there (Kafka scans from its oldest record anyway)
// and each partition's cursor skips what it fanned out.
func (s *Store) FanOut(ctx context.Context, events []storedEvent, perPartition bool, match func(e *endpoint, ev *storedEvent, createdBy func() string) bool) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, postgres.Error(err, "fan-out")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var floor int64
	if err := tx.QueryRow(ctx, `SELECT commit_lsn FROM webhooks.cursor WHERE name = 'fanout' FOR UPDATE`).Scan(&floor); err != nil {
		return 0, postgres.Error(err, "fan-out cursor")
	}
	cursors := map[string]int64{"fanout": floor}
	if perPartition {
		crows, err := tx.Query(ctx, `SELECT name, commit_lsn FROM webhooks.cursor WHERE name LIKE 'fanout/%'`)
		if err != nil {
			return 0, postgres.Error(err, "fan-out cursor")
		}
		for crows.Next() {
			var n string
			var c int64
			if err := crows.Scan(&n, &c); err != nil {
				crows.Close()
				return 0, postgres.Error(err, "fan-out cursor")
			}
			cursors[n] = c
		}
		if err := crows.Err(); err != nil {
			return 0, postgres.Error(err, "fan-out cursor")
		}
	}
	cursorOf := func(ev *storedEvent) string {
		if !perPartition {
			return "fanout"
		}
		return "fanout/" + ev.Topic + "/" + strconv.Itoa(int(ev.Partition))
	}
	start := maps.Clone(cursors)
	rows, err := tx.Query(ctx, `SELECT `+endpointColumns+` FROM webhooks.endpoints WHERE enabled`)
	if err != nil {
		return 0, postgres.Error(err, "fan-out")
	}
	eps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return 0, postgres.Error(err, "fan-out")
	}
	queued := 0
	for i := range events {
		ev := &events[i]
		name := cursorOf(ev)
		cur, ok := start[name]
		if !ok {
			cur = floor
		}
		if int64(ev.CommitLSN) < cur && !ev.Late {
			continue
		}
		cursors[name] = max(cursors[name], cur, int64(ev.CommitLSN))
		var readers any
		if ev.HasReaders {
			readers = ev.Readers
		}
		var seq int64
		err := tx.QueryRow(ctx, `INSERT INTO webhooks.events (topic, lsn, commit_lsn, key, type, document_id, created_by, readers, payload, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6::uuid, $7, $8, $9, $10) ON CONFLICT (topic, lsn, key) DO NOTHING RETURNING seq`,
			ev.Topic, int64(ev.LSN), int64(ev.CommitLSN), ev.Key, ev.Type, nullable(ev.DocumentID), nullable(ev.CreatedBy), readers, ev.Payload, ev.At).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // stored already: its deliveries were queued with it
		}
		if err != nil {
			return 0, postgres.Error(err, "fan-out")
		}
		var createdBy *string
		lookup := func() string {
			if ev.CreatedBy != "" || ev.DocumentID == "" {
				return ev.CreatedBy
			}
			if createdBy == nil {
				var cb string
				_ = tx.QueryRow(ctx, `SELECT created_by FROM documents.documents WHERE id = $1`, ev.DocumentID).Scan(&cb)
				createdBy = &cb
			}
			return *createdBy
		}
		b := &pgx.Batch{}
		for _, e := range eps {
			if !match(e, ev, lookup) {
				continue
			}
			b.Queue(`INSERT INTO webhooks.deliveries (endpoint_id, event_seq, webhook_id, type, payload, document_id)
				VALUES ($1, $2, $3, $4, $5, $6::uuid) ON CONFLICT (endpoint_id, webhook_id) DO NOTHING`,
				e.ID, seq, WebhookID(e.ID, ev.Topic, ev.LSN, ev.Key), ev.Type, ev.Payload, nullable(ev.DocumentID))
			queued++
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return 0, postgres.Error(err, "fan-out")
			}
		}
	}
	for name, c := range cursors {
		if c == start[name] && name != "fanout" {
			continue
		}
		if perPartition && name == "fanout" {
			continue // where the deployment began: restarts read from there
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks.cursor (name, commit_lsn) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET commit_lsn = excluded.commit_lsn, updated_at = now()`, name, c); err != nil {
			return 0, postgres.Error(err, "fan-out cursor")
		}
	}
	return queued, postgres.Error(tx.Commit(ctx), "fan-out")
}

// Cursor returns the fan-out cursor, creating it at the current WAL
// position on first use: a new deployment delivers what is committed from
// now on, not the bus's whole history.
func (s *Store) Cursor(ctx context.Context) (uint64, error) {
	if _, err := s.pool.Exec(ctx, startCursor); err != nil {
		return 0, postgres.Error(err, "fan-out cursor")
	}
	var c int64
	err := s.pool.QueryRow(ctx, `SELECT commit_lsn FROM webhooks.cursor WHERE name = 'fanout'`).Scan(&c)
	return uint64(c), postgres.Error(err, "fan-out cursor")
}

// claim is an endpoint's queue held by one worker.
type claim struct {
	Endpoint *endpoint
	Token    string
}

// Claim takes the queue of one endpoint whose next delivery is due and
// that no live worker holds, for lease. ok is false when there is none.
func (s *Store) Claim(ctx context.Context, lease time.Duration) (c claim, ok bool, err error) {
	tok := uuid.NewString()
	var id string
	err = s.pool.QueryRow(ctx, `UPDATE webhooks.endpoints e SET lease_until = now() + $1::interval, lease_token = $2
		WHERE e.id = (SELECT x.id FROM webhooks.endpoints x
			WHERE x.enabled AND (x.lease_until IS NULL OR x.lease_until < now())
			  AND (SELECT d.next_attempt_at FROM webhooks.deliveries d WHERE d.endpoint_id = x.id AND d.status = 'pending'
			       ORDER BY d.id LIMIT 1) <= now()
			ORDER BY x.lease_until NULLS FIRST LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING e.id::text`, lease, tok).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return claim{}, false, nil
	}
	if err != nil {
		return claim{}, false, postgres.Error(err, "claim")
	}
	e, err := s.Get(ctx, id)
	if err != nil {
		return claim{}, false, err
	}
	return claim{Endpoint: e, Token: tok}, true, nil
}

// Release gives an endpoint's queue back (no-op when the lease was lost).
func (s *Store) Release(ctx context.Context, c claim) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhooks.endpoints SET lease_until = NULL, lease_token = NULL WHERE id = $1 AND lease_token = $2`,
		c.Endpoint.ID, c.Token)
	return postgres.Error(err, "release")
}

// pending is the head of an endpoint's queue.
type pending struct {
	ID             int64
	WebhookID      string
	Type           string
	Payload        []byte
	DocumentID     string
	Attempts       int
	FirstAttemptAt *time.Time
	NextAttemptAt  time.Time
	Readers        []string // the event's (nil: none recorded)
}

// Head returns the next delivery of the claimed endpoint; ok is false when
// its queue is empty.
func (s *Store) Head(ctx context.Context, c claim, lease time.Duration) (p pending, ok bool, err error) {
	// Extending the lease on each delivery keeps a long queue with the
	// worker that drains it.
	// A queue whose endpoint was disabled meanwhile (PATCH) stops here.
	tag, err := s.pool.Exec(ctx, `UPDATE webhooks.endpoints SET lease_until = now() + $3::interval WHERE id = $1 AND lease_token = $2 AND enabled`,
		c.Endpoint.ID, c.Token, lease)
	if err != nil {
		return p, false, postgres.Error(err, "lease")
	}
	if tag.RowsAffected() == 0 {
		return p, false, nil // lost the lease (another worker has the queue) or disabled
	}
	err = s.pool.QueryRow(ctx, `SELECT d.id, d.webhook_id, d.type, d.payload, coalesce(d.document_id::text, ''), d.attempts,
		d.first_attempt_at, d.next_attempt_at, ev.readers
		FROM webhooks.deliveries d LEFT JOIN webhooks.events ev ON ev.seq = d.event_seq
		WHERE d.endpoint_id = $1 AND d.status = 'pending' ORDER BY d.id LIMIT 1`, c.Endpoint.ID).Scan(
		&p.ID, &p.WebhookID, &p.Type, &p.Payload, &p.DocumentID, &p.Attempts, &p.FirstAttemptAt, &p.NextAttemptAt, &p.Readers)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, postgres.Error(err, "delivery")
}

// Readers returns a document's readers now; ok is false when it is gone.
func (s *Store) Readers(ctx context.Context, documentID string) (readers []string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce(readers, '{}') FROM documents.documents WHERE id = $1`, documentID).Scan(&readers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return readers, err == nil, postgres.Error(err, "document readers")
}

// outcome is what an attempt ended in.
type outcome struct {
	Status     string // the delivery's new status
	NextAt     time.Time
	StatusCode int
	Duration   time.Duration
	Err        string
	Response   string
	Attempted  bool   // an HTTP request was made (not a skip)
	Failed     bool   // the attempt failed (the endpoint is failing)
	DisableFor string // non-empty: disable the endpoint with this reason
}

// Record writes an attempt and its outcome, if c still holds the lease.
// It returns whether the endpoint was disabled by it.
func (s *Store) Record(ctx context.Context, c claim, p pending, o outcome, disableAfter time.Duration) (disabled bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, postgres.Error(err, "record")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var failingSince *time.Time
	err = tx.QueryRow(ctx, `SELECT failing_since FROM webhooks.endpoints WHERE id = $1 AND lease_token = $2 FOR UPDATE`,
		c.Endpoint.ID, c.Token).Scan(&failingSince)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // the lease was lost: the new holder delivers again (same webhook-id)
	}
	if err != nil {
		return false, postgres.Error(err, "record")
	}
	if o.Attempted {
		var code *int
		if o.StatusCode != 0 {
			code = &o.StatusCode
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks.attempts (delivery_id, status_code, duration_ms, error, response) VALUES ($1, $2, $3, $4, $5)`,
			p.ID, code, int(o.Duration.Milliseconds()), nullable(o.Err), nullable(o.Response)); err != nil {
			return false, postgres.Error(err, "record")
		}
	}
	var lastStatus *int
	if o.StatusCode != 0 {
		lastStatus = &o.StatusCode
	}
	attempts := 0
	if o.Attempted {
		attempts = 1
	}
	if _, err := tx.Exec(ctx, `UPDATE webhooks.deliveries SET status = $2::text, attempts = attempts + $3::int, next_attempt_at = $4,
		first_attempt_at = coalesce(first_attempt_at, CASE WHEN $3::int > 0 THEN now() END), last_status = coalesce($5::int, last_status),
		last_error = $6::text, finished_at = CASE WHEN $2::text = 'pending' THEN NULL ELSE now() END WHERE id = $1`,
		p.ID, o.Status, attempts, o.NextAt, lastStatus, nullable(o.Err)); err != nil {
		return false, postgres.Error(err, "record")
	}
	switch {
	case o.Failed:
		now := time.Now()
		if failingSince == nil {
			failingSince = &now
		}
		reason := ""
		if now.Sub(*failingSince) >= disableAfter {
			reason = "every delivery attempt failed since " + failingSince.UTC().Format(time.RFC3339) + "; last: " + o.Err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks.endpoints SET failing_since = $2,
			enabled = enabled AND $3::text = '', disabled_reason = CASE WHEN $3::text = '' THEN disabled_reason ELSE $3::text END WHERE id = $1`,
			c.Endpoint.ID, failingSince, reason); err != nil {
			return false, postgres.Error(err, "record")
		}
		disabled = reason != ""
	case o.Attempted:
		if _, err := tx.Exec(ctx, `UPDATE webhooks.endpoints SET failing_since = NULL WHERE id = $1`, c.Endpoint.ID); err != nil {
			return false, postgres.Error(err, "record")
		}
	}
	return disabled, postgres.Error(tx.Commit(ctx), "record")
}

// queueStat is one endpoint's queue, for the metrics.
type queueStat struct {
	Endpoint string
	Pending  int
	Oldest   time.Duration
}

// Queues counts each endpoint's pending deliveries and the age of the
// oldest.
func (s *Store) Queues(ctx context.Context) ([]queueStat, error) {
	rows, err := s.pool.Query(ctx, `SELECT e.id::text, count(d.id), coalesce(extract(epoch FROM now() - min(d.created_at)), 0)
		FROM webhooks.endpoints e LEFT JOIN webhooks.deliveries d ON d.endpoint_id = e.id AND d.status = 'pending'
		GROUP BY e.id`)
	if err != nil {
		return nil, postgres.Error(err, "queues")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (queueStat, error) {
		var q queueStat
		var secs float64
		err := r.Scan(&q.Endpoint, &q.Pending, &secs)
		q.Oldest = time.Duration(secs * float64(time.Second))
		return q, err
	})
}

// Prune removes events, and finished deliveries, older than retention.
// The events of the cursor's own transaction are kept whatever their age:
// a restart reads that transaction from the bus again (a batch may have
// ended inside it), and its stored rows are what mark it as fanned out
// already; pruned, it would be queued and delivered a second time.
func (s *Store) Prune(ctx context.Context, retention time.Duration) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhooks.events WHERE occurred_at < now() - $1::interval
		AND commit_lsn < coalesce((SELECT commit_lsn FROM webhooks.cursor WHERE name = 'fanout'), 0)`, retention); err != nil {
		return postgres.Error(err, "prune")
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM webhooks.deliveries WHERE status <> 'pending' AND finished_at < now() - $1::interval`, retention)
	return postgres.Error(err, "prune")
}
