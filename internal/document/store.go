package document

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/postgres"
)

// Store is the PostgreSQL side of documents: the queries, and in Update the
// checks that must hold under the row lock (If-Match and the status
// transition), so that two writers cannot both pass them.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const columns = `id, title, coalesce(content_type, ''), coalesce(content_size, 0), coalesce(s3_key, ''), status,
	created_by, created_at, updated_at, coalesce(version, 1), coalesce(content_sha256, '')`

func scan(row pgx.Row) (*Document, error) {
	var d Document
	err := row.Scan(&d.ID, &d.Title, &d.ContentType, &d.ContentSize, &d.S3Key, &d.Status,
		&d.CreatedBy, &d.CreatedAt.Time, &d.UpdatedAt.Time, &d.Version, &d.ContentSHA256)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Insert stores a new row in one statement (one transaction, one CDC event)
// and returns it with the WAL insert position after its commit.
func (s *Store) Insert(ctx context.Context, d *Document) (*Document, uint64, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO documents.documents
		(id, title, content_type, content_size, s3_key, status, created_by, content_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+columns,
		d.ID, d.Title, d.ContentType, d.ContentSize, d.S3Key, d.Status, d.CreatedBy, d.ContentSHA256)
	out, err := scan(row)
	if err != nil {
		return nil, 0, postgres.Error(err, "insert document")
	}
	return out, s.walPosition(ctx), nil
}

// walPosition returns the current WAL insert LSN: after our commit returned,
// it is at or beyond our commit record, so "applied up to it" implies our
// change is applied. 0 if it cannot be read (read-your-writes then just
// does not wait).
func (s *Store) walPosition(ctx context.Context) uint64 {
	var lsn string
	if err := s.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return 0
	}
	return parseLSN(lsn)
}

// parseLSN turns "16/B374D848" into its 64-bit value.
func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	var h, l uint64
	if _, err := fmt.Sscanf(hi+" "+lo, "%x %x", &h, &l); err != nil {
		return 0
	}
	return h<<32 | l
}

// Get returns the row or a not_found error.
func (s *Store) Get(ctx context.Context, id string) (*Document, error) {
	d, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM documents.documents WHERE id = $1`, id))
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	return d, nil
}

// List returns a page, newest first, and the cursor of the next one.
func (s *Store) List(ctx context.Context, lq ListQuery) (*Page, error) {
	sql, args := listSQL(lq)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, postgres.Error(err, "list documents")
	}
	defer rows.Close()
	page := &Page{Documents: []*Document{}}
	for rows.Next() {
		d, err := scan(rows)
		if err != nil {
			return nil, postgres.Error(err, "list documents")
		}
		page.Documents = append(page.Documents, d)
	}
	if err := rows.Err(); err != nil {
		return nil, postgres.Error(err, "list documents")
	}
	if len(page.Documents) > lq.Limit {
		page.Documents = page.Documents[:lq.Limit]
		page.Next = cursorOf(page.Documents[lq.Limit-1])
	}
	return page, nil
}

// Update applies in under a row lock: checks If-Match and the transition,
// bumps the version, and returns the new row. A change that changes nothing
// returns the row as it is, without a new version (and without a CDC event).
func (s *Store) Update(ctx context.Context, id string, in UpdateInput) (doc *Document, lsn uint64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM documents.documents WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return postgres.Error(err, "document "+id)
		}
		if in.IfMatch != nil && *in.IfMatch != cur.Version {
			return apperr.E(apperr.PreconditionFailed, "document %s is at version %d, not %d", id, cur.Version, *in.IfMatch)
		}
		title, status := cur.Title, cur.Status
		if in.Title != nil {
			title = *in.Title
		}
		if in.Status != nil {
			status = Status(*in.Status)
			if !CanTransition(cur.Status, status) {
				return transitionError(cur.Status, status)
			}
		}
		if title == cur.Title && status == cur.Status {
			doc = cur
			return nil
		}
		doc, err = scan(tx.QueryRow(ctx, `UPDATE documents.documents
			SET title = $2, status = $3, version = coalesce(version, 1) + 1
			WHERE id = $1 RETURNING `+columns, id, title, status))
		return postgres.Error(err, "update document "+id)
	})
	if err != nil {
		return nil, 0, err
	}
	return doc, s.walPosition(ctx), nil
}

// Delete removes the row (signatures cascade) and returns what it was.
func (s *Store) Delete(ctx context.Context, id string) (*Document, error) {
	d, err := scan(s.pool.QueryRow(ctx, `DELETE FROM documents.documents WHERE id = $1 RETURNING `+columns, id))
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	return d, nil
}

// Ping checks the database (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Existing returns which of ids (canonical UUIDs) have a row: the blob
// sweeper's ownership check.
func (s *Store) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	return postgres.ExistingIDs(ctx, s.pool, "documents.documents", ids)
}
