package apikey

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/postgres"
)

// Key is one row of auth.api_keys, without its hash.
type Key struct {
	ID         string
	Name       string
	Scopes     []auth.Scope
	CreatedBy  string // principal key; "" when created anonymously in dev
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Store is the PostgreSQL queries of API keys, nothing else.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns the store over pool (direct or through PgBouncer).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// errDuplicateID is an id collision on insert (64 random bits: the caller
// draws a new key and tries again).
var errDuplicateID = errors.New("apikey: duplicate id")

func (s *Store) insert(ctx context.Context, k Key, sum [32]byte) (Key, error) {
	var createdBy *string
	if k.CreatedBy != "" {
		createdBy = &k.CreatedBy
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO auth.api_keys (id, name, key_sha256, scopes, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING created_at`,
		k.ID, k.Name, sum[:], scopeStrings(k.Scopes), createdBy, k.ExpiresAt).Scan(&k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, errDuplicateID
	}
	return k, postgres.Error(err, "api key")
}

const columns = `id, name, scopes, COALESCE(created_by, ''), created_at, expires_at, last_used_at, revoked_at`

func scanKey(row pgx.Row, extra ...any) (Key, error) {
	var k Key
	var scopes []string
	dest := append([]any{&k.ID, &k.Name, &scopes, &k.CreatedBy, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return k, err
	}
	k.Scopes = make([]auth.Scope, 0, len(scopes))
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, auth.Scope(s))
	}
	return k, nil
}

// list returns every key, newest first, at most limit.
func (s *Store) list(ctx context.Context, limit int) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM auth.api_keys ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, postgres.Error(err, "api keys")
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	return keys, postgres.Error(err, "api keys")
}

// get returns the key id with its hash; apperr NotFound when there is none.
func (s *Store) get(ctx context.Context, id string) (Key, [32]byte, error) {
	var sum []byte
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+columns+`, key_sha256 FROM auth.api_keys WHERE id = $1`, id), &sum)
	var out [32]byte
	copy(out[:], sum)
	return k, out, postgres.Error(err, "api key "+id)
}

// revoke sets revoked_at unless it is set already (revoking twice keeps the
// first time) and returns the key; apperr NotFound when there is none.
func (s *Store) revoke(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `UPDATE auth.api_keys SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1 RETURNING `+columns, id))
	return k, postgres.Error(err, "api key "+id)
}

// touch sets last_used_at to now unless it was set less than every ago
// (by any instance): at most one row write per key and interval however
// many instances verify it.
func (s *Store) touch(ctx context.Context, id string, every time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE auth.api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))`, id, every.Seconds())
	return postgres.Error(err, "api key "+id)
}

func scopeStrings(scopes []auth.Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}
