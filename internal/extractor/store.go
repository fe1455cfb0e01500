package extractor

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/postgres"
)

// Store is documents.extractions: the results, and the work queue.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const columns = `document_id, content_sha256, status, format, kind, pages, language, text_size, truncated, thumbnail, ocr,
	duration_ms, reason, error, attempts, requested_at, extracted_at`

func scan(row pgx.Row) (*api.Extraction, error) {
	var e api.Extraction
	var extracted *time.Time
	err := row.Scan(&e.DocumentID, &e.ContentSHA256, &e.Status, &e.Format, &e.Kind, &e.Pages, &e.Language, &e.TextSize,
		&e.Truncated, &e.Thumbnail, &e.OCR, &e.DurationMs, &e.Reason, &e.Error, &e.Attempts, &e.RequestedAt.Time, &extracted)
	if err != nil {
		return nil, err
	}
	if extracted != nil {
		e.ExtractedAt = &api.Time{Time: *extracted}
	}
	return &e, nil
}

// Enqueue queues the extraction of document id's content sha, unless the
// row already holds that content (a repeat, a snapshot read, an update of
// the title): one statement, idempotent. status is pending, or skipped for
// plain text (recorded, so a client waiting for the extraction of any
// document sees an end). A document deleted meanwhile is no error.
func (s *Store) Enqueue(ctx context.Context, id, sha, format, status string) (queued bool, err error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO documents.extractions (document_id, content_sha256, status, format)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (document_id) DO UPDATE SET content_sha256 = EXCLUDED.content_sha256, status = EXCLUDED.status,
			format = EXCLUDED.format, kind = '', pages = 0, language = '', text_size = 0, truncated = false, thumbnail = false,
			ocr = false, duration_ms = 0, reason = '', error = '', attempts = 0, requested_at = now(), not_before = now(),
			claimed_at = NULL, extracted_at = NULL
		WHERE documents.extractions.content_sha256 <> EXCLUDED.content_sha256`, id, sha, status, format)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign key: the document is gone
		return false, nil
	}
	if err != nil {
		return false, postgres.Error(err, "enqueue extraction")
	}
	return tag.RowsAffected() > 0, nil
}

// Claim is one extraction a worker holds: the row's document, content and
// the attempt number that identifies this claim.
type Claim struct {
	DocumentID  string
	SHA256      string
	Format      string
	S3Key       string
	ContentType string
	Attempt     int
	// Since is the row's claimed_at as this claim last set it: the claim's
	// token. Only the holder's Renew, Finish and Retry match it, so a
	// worker whose row was taken over (its lease ran out, a re-run reset
	// it) changes nothing.
	Since time.Time
}

// Claim takes the oldest due pending extraction, or a running one whose
// lease ran out (its worker died), and marks it running. ok is false when
// there is none. Several workers and instances claim concurrently: SKIP
// LOCKED hands each row to one.
func (s *Store) Claim(ctx context.Context, lease time.Duration) (c Claim, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `UPDATE documents.extractions x SET status = 'running', claimed_at = now(), attempts = x.attempts + 1
		FROM documents.documents d
		WHERE x.document_id = (
			SELECT document_id FROM documents.extractions
			WHERE (status = 'pending' AND not_before <= now())
			   OR (status = 'running' AND claimed_at < now() - $1::interval)
			ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED)
		  AND d.id = x.document_id
		RETURNING x.document_id, x.content_sha256, x.format, coalesce(d.s3_key, ''), coalesce(d.content_type, ''), x.attempts, x.claimed_at`,
		lease.String()).Scan(&c.DocumentID, &c.SHA256, &c.Format, &c.S3Key, &c.ContentType, &c.Attempt, &c.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, postgres.Error(err, "claim extraction")
	}
	return c, true, nil
}

// Renew extends claim c's lease (the worker's heartbeat) and moves its
// token. held is false when the claim is no longer this worker's: the
// content was replaced, a re-run was asked for, or the lease ran out and
// another worker took the row.
func (s *Store) Renew(ctx context.Context, c *Claim) (held bool, err error) {
	err = s.pool.QueryRow(ctx, `UPDATE documents.extractions SET claimed_at = greatest(now(), claimed_at + interval '1 microsecond')
		WHERE document_id = $1 AND status = 'running' AND claimed_at = $2 AND content_sha256 = $3
		RETURNING claimed_at`, c.DocumentID, c.Since, c.SHA256).Scan(&c.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, postgres.Error(err, "renew extraction lease")
	}
	return true, nil
}

// Finish records the result of claim c. It changes nothing when the claim
// is no longer held (the content was replaced, a re-run was asked for, or
// the lease ran out and another worker took it): that worker's result is
// the one that counts.
func (s *Store) Finish(ctx context.Context, c Claim, status string, r extract.Result, took time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE documents.extractions SET status = $3, kind = $4, pages = $5, language = $6,
			text_size = $7, truncated = $8, thumbnail = $9, ocr = $10, duration_ms = $11, reason = $12, error = $13,
			extracted_at = now(), claimed_at = NULL
		WHERE document_id = $1 AND status = 'running' AND claimed_at = $2 AND content_sha256 = $14`,
		c.DocumentID, c.Since, status, r.Kind, r.Pages, r.Language, r.TextSize, r.Truncated, r.Thumbnail, r.OCR,
		took.Milliseconds(), r.Reason, truncate(r.Detail, 1000), c.SHA256)
	if err != nil {
		return false, postgres.Error(err, "record extraction")
	}
	return tag.RowsAffected() > 0, nil
}

// Retry puts claim c back as pending, due after wait, with the transient
// error that stopped it.
func (s *Store) Retry(ctx context.Context, c Claim, wait time.Duration, reason string, cause error) error {
	_, err := s.pool.Exec(ctx, `UPDATE documents.extractions SET status = 'pending', claimed_at = NULL,
			not_before = now() + $3::interval, reason = $5, error = $4
		WHERE document_id = $1 AND status = 'running' AND claimed_at = $2`,
		c.DocumentID, c.Since, wait.String(), truncate(cause.Error(), 1000), reason)
	return postgres.Error(err, "requeue extraction")
}

// Get returns document id's extraction and the WAL insert position read
// with it: at or past the commit of what was read, so a search with that
// min_lsn sees the indexer's handling of it.
func (s *Store) Get(ctx context.Context, id string) (*api.Extraction, uint64, error) {
	e, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM documents.extractions WHERE document_id = $1`, id))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, s.noExtraction(ctx, id)
		}
		return nil, 0, postgres.Error(err, "extraction")
	}
	return e, postgres.WALPosition(ctx, s.pool), nil
}

// noExtraction is the not-found error of id: the document's, or its
// extraction's.
func (s *Store) noExtraction(ctx context.Context, id string) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM documents.documents WHERE id = $1)`, id).Scan(&exists); err != nil {
		return postgres.Error(err, "document")
	}
	if !exists {
		return apperr.E(apperr.NotFound, "document not found")
	}
	return apperr.E(apperr.NotFound, "document %s has no extraction yet (no content, or the extractor has not seen it)", id)
}

// Rerun queues document id's extraction again, whatever its state, and
// returns the row as queued.
func (s *Store) Rerun(ctx context.Context, id, format string) (*api.Extraction, uint64, error) {
	e, err := scan(s.pool.QueryRow(ctx, `INSERT INTO documents.extractions (document_id, content_sha256, status, format)
		SELECT id, content_sha256, 'pending', $2 FROM documents.documents WHERE id = $1 AND content_sha256 IS NOT NULL
		ON CONFLICT (document_id) DO UPDATE SET content_sha256 = EXCLUDED.content_sha256, status = 'pending',
			format = EXCLUDED.format, attempts = 0, requested_at = now(), not_before = now(), claimed_at = NULL,
			reason = '', error = ''
		RETURNING `+columns, id, format))
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM documents.documents WHERE id = $1)`, id).Scan(&exists); err != nil {
			return nil, 0, postgres.Error(err, "document")
		}
		if !exists {
			return nil, 0, apperr.E(apperr.NotFound, "document not found")
		}
		return nil, 0, apperr.E(apperr.Conflict, "document %s has no content to extract", id)
	}
	if err != nil {
		return nil, 0, postgres.Error(err, "rerun extraction")
	}
	return e, postgres.WALPosition(ctx, s.pool), nil
}

// Exists reports whether document id exists.
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM documents.documents WHERE id = $1)`, id).Scan(&exists)
	return exists, postgres.Error(err, "document")
}

// Document is what the extractor needs of a document row.
type Document struct {
	ID, SHA256, ContentType, S3Key string
}

// Document reads id's content fields.
func (s *Store) Document(ctx context.Context, id string) (Document, error) {
	var d Document
	err := s.pool.QueryRow(ctx, `SELECT id::text, coalesce(content_sha256, ''), coalesce(content_type, ''), coalesce(s3_key, '')
		FROM documents.documents WHERE id = $1`, id).Scan(&d.ID, &d.SHA256, &d.ContentType, &d.S3Key)
	return d, postgres.Error(err, "document")
}

// RerunMany queues, in pages of documents, every document with content
// (all) or the failed and unsupported extractions (failed), calling
// formatOf for each document's format. It returns how many were queued.
func (s *Store) RerunMany(ctx context.Context, all, failed bool, formatOf func(contentType string) (format, status string)) (int64, error) {
	var n int64
	after := "00000000-0000-0000-0000-000000000000"
	for {
		q := `SELECT d.id::text, d.content_sha256, coalesce(d.content_type, '') FROM documents.documents d
			LEFT JOIN documents.extractions x ON x.document_id = d.id
			WHERE d.id > $1 AND d.content_sha256 IS NOT NULL AND `
		if all {
			q += `true`
		} else {
			q += `x.status IN ('failed', 'unsupported')`
		}
		rows, err := s.pool.Query(ctx, q+` ORDER BY d.id LIMIT 500`, after)
		if err != nil {
			return n, postgres.Error(err, "list documents")
		}
		type doc struct{ id, sha, ct string }
		docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (doc, error) {
			var d doc
			return d, r.Scan(&d.id, &d.sha, &d.ct)
		})
		if err != nil {
			return n, postgres.Error(err, "list documents")
		}
		if len(docs) == 0 {
			return n, nil
		}
		for _, d := range docs {
			format, status := formatOf(d.ct)
			_, err := s.pool.Exec(ctx, `INSERT INTO documents.extractions (document_id, content_sha256, status, format)
				VALUES ($1, $2, $3, $4)
				ON CONFLICT (document_id) DO UPDATE SET content_sha256 = EXCLUDED.content_sha256, status = EXCLUDED.status,
					format = EXCLUDED.format, attempts = 0, requested_at = now(), not_before = now(), claimed_at = NULL,
					reason = '', error = ''`, d.id, d.sha, status, format)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23503" {
				continue // deleted meanwhile
			}
			if err != nil {
				return n, postgres.Error(err, "rerun extraction")
			}
			n++
		}
		after = docs[len(docs)-1].id
	}
}

// Queue counts extractions by status.
func (s *Store) Queue(ctx context.Context) (api.ExtractionQueue, error) {
	q := api.ExtractionQueue{ByState: map[string]int64{}}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM documents.extractions GROUP BY status`)
	if err != nil {
		return q, postgres.Error(err, "extraction queue")
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return q, postgres.Error(err, "extraction queue")
		}
		q.ByState[st] = n
	}
	q.Pending, q.Running = q.ByState[api.ExtractionPending], q.ByState[api.ExtractionRunning]
	return q, postgres.Error(rows.Err(), "extraction queue")
}

// Ping checks the database (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Settled reports whether the extraction of document id's current content
// has ended (done, failed, unsupported, skipped; or the document has no
// content to extract), with the WAL insert position (postgres.WALPositionSQL)
// read in the same statement: at or past the commit of the row it saw, so a search with
// that min_lsn sees the indexer's handling of it. A row of older content
// (replaced since) is not settled. NotFound when the document does not
// exist.
func (s *Store) Settled(ctx context.Context, id string) (bool, uint64, error) {
	var docSHA, rowSHA, status *string
	var lsn string
	err := s.pool.QueryRow(ctx, `SELECT d.content_sha256, x.content_sha256, x.status, `+postgres.WALPositionSQL+`::text
		FROM documents.documents d LEFT JOIN documents.extractions x ON x.document_id = d.id
		WHERE d.id = $1`, id).Scan(&docSHA, &rowSHA, &status, &lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, apperr.E(apperr.NotFound, "document not found")
	}
	if err != nil {
		return false, 0, postgres.Error(err, "extraction")
	}
	switch {
	case docSHA == nil:
		return true, postgres.ParseLSN(lsn), nil
	case rowSHA == nil || status == nil || *rowSHA != *docSHA:
		return false, 0, nil
	}
	switch *status {
	case api.ExtractionPending, api.ExtractionRunning:
		return false, 0, nil
	}
	return true, postgres.ParseLSN(lsn), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
