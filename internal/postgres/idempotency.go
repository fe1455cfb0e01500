package postgres

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/apperr"
)

// IdempotencyTTL is how long an Idempotency-Key is remembered: a client's
// retries of one create happen within it; a key reused after it is a new
// request.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyKey is one create's key as stored: Scope (the route and the
// caller) and Key name it, Fingerprint is what the request asked for.
type IdempotencyKey struct {
	Scope, Key  string
	Fingerprint []byte
}

// ClaimIdempotencyKey is the first step of a keyed create, inside its
// transaction. It returns the first answer's body when the key was already
// used for the same request (the caller answers it and creates nothing),
// nil when the key is new or expired (the caller creates, then calls
// SaveIdempotencyKey in the same transaction). The key is held until the
// transaction ends: a concurrent request with the same key is refused with
// conflict (409) rather than waiting, and the same key with another
// request is validation (422), as the draft asks.
func ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k IdempotencyKey) ([]byte, error) {
	var got bool
	// A transaction-scoped advisory lock: safe through a transaction-mode
	// pooler, released by commit or rollback. Two keys sharing a hash only
	// make one of them wait for a retry.
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7))`, k.Scope+"\n"+k.Key).Scan(&got); err != nil {
		return nil, Error(err, "idempotency key")
	}
	if !got {
		return nil, apperr.E(apperr.Conflict, "a request with this Idempotency-Key is still in progress; retry once it has finished")
	}
	var fp, resp []byte
	err := tx.QueryRow(ctx, `SELECT fingerprint, response FROM idempotency.keys
		WHERE scope = $1 AND key = $2 AND expires_at > now()`, k.Scope, k.Key).Scan(&fp, &resp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, Error(err, "idempotency key")
	case !bytes.Equal(fp, k.Fingerprint):
		return nil, apperr.Fields(apperr.FieldError{Field: "Idempotency-Key",
			Message: "was already used with a different request; use a new key for a new request"})
	}
	return resp, nil
}

// SaveIdempotencyKey records the answer to a keyed create, in the create's
// transaction (after ClaimIdempotencyKey), replacing an expired record of
// the same key, and deletes a few expired records of any key so the table
// stays at about a day of keyed creates.
func SaveIdempotencyKey(ctx context.Context, tx pgx.Tx, k IdempotencyKey, response []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO idempotency.keys (scope, key, fingerprint, response, expires_at)
		VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))
		ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, response = EXCLUDED.response,
			created_at = now(), expires_at = EXCLUDED.expires_at`,
		k.Scope, k.Key, k.Fingerprint, string(response), IdempotencyTTL.Seconds())
	if err != nil {
		return Error(err, "idempotency key")
	}
	_, err = tx.Exec(ctx, `DELETE FROM idempotency.keys WHERE (scope, key) IN (
		SELECT scope, key FROM idempotency.keys WHERE expires_at <= now() LIMIT 10 FOR UPDATE SKIP LOCKED)`)
	return Error(err, "idempotency key")
}
