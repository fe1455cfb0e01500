package signature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/postgres"
)

// Store is the PostgreSQL side of signatures: queries and nothing else.
// Every method is one statement (one implicit transaction) except Insert
// and InsertOnce, whose signature and audit entry (and idempotency key)
// commit together in one explicit transaction holding only
// transaction-scoped locks, so the store works through PgBouncer in
// transaction mode.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping is a readiness probe.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// newRow is a signature to insert.
type newRow struct {
	ID            string
	DocumentID    string
	SignerEmail   string
	SignerName    string
	SignerSubject *string // the principal's key; nil without a credential
	SignatureData *string
	IPAddress     *string
	Key           *string
	ContentType   *string
	Size          *int64
	// DataSHA256 is the hex SHA-256 of the stored signature data (empty
	// without any): recorded in the audit entry, not in the row.
	DataSHA256 string
}

const selectColumns = `s.id::text, s.document_id::text, s.signer_email, s.signer_name, s.signed_at,
	s.signature_data, s.ip_address, s.document_version, s.content_sha256,
	s.signature_key, s.signature_content_type, s.signature_size,
	coalesce(u.state, 'applied'), coalesce(u.last_error, ''), s.signer_subject`

func scanSignature(row pgx.Row) (*Signature, error) {
	var sig Signature
	var state string
	err := row.Scan(&sig.ID, &sig.DocumentID, &sig.SignerEmail, &sig.SignerName, &sig.SignedAt,
		&sig.SignatureData, &sig.IPAddress, &sig.DocumentVersion, &sig.ContentSHA256,
		&sig.SignatureKey, &sig.SignatureContentType, &sig.SignatureSize,
		&state, &sig.DocumentStatusError, &sig.SignerSubject)
	if err != nil {
		return nil, err
	}
	sig.SignedAt = sig.SignedAt.UTC()
	sig.DocumentStatusUpdate = UpdateState(state)
	return &sig, nil
}

// Insert writes the signature and its pending status update in one
// statement, so neither exists without the other. The document's version
// and content hash are read by the same statement, so they describe the
// document as it was when the signature was committed. The outbox row
// becomes due for the reconciler after firstAttempt (the time the caller
// gives itself to apply the update directly). Returns a NotFound error if the
// document does not exist (any more).
//
// The signature's audit entry (signature.created: who, from where, the
// hash of the signature data and of the content signed) is appended in the
// same transaction.
func (s *Store) Insert(ctx context.Context, r newRow, firstAttempt time.Duration) (sig *Signature, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		sig, err = insertAudited(ctx, tx, r, firstAttempt)
		return err
	})
	if err != nil {
		return nil, postgres.Error(err, "document "+r.DocumentID)
	}
	return sig, nil
}

// InsertOnce is Insert under an idempotency key, in one transaction with
// the key's record: when the key already answered the same request, it
// returns that answer's signature and replayed true, and inserts nothing
// (see postgres.ClaimIdempotencyKey for the other outcomes).
func (s *Store) InsertOnce(ctx context.Context, r newRow, firstAttempt time.Duration, k postgres.IdempotencyKey) (sig *Signature, replayed bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		first, err := postgres.ClaimIdempotencyKey(ctx, tx, k)
		if err != nil {
			return err
		}
		if first != nil {
			replayed, sig = true, new(Signature)
			if err := json.Unmarshal(first, sig); err != nil {
				return apperr.Wrap(apperr.Internal, err, "internal error")
			}
			return nil
		}
		if sig, err = insertAudited(ctx, tx, r, firstAttempt); err != nil {
			return err
		}
		resp, err := json.Marshal(sig)
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "internal error")
		}
		return postgres.SaveIdempotencyKey(ctx, tx, k, resp)
	})
	if err != nil {
		return nil, false, postgres.Error(err, "document "+r.DocumentID)
	}
	return sig, replayed, nil
}

// insertAudited inserts the signature and appends its audit entry in tx,
// refusing a document out for signature first (refuseOpenRequest).
func insertAudited(ctx context.Context, tx pgx.Tx, r newRow, firstAttempt time.Duration) (*Signature, error) {
	if err := refuseOpenRequest(ctx, tx, r.DocumentID); err != nil {
		return nil, err
	}
	sig, err := insert(ctx, tx, r, firstAttempt)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"signature_id": sig.ID, "signer_email": sig.SignerEmail, "signer_name": sig.SignerName,
		"signature_data_sha256": r.DataSHA256, "content_sha256": deref(sig.ContentSHA256), "document_version": derefInt(sig.DocumentVersion)}
	e := audit.New(ctx, sig.DocumentID, audit.TypeSigned, data)
	if sig.IPAddress != nil {
		e.IP = *sig.IPAddress
	}
	return sig, audit.Append(ctx, tx, e)
}

// refuseOpenRequest answers 409 for a document with an open signing
// request: the one-signer shortcut does not mix with one (its signers sign
// through the invitations or POST /signing-requests/{rid}/sign). It locks
// the document row FOR SHARE first, in the transaction of the insert: the
// workflow opens a request holding that row FOR UPDATE, so either the
// request commits first and this lock waits for it and the next statement
// (a new snapshot) sees it, or this transaction commits first and the
// request waits for the signature. A request can never open between the
// check and the insert. Shortcut signatures do not wait for each other
// (FOR SHARE), and the row is taken before the audit head, in the order
// every writer takes them.
func refuseOpenRequest(ctx context.Context, tx pgx.Tx, documentID string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM documents.documents WHERE id = $1::uuid FOR SHARE`, documentID); err != nil {
		return postgres.Error(err, "document "+documentID)
	}
	var rid string
	err := tx.QueryRow(ctx, `SELECT id::text FROM signing.signing_requests
		WHERE document_id = $1::uuid AND state IN ('draft', 'sent', 'in_progress')`, documentID).Scan(&rid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return postgres.Error(err, "open signing request")
	}
	return apperr.E(apperr.Conflict, "document %s is out for signature (signing request %s): sign through the request's invitation or POST /signing-requests/%s/sign", documentID, rid, rid)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt[T int32 | int64 | int](n *T) T {
	if n == nil {
		return 0
	}
	return *n
}

func insert(ctx context.Context, tx pgx.Tx, r newRow, firstAttempt time.Duration) (*Signature, error) {
	row := tx.QueryRow(ctx, `
WITH doc AS (
	SELECT id, version, content_sha256 FROM documents.documents WHERE id = $2::uuid
), s AS (
	INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name, signed_at,
		signature_data, ip_address, document_version, content_sha256,
		signature_key, signature_content_type, signature_size, signer_subject)
	SELECT $1::uuid, doc.id, $3, $4, now(), $5, $6, doc.version, doc.content_sha256, $7, $8, $9, $11
	FROM doc
	RETURNING *
), u AS (
	INSERT INTO signatures.status_updates (signature_id, document_id, status, next_attempt_at)
	SELECT s.id, s.document_id, 'signed', now() + make_interval(secs => $10::float8) FROM s
	RETURNING signature_id, state, last_error
)
SELECT `+selectColumns+` FROM s LEFT JOIN u ON u.signature_id = s.id`,
		r.ID, r.DocumentID, r.SignerEmail, r.SignerName, r.SignatureData, r.IPAddress,
		r.Key, r.ContentType, r.Size, firstAttempt.Seconds(), r.SignerSubject)
	sig, err := scanSignature(row)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		// The document was deleted between the read and the insert.
		err = pgx.ErrNoRows
	}
	if err != nil {
		// No row: the document does not exist (any more).
		return nil, postgres.Error(err, "document "+r.DocumentID)
	}
	return sig, nil
}

// visibleTo is the condition keeping signatures of documents whose readers
// hold one of the keys in parameter $n.
func visibleTo(n int) string {
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM documents.documents d WHERE d.id = s.document_id AND d.readers && $%d::text[])`, n)
}

// Get returns one signature, or a NotFound error. With readers (required
// mode), only a signature of a document whose readers hold one of them.
func (s *Store) Get(ctx context.Context, id string, readers *[]string) (*Signature, error) {
	where, args := `s.id = $1::uuid`, []any{id}
	if readers != nil {
		where, args = where+` AND `+visibleTo(2), append(args, *readers)
	}
	row := s.pool.QueryRow(ctx, `SELECT `+selectColumns+`
		FROM signatures.signatures s LEFT JOIN signatures.status_updates u ON u.signature_id = s.id
		WHERE `+where, args...)
	sig, err := scanSignature(row)
	if err != nil {
		return nil, postgres.Error(err, "signature "+id)
	}
	return sig, nil
}

// List returns signatures newest first, skipping skip and returning at most
// limit. With readers (required mode), only signatures of documents whose
// readers hold one of them.
func (s *Store) List(ctx context.Context, skip, limit int, readers *[]string) ([]*Signature, error) {
	where, args := "", []any{skip, limit}
	if readers != nil {
		where, args = `WHERE `+visibleTo(3), append(args, *readers)
	}
	return s.list(ctx, `SELECT `+selectColumns+`
		FROM signatures.signatures s LEFT JOIN signatures.status_updates u ON u.signature_id = s.id
		`+where+` ORDER BY s.signed_at DESC, s.id DESC OFFSET $1 LIMIT $2`, args...)
}

// Visible reports whether document id exists and its readers hold one of
// readers.
func (s *Store) Visible(ctx context.Context, documentID string, readers []string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM documents.documents WHERE id = $1::uuid AND readers && $2::text[])`,
		documentID, readers).Scan(&ok)
	return ok, postgres.Error(err, "document "+documentID)
}

// DocumentAccess is what the database says of a document when the
// document service cannot be asked: its status, and what an access
// decision needs (document.Decide).
type DocumentAccess struct {
	Status  string
	Owner   string
	Readers []string
	// Levels are those the shares of the keys asked about grant.
	Levels []auth.Level
}

// ListByDocument returns a document's signatures in signing order (an empty
// slice when there are none).
func (s *Store) ListByDocument(ctx context.Context, documentID string) ([]*Signature, error) {
	return s.list(ctx, `SELECT `+selectColumns+`
		FROM signatures.signatures s LEFT JOIN signatures.status_updates u ON u.signature_id = s.id
		WHERE s.document_id = $1::uuid ORDER BY s.signed_at, s.id`, documentID)
}

func (s *Store) list(ctx context.Context, sql string, args ...any) ([]*Signature, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, postgres.Error(err, "list signatures")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Signature, error) { return scanSignature(row) })
	if err != nil {
		return nil, postgres.Error(err, "list signatures")
	}
	if out == nil {
		out = []*Signature{}
	}
	return out, nil
}

// DocumentAccess reads a document's status, owner, readers and the levels
// the shares of keys grant, straight from the shared system of record. It
// is the fallback for the document check when the document service cannot
// be reached; found is false when there is no such document.
func (s *Store) DocumentAccess(ctx context.Context, documentID string, keys []string) (da DocumentAccess, found bool, err error) {
	var levels []string
	err = s.pool.QueryRow(ctx, `SELECT status, coalesce(owner, ''), readers,
		coalesce((SELECT array_agg(level) FROM documents.shares sh WHERE sh.document_id = d.id AND sh.grantee = ANY($2::text[])), '{}')
		FROM documents.documents d WHERE id = $1::uuid`, documentID, keys).Scan(&da.Status, &da.Owner, &da.Readers, &levels)
	if errors.Is(err, pgx.ErrNoRows) {
		return da, false, nil
	}
	if err != nil {
		return da, false, postgres.Error(err, "read document")
	}
	for _, l := range levels {
		da.Levels = append(da.Levels, auth.Level(l))
	}
	return da, true, nil
}

// pendingUpdate is one outbox row claimed for an attempt.
type pendingUpdate struct {
	SignatureID string
	DocumentID  string
	Status      string
	Attempts    int
}

// Claim leases up to n due pending updates for lease: they are not due again
// until the lease ends, so other reconcilers (SKIP LOCKED) and later polls
// leave them alone while this one works on them, and a reconciler that dies
// mid-attempt only delays them by the lease.
func (s *Store) Claim(ctx context.Context, n int, lease time.Duration) ([]pendingUpdate, error) {
	rows, err := s.pool.Query(ctx, `
UPDATE signatures.status_updates u
SET attempts = u.attempts + 1,
	next_attempt_at = now() + make_interval(secs => $2::float8),
	updated_at = now()
WHERE u.signature_id IN (
	SELECT signature_id FROM signatures.status_updates
	WHERE state = 'pending' AND next_attempt_at <= now()
	ORDER BY next_attempt_at
	LIMIT $1
	FOR UPDATE SKIP LOCKED)
RETURNING u.signature_id::text, u.document_id::text, u.status, u.attempts`, n, lease.Seconds())
	if err != nil {
		return nil, postgres.Error(err, "claim status updates")
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pendingUpdate])
	if err != nil {
		return nil, postgres.Error(err, "claim status updates")
	}
	return out, nil
}

// Applied removes a status update the document service accepted.
func (s *Store) Applied(ctx context.Context, signatureID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM signatures.status_updates WHERE signature_id = $1::uuid`, signatureID)
	return postgres.Error(err, "mark status update applied")
}

// Retry makes a pending status update due again after delay, recording why
// the last attempt failed.
func (s *Store) Retry(ctx context.Context, signatureID string, delay time.Duration, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE signatures.status_updates
		SET next_attempt_at = now() + make_interval(secs => $2::float8), last_error = $3, updated_at = now()
		WHERE signature_id = $1::uuid AND state = 'pending'`, signatureID, delay.Seconds(), reason)
	return postgres.Error(err, "reschedule status update")
}

// Failed parks a status update the document service refused for good.
func (s *Store) Failed(ctx context.Context, signatureID, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE signatures.status_updates
		SET state = 'failed', last_error = $2, updated_at = now()
		WHERE signature_id = $1::uuid`, signatureID, reason)
	return postgres.Error(err, "mark status update failed")
}

// Pending counts status updates still to apply (for the metrics gauge).
func (s *Store) Pending(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM signatures.status_updates WHERE state = 'pending'`).Scan(&n)
	return n, postgres.Error(err, "count pending status updates")
}

// Existing returns which of ids (canonical UUIDs) have a signature row:
// the blob sweeper's ownership check (a signature's object is keyed by its
// id; rows removed by the document's cascade leave their objects to it).
func (s *Store) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	return postgres.ExistingIDs(ctx, s.pool, "signatures.signatures", ids)
}
