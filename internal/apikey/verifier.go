package apikey

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
)

// maxTracked bounds the verifier's two in-process maps (cached rows and
// last-used writes). A flood of made-up key ids fills them with entries
// that are dropped again, never an unbounded map.
const maxTracked = 10000

// lookupTimeout bounds one PostgreSQL lookup of a key, which concurrent
// requests for the same key share (so it is not tied to one of them).
const lookupTimeout = 5 * time.Second

// Verifier checks API keys: auth.KeyVerifier over auth.api_keys. One per
// process, shared by every service's authenticator, so that a revocation
// through this process's REST API takes effect here at once; elsewhere
// within Config.CacheTTL. Safe for concurrent use.
type Verifier struct {
	store *Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	// lookups merges concurrent misses for one key into one query.
	lookups singleflight.Group

	mu      sync.Mutex
	cache   map[string]entry     // key id → row as last read
	touched map[string]time.Time // key id → when this process last wrote last_used_at
}

// entry is what PostgreSQL said about a key id at a moment: found or not,
// and if found the row and its hash. Unknown ids are cached too, so that
// retrying a made-up key does not query on every request.
type entry struct {
	found bool
	key   Key
	sum   [32]byte
	at    time.Time
}

// NewVerifier returns the verifier over store. cfg must be valid.
func NewVerifier(store *Store, cfg Config, log *slog.Logger) *Verifier {
	return &Verifier{store: store, cfg: cfg, log: log, now: time.Now,
		cache: map[string]entry{}, touched: map[string]time.Time{}}
}

var _ auth.KeyVerifier = (*Verifier)(nil)

// errInvalid is the answer for every key that does not match a row, so
// that the answer tells nothing about which part was wrong.
func errInvalid() error { return apperr.E(apperr.Unauthenticated, "invalid API key") }

// VerifyKey returns the principal raw acts as: KindAPIKey, Subject the key
// id, Name its name, Scopes its scopes (never nil: a key is always
// capped), Admin when the scopes include admin. A malformed, unknown,
// revoked or expired key is apperr Unauthenticated; PostgreSQL out of
// reach is Unavailable (a 503, not a 401 the client would take for a bad
// key). raw never reaches a log or an error message. A nil Verifier (a
// process without PostgreSQL) refuses every key.
func (v *Verifier) VerifyKey(ctx context.Context, raw string) (auth.Principal, error) {
	p, _, err := v.VerifyKeyExpiry(ctx, raw)
	return p, err
}

// VerifyKeyExpiry is VerifyKey that also returns when the key expires
// (zero: never), so that a WebSocket opened with it closes then
// (auth.KeyExpiryVerifier).
func (v *Verifier) VerifyKeyExpiry(ctx context.Context, raw string) (auth.Principal, time.Time, error) {
	if v == nil {
		return auth.Principal{}, time.Time{}, apperr.E(apperr.Unauthenticated, "API keys are not accepted by this service (it has no --database-url)")
	}
	id, ok := parse(raw)
	if !ok {
		return auth.Principal{}, time.Time{}, errInvalid()
	}
	sum := hash(raw)
	e, err := v.lookup(ctx, id)
	if err != nil {
		return auth.Principal{}, time.Time{}, err
	}
	// Constant time over the hashes: how long the comparison takes says
	// nothing about how many leading bytes matched. An unknown id
	// compares against zeros, which no SHA-256 is.
	if subtle.ConstantTimeCompare(sum[:], e.sum[:]) != 1 || !e.found {
		return auth.Principal{}, time.Time{}, errInvalid()
	}
	now := v.now()
	switch k := e.key; {
	case k.RevokedAt != nil:
		return auth.Principal{}, time.Time{}, apperr.E(apperr.Unauthenticated, "API key %s was revoked", id)
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return auth.Principal{}, time.Time{}, apperr.E(apperr.Unauthenticated, "API key %s expired", id)
	}
	v.touch(ctx, id, now)
	var exp time.Time
	if e.key.ExpiresAt != nil {
		exp = *e.key.ExpiresAt
	}
	return principal(e.key), exp, nil
}

// principal is the principal a key acts as.
func principal(k Key) auth.Principal {
	scopes := make([]auth.Scope, len(k.Scopes)) // non-nil even if empty: nil would mean "no cap"
	copy(scopes, k.Scopes)
	return auth.Principal{Kind: auth.KindAPIKey, Subject: k.ID, Name: k.Name, Scopes: scopes,
		Admin: slices.Contains(scopes, auth.ScopeAdmin)}
}

// lookup returns the row of id: from the cache while younger than
// CacheTTL, else from PostgreSQL.
func (v *Verifier) lookup(ctx context.Context, id string) (entry, error) {
	if v.cfg.CacheTTL > 0 {
		v.mu.Lock()
		e, ok := v.cache[id]
		v.mu.Unlock()
		if ok && v.now().Sub(e.at) < v.cfg.CacheTTL {
			return e, nil
		}
	}
	r, err, _ := v.lookups.Do(id, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		e := entry{at: v.now()}
		k, sum, err := v.store.get(ctx, id)
		switch {
		case err == nil:
			e.found, e.key, e.sum = true, k, sum
		case apperr.CodeOf(err) != apperr.NotFound:
			return entry{}, err
		}
		if v.cfg.CacheTTL > 0 {
			v.mu.Lock()
			v.cache[id] = e
			v.boundCache()
			v.mu.Unlock()
		}
		return e, nil
	})
	if err != nil {
		return entry{}, err
	}
	return r.(entry), nil
}

// boundCache keeps the cache under maxTracked: stale entries go first,
// then everything (each key then costs one query again). v.mu is held.
func (v *Verifier) boundCache() {
	if len(v.cache) <= maxTracked {
		return
	}
	now := v.now()
	for id, e := range v.cache {
		if now.Sub(e.at) >= v.cfg.CacheTTL {
			delete(v.cache, id)
		}
	}
	if len(v.cache) > maxTracked {
		clear(v.cache)
	}
}

// Forget drops what this process cached about id, so that a revocation
// made here is refused here from the next request on.
func (v *Verifier) Forget(id string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	delete(v.cache, id)
	v.mu.Unlock()
}

// touch writes last_used_at for id unless this process did less than
// TouchEvery ago (and the query itself skips the write if another
// instance did): one UPDATE per key and minute, not one per request. It
// runs on the request that wins the slot; a failure is logged, not
// returned: the key is valid whether or not its last use was recorded.
func (v *Verifier) touch(ctx context.Context, id string, now time.Time) {
	v.mu.Lock()
	if last, ok := v.touched[id]; ok && now.Sub(last) < v.cfg.TouchEvery {
		v.mu.Unlock()
		return
	}
	v.touched[id] = now
	if len(v.touched) > maxTracked {
		for k, at := range v.touched {
			if now.Sub(at) >= v.cfg.TouchEvery {
				delete(v.touched, k)
			}
		}
		if len(v.touched) > maxTracked {
			clear(v.touched)
		}
	}
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := v.store.touch(ctx, id, v.cfg.TouchEvery); err != nil {
		v.log.WarnContext(ctx, "api key: last-used time not recorded", "key_id", id, "err", err)
	}
}
