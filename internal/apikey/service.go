package apikey

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
)

// Limits of a key's fields.
const (
	MaxNameLen   = 100
	MinExpiresIn = time.Minute
	MaxExpiresIn = 10 * 365 * 24 * time.Hour
	// MaxList is the most keys GET /apikeys returns (newest first): keys
	// are made by hand, by admins, so this is far above any real count.
	MaxList = 1000
)

// Service is the use cases of API keys: create, list, revoke. Each needs
// an admin principal (auth.Principal.MayAdminister) outside
// `docstream dev`, whatever the auth mode.
type Service struct {
	store *Store
	keys  *Verifier // forgets a key this process revokes
	cfg   Config
	log   *slog.Logger
}

// NewService returns the use cases over store; keys is this process's
// verifier.
func NewService(store *Store, keys *Verifier, cfg Config, log *slog.Logger) *Service {
	return &Service{store: store, keys: keys, cfg: cfg, log: log}
}

// CreateInput is a new key's description.
type CreateInput struct {
	Name      string
	Scopes    []string
	ExpiresIn string
}

// authorize lets ctx's principal manage keys: anyone in `docstream dev`
// in open mode, an admin elsewhere. Without a credential it is 401 (send one), with a credential
// that is not an admin's 403.
func (s *Service) authorize(ctx context.Context) error {
	if s.cfg.AdminOpen {
		return nil
	}
	switch p := auth.FromContext(ctx); {
	case p.IsAnonymous():
		return apperr.E(apperr.Unauthenticated, "managing API keys needs an admin's credential")
	case !p.MayAdminister():
		return apperr.E(apperr.Forbidden, "managing API keys needs an admin (an API key needs the admin scope)")
	}
	return nil
}

// Create makes a key and returns it with the key itself, which is not
// stored and cannot be shown again.
func (s *Service) Create(ctx context.Context, in CreateInput) (Key, string, error) {
	if err := s.authorize(ctx); err != nil {
		return Key{}, "", err
	}
	k, expiresIn, err := in.validate()
	if err != nil {
		return Key{}, "", err
	}
	k.CreatedBy = auth.FromContext(ctx).Key()
	if expiresIn > 0 {
		at := time.Now().Add(expiresIn).UTC()
		k.ExpiresAt = &at
	}
	// 64 random bits of id collide about never; a collision draws again.
	for range 3 {
		raw, id, sum := newKey()
		k.ID = id
		created, err := s.store.insert(ctx, k, sum)
		if errors.Is(err, errDuplicateID) {
			continue
		}
		if err != nil {
			return Key{}, "", err
		}
		s.log.InfoContext(ctx, "api key created", "key_id", id, "name", k.Name, "scopes", k.Scopes, "by", k.CreatedBy)
		return created, raw, nil
	}
	return Key{}, "", apperr.E(apperr.Internal, "could not draw an unused key id")
}

// List returns every key, newest first (at most MaxList), revoked ones
// included.
func (s *Service) List(ctx context.Context) ([]Key, error) {
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	return s.store.list(ctx, MaxList)
}

// Revoke stops key id from working: at once on this process, within
// Config.CacheTTL on every other. Revoking a revoked key succeeds and
// keeps the first revocation time (idempotent, so a retried DELETE is not
// an error). An unknown id is apperr NotFound, a malformed one Invalid.
func (s *Service) Revoke(ctx context.Context, id string) (Key, error) {
	if err := s.authorize(ctx); err != nil {
		return Key{}, err
	}
	if !ValidID(id) {
		// Not echoed: a key pasted in place of its id would show its secret.
		return Key{}, apperr.E(apperr.Invalid, "malformed api key id: want 16 lower-case hex digits")
	}
	k, err := s.store.revoke(ctx, id)
	if err != nil {
		return Key{}, err
	}
	s.keys.Forget(id)
	s.log.InfoContext(ctx, "api key revoked", "key_id", id, "by", auth.FromContext(ctx).Key())
	return k, nil
}

// validate checks every field, naming each wrong one.
func (in CreateInput) validate() (Key, time.Duration, error) {
	var fields []apperr.FieldError
	k := Key{Name: strings.TrimSpace(in.Name)}
	switch {
	case k.Name == "":
		fields = append(fields, apperr.FieldError{Field: "name", Message: "is required"})
	case utf8.RuneCountInString(k.Name) > MaxNameLen:
		fields = append(fields, apperr.FieldError{Field: "name", Message: "must be at most " + strconv.Itoa(MaxNameLen) + " characters"})
	case strings.ContainsFunc(k.Name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }):
		fields = append(fields, apperr.FieldError{Field: "name", Message: "must not contain control characters"})
	}
	if len(in.Scopes) == 0 {
		fields = append(fields, apperr.FieldError{Field: "scopes", Message: "needs at least one of read, write, sign, admin"})
	}
	for _, name := range in.Scopes {
		sc, err := auth.ParseScope(name)
		if err != nil {
			fields = append(fields, apperr.FieldError{Field: "scopes", Message: "unknown scope " + strconv.Quote(clip(name)) + ": want read, write, sign or admin"})
			break
		}
		if !slices.Contains(k.Scopes, sc) {
			k.Scopes = append(k.Scopes, sc)
		}
	}
	// Shown in the canonical order whatever order they were sent in.
	slices.SortFunc(k.Scopes, func(a, b auth.Scope) int { return slices.Index(auth.Scopes, a) - slices.Index(auth.Scopes, b) })
	var expiresIn time.Duration
	if in.ExpiresIn != "" {
		d, err := parseLifetime(in.ExpiresIn)
		switch {
		case err != nil:
			fields = append(fields, apperr.FieldError{Field: "expires_in", Message: `must be a duration such as "720h" or a number of days such as "90d"`})
		case d < MinExpiresIn || d > MaxExpiresIn:
			fields = append(fields, apperr.FieldError{Field: "expires_in", Message: "must be between 1m and 3650d"})
		default:
			expiresIn = d
		}
	}
	return k, expiresIn, apperr.Fields(fields...)
}

// parseLifetime reads a Go duration or a whole number of days ("90d").
func parseLifetime(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, errors.New("bad number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// clip keeps a hostile value short in an error message.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	return strings.ToValidUTF8(s[:40], "") + "…"
}
