package document

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
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
	created_by, created_at, updated_at, coalesce(version, 1), coalesce(content_sha256, ''), coalesce(owner, ''),
	coalesce(signing_status, '')`

func scan(row pgx.Row) (*Document, error) {
	var d Document
	err := row.Scan(&d.ID, &d.Title, &d.ContentType, &d.ContentSize, &d.S3Key, &d.Status,
		&d.CreatedBy, &d.CreatedAt.Time, &d.UpdatedAt.Time, &d.Version, &d.ContentSHA256, &d.Owner, &d.SigningStatus)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// recordColumns are columns, the readers and the access version, and the
// levels documents.shares grants to any of the keys in parameter $2 (empty
// when $2 is NULL or names no grantee).
const recordColumns = columns + `, readers, access_version,
	coalesce((SELECT array_agg(level) FROM documents.shares s WHERE s.document_id = d.id AND s.grantee = ANY($2::text[])), '{}')`

func scanRecord(row pgx.Row) (*Record, error) {
	var d Document
	var r Record
	var levels []string
	err := row.Scan(&d.ID, &d.Title, &d.ContentType, &d.ContentSize, &d.S3Key, &d.Status,
		&d.CreatedBy, &d.CreatedAt.Time, &d.UpdatedAt.Time, &d.Version, &d.ContentSHA256, &d.Owner, &d.SigningStatus,
		&r.Readers, &r.AccessVersion, &levels)
	if err != nil {
		return nil, err
	}
	r.Document = &d
	for _, l := range levels {
		r.Levels = append(r.Levels, auth.Level(l))
	}
	return &r, nil
}

// Insert stores a new row, its audit entry (document.created) and, when j
// is not nil, its content's journal entry, and returns the row with the
// WAL insert position after its commit. The statements go in one batch,
// which PostgreSQL runs as one implicit transaction (one CDC event: the
// audit and the journal are not captured): one round trip, as before the
// audit.
func (s *Store) Insert(ctx context.Context, d *Document, j *journalEntry) (*Document, uint64, error) {
	sql, args, err := createdEntry(ctx, d)
	if err != nil {
		return nil, 0, err
	}
	var out *Document
	b := &pgx.Batch{}
	insertSQL, insertArgs := insertStatement(d)
	b.Queue(insertSQL, insertArgs...).QueryRow(func(row pgx.Row) (err error) {
		out, err = scan(row)
		return err
	})
	b.Queue(sql, args...)
	if j != nil {
		b.Queue(insertJournalSQL, j.Key, j.SHA256, j.ContentType, j.Bytes)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, postgres.Error(err, "insert document")
	}
	return out, postgres.WALPosition(ctx, s.pool), nil
}

// createdEntry is the statement of a new document's first audit entry,
// with the content's hash: content is only ever uploaded with its
// document. Everything in it is known before the insert.
func createdEntry(ctx context.Context, d *Document) (string, []any, error) {
	return audit.First(audit.New(ctx, d.ID, audit.TypeCreated, map[string]any{"title": d.Title, "content_sha256": d.ContentSHA256,
		"content_size": d.ContentSize, "content_type": d.ContentType, "created_by": d.CreatedBy, "owner": d.Owner,
		"status": string(d.Status), "version": 1}))
}

// InsertOnce is Insert under an idempotency key, in one transaction with
// the key's record: when the key already answered the same request, it
// returns that answer's document and replayed true, and inserts nothing,
// not even j (see postgres.ClaimIdempotencyKey for the other outcomes).
func (s *Store) InsertOnce(ctx context.Context, d *Document, k postgres.IdempotencyKey, j *journalEntry) (out *Document, replayed bool, lsn uint64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		first, err := postgres.ClaimIdempotencyKey(ctx, tx, k)
		if err != nil {
			return err
		}
		if first != nil {
			replayed = true
			out = new(Document)
			if err := json.Unmarshal(first, out); err != nil {
				return apperr.Wrap(apperr.Internal, err, "internal error")
			}
			return nil
		}
		if out, err = insert(ctx, tx, d); err != nil {
			return err
		}
		if j != nil {
			if _, err := tx.Exec(ctx, insertJournalSQL, j.Key, j.SHA256, j.ContentType, j.Bytes); err != nil {
				return postgres.Error(err, "journal content of document "+d.ID)
			}
		}
		resp, err := json.Marshal(out)
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "internal error")
		}
		return postgres.SaveIdempotencyKey(ctx, tx, k, resp)
	})
	if err != nil {
		return nil, false, 0, postgres.Error(err, "insert document")
	}
	return out, replayed, postgres.WALPosition(ctx, s.pool), nil
}

// record appends the audit entry of a change by ctx's caller in the
// change's transaction.
func record(ctx context.Context, tx pgx.Tx, id, typ string, data map[string]any) error {
	return audit.Append(ctx, tx, audit.New(ctx, id, typ, data))
}

// insert inserts the row and its audit entry in tx.
func insert(ctx context.Context, tx pgx.Tx, d *Document) (*Document, error) {
	sql, args, err := createdEntry(ctx, d)
	if err != nil {
		return nil, err
	}
	q, qargs := insertStatement(d)
	out, err := scan(tx.QueryRow(ctx, q, qargs...))
	if err != nil {
		return nil, postgres.Error(err, "insert document")
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return nil, postgres.Error(err, "audit of document "+d.ID)
	}
	return out, nil
}

// insertStatement is the INSERT of d returning its columns.
func insertStatement(d *Document) (string, []any) {
	// The owner is the first reader; an anonymous document has none (in
	// required mode only admins see it).
	var owner *string
	if d.Owner != "" {
		owner = &d.Owner
	}
	return `INSERT INTO documents.documents
		(id, title, content_type, content_size, s3_key, status, created_by, content_sha256, owner, readers)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::varchar, array_remove(ARRAY[$9::text], NULL))
		RETURNING ` + columns,
		[]any{d.ID, d.Title, d.ContentType, d.ContentSize, d.S3Key, d.Status, d.CreatedBy, d.ContentSHA256, owner}
}

// FlushedLSN is the server's WAL flush position (postgres.WALFlushPosition):
// the local cache's idle watermark.
func (s *Store) FlushedLSN(ctx context.Context) (uint64, error) {
	return postgres.WALFlushPosition(ctx, s.pool)
}

// Get returns the row or a not_found error.
func (s *Store) Get(ctx context.Context, id string) (*Document, error) {
	d, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM documents.documents WHERE id = $1`, id))
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	return d, nil
}

// Record returns the row with its readers, its access version and the
// levels shares grant to keys (nil: none looked up), or a not_found error.
func (s *Store) Record(ctx context.Context, id string, keys []string) (*Record, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM documents.documents d WHERE id = $1`, id, keys))
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	return r, nil
}

// List returns a page in lq's order and the cursor of the next one.
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
		page.Next = cursorOf(lq.Sort, page.Documents[lq.Limit-1])
	}
	return page, nil
}

// guard decides, under the row lock, whether a change may go ahead.
type guard func(*Record) error

// Update applies in under a row lock: asks may (the caller's access,
// decided on the locked row and the shares of keys), checks If-Match and
// the transition, bumps the version, and returns the new row. A change
// that changes nothing returns the row as it is, without a new version (and
// without a CDC event).
func (s *Store) Update(ctx context.Context, id string, in UpdateInput, keys []string, may guard) (doc *Document, lsn uint64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanRecord(tx.QueryRow(ctx, `SELECT `+recordColumns+` FROM documents.documents d WHERE id = $1 FOR UPDATE`, id, keys))
		if err != nil {
			return postgres.Error(err, "document "+id)
		}
		if err := may(r); err != nil {
			return err
		}
		if !in.workflow {
			if err := outForSignature(ctx, tx, id, false); err != nil {
				return err
			}
		}
		cur := r.Document
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
		if err != nil {
			return postgres.Error(err, "update document "+id)
		}
		typ, data := audit.TypeUpdated, map[string]any{"version": doc.Version}
		if status != cur.Status {
			typ, data["from"], data["to"] = audit.TypeStatusChanged, string(cur.Status), string(status)
		}
		if title != cur.Title {
			data["title"], data["previous_title"] = title, cur.Title
		}
		return record(ctx, tx, id, typ, data)
	})
	if err != nil {
		// Begin and commit fail outside the function: a lost connection
		// there is as unavailable as in a statement.
		return nil, 0, postgres.Error(err, "update document "+id)
	}
	return doc, postgres.WALPosition(ctx, s.pool), nil
}

// Delete removes the row (signatures and shares cascade; its audit trail
// stays, ending with the deletion) and returns what it was, if may allows
// it on the locked row.
func (s *Store) Delete(ctx context.Context, id string, keys []string, may guard) (doc *Document, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanRecord(tx.QueryRow(ctx, `SELECT `+recordColumns+` FROM documents.documents d WHERE id = $1 FOR UPDATE`, id, keys))
		if err != nil {
			return postgres.Error(err, "document "+id)
		}
		if err := may(r); err != nil {
			return err
		}
		if err := outForSignature(ctx, tx, id, true); err != nil {
			return err
		}
		doc, err = deleteRow(ctx, tx, id)
		return err
	})
	return doc, err
}

func deleteRow(ctx context.Context, tx pgx.Tx, id string) (*Document, error) {
	d, err := scan(tx.QueryRow(ctx, `DELETE FROM documents.documents WHERE id = $1 RETURNING `+columns, id))
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	// A journal entry lives only as long as its document: left behind, the
	// flusher would find its blob removed and write it back from here.
	// Deleting it waits for a flusher holding it, so the blob is removed
	// (after this commits) only once no flusher writes or syncs it.
	if d.S3Key != "" {
		if _, err := tx.Exec(ctx, `DELETE FROM documents.content_journal WHERE key = $1`, d.S3Key); err != nil {
			return nil, postgres.Error(err, "journal of document "+id)
		}
	}
	err = record(ctx, tx, id, audit.TypeDeleted, map[string]any{"title": d.Title, "status": string(d.Status),
		"version": d.Version, "content_sha256": d.ContentSHA256})
	return d, err
}

// outForSignature refuses (409) a change of a document that an open
// signing request pins (schema signing, the signature service's), and with
// completed also a deletion of one whose request completed (its
// certificate and audit trail must outlive nothing they describe). It runs
// in the change's transaction after the document row is locked: the
// signature service creates a request under the same row lock, so a
// request and a change never pass each other.
func outForSignature(ctx context.Context, tx pgx.Tx, id string, completed bool) error {
	var rid, state string
	err := tx.QueryRow(ctx, `SELECT id::text, state FROM signing.signing_requests
		WHERE document_id = $1 AND (state IN ('draft', 'sent', 'in_progress') OR ($2 AND state = 'completed'))
		ORDER BY state = 'completed' LIMIT 1`, id, completed).Scan(&rid, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return postgres.Error(err, "signing requests of document "+id)
	}
	if state == "completed" {
		return apperr.E(apperr.Conflict, "document %s has a completed signing request (%s): it is kept with its certificate and audit trail", id, rid)
	}
	return apperr.E(apperr.Conflict, "document %s is out for signature (signing request %s is %s): cancel the request first", id, rid, state)
}

// deleteUnchecked is Delete when nothing is checked (open mode).
func (s *Store) deleteUnchecked(ctx context.Context, id string) (d *Document, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM documents.documents WHERE id = $1 FOR UPDATE`, id); err != nil {
			return postgres.Error(err, "document "+id)
		}
		if err := outForSignature(ctx, tx, id, true); err != nil {
			return err
		}
		d, err = deleteRow(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, postgres.Error(err, "delete document "+id)
	}
	return d, nil
}

// Downloaded records a full download of document id's content by ctx's
// caller (a transaction of its own: a read changes nothing else).
func (s *Store) Downloaded(ctx context.Context, d *Document) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return record(ctx, tx, d.ID, audit.TypeDownloaded, map[string]any{"content_sha256": d.ContentSHA256, "version": d.Version})
	})
	return postgres.Error(err, "audit download of document "+d.ID)
}

const shareColumns = `document_id::text, grantee, level, coalesce(created_by, ''), created_at`

func scanShare(row pgx.Row) (*api.Share, error) {
	var sh api.Share
	if err := row.Scan(&sh.DocumentID, &sh.Grantee, &sh.Level, &sh.CreatedBy, &sh.CreatedAt); err != nil {
		return nil, err
	}
	sh.CreatedAt = sh.CreatedAt.UTC()
	return &sh, nil
}

// AccessChange is where a document's access stands after a share change:
// the cache is invalidated up to (Version, AccessVersion), and LSN is the
// WAL position after the commit (read-your-writes for search).
type AccessChange struct {
	Version       int32
	AccessVersion int64
	LSN           uint64
}

// Shares lists a document's shares, oldest first, if may allows it.
func (s *Store) Shares(ctx context.Context, id string, keys []string, may guard) ([]*api.Share, error) {
	r, err := s.Record(ctx, id, keys)
	if err != nil {
		return nil, err
	}
	if err := may(r); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+shareColumns+` FROM documents.shares WHERE document_id = $1
		ORDER BY created_at, grantee`, id)
	if err != nil {
		return nil, postgres.Error(err, "list shares")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*api.Share, error) { return scanShare(row) })
	if out == nil {
		out = []*api.Share{}
	}
	return out, postgres.Error(err, "list shares")
}

// Share grants grantee level on document id (or changes the level it has)
// and recomputes the document's readers in the same transaction, so the
// change stream carries the readers in commit order with the document.
// may is asked on the locked row.
func (s *Store) Share(ctx context.Context, id, grantee string, level auth.Level, by string, keys []string, may guard) (sh *api.Share, ch AccessChange, err error) {
	err = s.changeAccess(ctx, id, keys, may, &ch, func(tx pgx.Tx) error {
		sh, err = scanShare(tx.QueryRow(ctx, `INSERT INTO documents.shares (document_id, grantee, level, created_by)
			VALUES ($1, $2, $3, nullif($4, ''))
			ON CONFLICT (document_id, grantee) DO UPDATE SET level = EXCLUDED.level, created_by = EXCLUDED.created_by, created_at = now()
			RETURNING `+shareColumns, id, grantee, string(level), by))
		if err != nil {
			return postgres.Error(err, "share document "+id)
		}
		return record(ctx, tx, id, audit.TypeShared, map[string]any{"grantee": grantee, "level": string(level)})
	})
	return sh, ch, err
}

// Unshare revokes grantee's share of document id and recomputes the
// readers in the same transaction. A grantee without a share is NotFound.
func (s *Store) Unshare(ctx context.Context, id, grantee string, keys []string, may guard) (ch AccessChange, err error) {
	err = s.changeAccess(ctx, id, keys, may, &ch, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM documents.shares WHERE document_id = $1 AND grantee = $2`, id, grantee)
		if err != nil {
			return postgres.Error(err, "unshare document "+id)
		}
		if tag.RowsAffected() == 0 {
			return apperr.E(apperr.NotFound, "document %s is not shared with %s", id, grantee)
		}
		return record(ctx, tx, id, audit.TypeUnshared, map[string]any{"grantee": grantee})
	})
	return ch, err
}

// changeAccess locks the document row, asks may, runs change, and
// rewrites readers (the owner and every grantee, sorted) when they
// differ, bumping access_version but neither version nor updated_at.
func (s *Store) changeAccess(ctx context.Context, id string, keys []string, may guard, ch *AccessChange, change func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanRecord(tx.QueryRow(ctx, `SELECT `+recordColumns+` FROM documents.documents d WHERE id = $1 FOR UPDATE`, id, keys))
		if err != nil {
			return postgres.Error(err, "document "+id)
		}
		if err := may(r); err != nil {
			return err
		}
		if err := change(tx); err != nil {
			return err
		}
		ch.Version, ch.AccessVersion = r.Version, r.AccessVersion
		err = tx.QueryRow(ctx, `
WITH n AS (
	SELECT ARRAY(
		SELECT k FROM (
			SELECT owner::text AS k FROM documents.documents WHERE id = $1 AND owner IS NOT NULL
			UNION SELECT grantee::text FROM documents.shares WHERE document_id = $1) u
		ORDER BY k) AS readers)
UPDATE documents.documents d SET readers = n.readers, access_version = d.access_version + 1
FROM n WHERE d.id = $1 AND d.readers IS DISTINCT FROM n.readers
RETURNING d.access_version`, id).Scan(&ch.AccessVersion)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // same readers (a level changed): nothing cached changes
		}
		return postgres.Error(err, "update readers of document "+id)
	})
	if err != nil {
		return err
	}
	ch.LSN = postgres.WALPosition(ctx, s.pool)
	return nil
}

// journalEntry is content kept in documents.content_journal until its
// blob is known durable (see Journal).
type journalEntry struct {
	Key, SHA256, ContentType string
	Bytes                    []byte // nil when read back without them
}

const insertJournalSQL = `INSERT INTO documents.content_journal (key, sha256, content_type, bytes) VALUES ($1, $2, $3, $4)`

// settleJournal takes up to limit journal entries that no
// other settler holds (with their bytes if withBytes), calls settle to make
// their blobs durable and deletes them, in one transaction; it returns how
// many it settled. When settle fails nothing is deleted. The entries stay
// locked while settle runs: a delete of their document waits, so its blob
// is not removed while settle rewrites or syncs it, and two instances never
// settle the same entry at once.
func (s *Store) settleJournal(ctx context.Context, limit int, withBytes bool, settle func([]journalEntry) error) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, sha256, content_type, CASE WHEN $2 THEN bytes END
			FROM documents.content_journal LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, withBytes)
		if err != nil {
			return postgres.Error(err, "content journal")
		}
		entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (journalEntry, error) {
			var e journalEntry
			err := row.Scan(&e.Key, &e.SHA256, &e.ContentType, &e.Bytes)
			return e, err
		})
		if err != nil {
			return postgres.Error(err, "content journal")
		}
		if len(entries) == 0 {
			return nil
		}
		if err := settle(entries); err != nil {
			return err
		}
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.Key
		}
		if _, err := tx.Exec(ctx, `DELETE FROM documents.content_journal WHERE key = ANY($1)`, keys); err != nil {
			return postgres.Error(err, "content journal")
		}
		n = len(entries)
		return nil
	})
	return n, err
}

// Ping checks the database (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Existing returns which of ids (canonical UUIDs) have a row: the blob
// sweeper's ownership check.
func (s *Store) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	return postgres.ExistingIDs(ctx, s.pool, "documents.documents", ids)
}
