package auth

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/docstream/docstream/apperr"
)

// asymmetricMethods are the JWS algorithms accepted for keys from a JWKS.
var asymmetricMethods = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// jwksFetchTimeout bounds one fetch of the JWKS, the first one at start-up
// included: an identity provider that accepts the connection and never
// answers delays start by this much, then the process runs without its
// keys (tokens it signed are refused with 401, and the failure is logged)
// until a token's unknown kid or the periodic refresh fetches them.
const jwksFetchTimeout = 10 * time.Second

// maxSubjectLen bounds a subject: the principal key ("user:" + subject) is
// stored in columns of 300 characters.
const maxSubjectLen = 255

// Authenticator turns a credential (a JWT, an API key, a service
// credential) into a Principal. One serves every service of a process; it
// is safe for concurrent use.
type Authenticator struct {
	cfg       Config
	mode      Mode
	secret    []byte
	svcKey    []byte
	jwks      keyfunc.Keyfunc
	parser    *jwt.Parser
	svcParser *jwt.Parser
	keys      KeyVerifier
	cache     *tokenCache
	admins    map[string]bool // subjects
	adminGrps map[string]bool
	log       *slog.Logger

	svcMu    sync.Mutex
	svcCreds map[string]serviceCred // name → last minted credential
}

// errUnauthenticated is what every refused credential gets: the client
// learns nothing about why.
var errUnauthenticated = apperr.E(apperr.Unauthenticated, "a valid bearer token is required")

// refused wraps the reason a credential was refused as the hidden cause.
func refused(err error) error {
	return apperr.Wrap(apperr.Unauthenticated, err, "%s", errUnauthenticated.Message)
}

// New builds the Authenticator of cfg. keys verifies API keys (nil: API
// keys are refused). With a JWKS URL it fetches the keys in the
// background until ctx is done. In required mode it refuses to start with
// nothing to verify a caller with.
func New(ctx context.Context, cfg Config, keys KeyVerifier) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	mode := cfg.ModeOf()
	if mode == ModeRequired && cfg.JWTSecret == "" && cfg.JWKSURL == "" && keys == nil {
		return nil, errors.New("auth: --auth-mode=required but nothing can verify a caller: set --auth-jwt-secret (AUTH_JWT_SECRET) or --auth-jwks-url (AUTH_JWKS_URL), or run with --auth-mode=open")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, mode: mode, secret: []byte(cfg.JWTSecret), keys: keys, log: cfg.Log,
		admins: set(splitList(cfg.AdminSubjects)), adminGrps: set(splitList(cfg.AdminGroups)), svcCreds: map[string]serviceCred{}}
	if cfg.CacheSize > 0 {
		a.cache = newTokenCache(cfg.CacheSize)
	}
	switch {
	case cfg.ServiceSecret != "":
		a.svcKey = []byte(cfg.ServiceSecret)
	case cfg.JWTSecret != "":
		// A key of its own, so that no user token (signed with the JWT
		// secret) is ever a service credential, nor the reverse.
		m := hmac.New(sha256.New, []byte(cfg.JWTSecret))
		m.Write([]byte("docstream service credential v1"))
		a.svcKey = m.Sum(nil)
	}
	// Only the algorithms we hold keys for are valid: this is what refuses
	// alg "none" and a token that names an algorithm of the other family
	// (e.g. HS256 signed with an RSA public key taken from the JWKS).
	var methods []string
	if len(a.secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		fetchTimeout := cfg.jwksFetchTimeout
		if fetchTimeout <= 0 {
			fetchTimeout = jwksFetchTimeout
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: fetchTimeout}
		}
		log := cfg.Log
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:          client,
			RefreshInterval: cfg.JWKSRefresh,
			// An unknown kid refetches the set at most once per interval.
			// The wait bound is also the refetch's deadline, so it must
			// cover an HTTP fetch; a token that would wait longer for the
			// limiter is refused at once (rate.Limiter.Wait knows the wait
			// up front), so a flood of made-up kids holds no goroutines.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSUnknownKID), 1),
			RateLimitWaitMax:  fetchTimeout,
			// Each fetch's deadline, whatever the client's own timeout:
			// start-up waits for the first fetch at most this long and
			// then goes on without the keys (NoErrorReturnFirstHTTPReq,
			// keyfunc's default), logging why.
			HTTPTimeout: fetchTimeout,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					log.WarnContext(ctx, "jwks refresh failed", "url", u, "err", err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("auth: jwks %s: %w", cfg.JWKSURL, err)
		}
		a.jwks = k
		methods = append(methods, asymmetricMethods...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	a.svcParser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(cfg.Leeway), jwt.WithIssuer(serviceIssuer))
	return a, nil
}

// Mode is the deployment's mode.
func (a *Authenticator) Mode() Mode {
	if a == nil {
		return ModeOpen
	}
	return a.mode
}

// Dev reports whether this is `docstream dev` (the development issuer is
// mounted; admin-only operations are open in open mode).
func (a *Authenticator) Dev() bool { return a != nil && a.cfg.Dev }

// AdminOpen reports whether an admin-only operation is open to every
// caller: only in `docstream dev` in open mode.
func (a *Authenticator) AdminOpen() bool { return a.Dev() && a.Mode() == ModeOpen }

// Authenticate verifies a raw bearer credential (a JWT, an API key or a
// service credential) and returns the principal it names. Any failure is
// an apperr Unauthenticated error that says nothing about why.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, error) {
	p, _, err := a.verify(ctx, raw)
	return p, err
}

// verify is Authenticate that also returns when the credential expires
// (zero: it does not, or it is not known here, as for an API key whose
// verifier is not a KeyExpiryVerifier).
func (a *Authenticator) verify(ctx context.Context, raw string) (Principal, time.Time, error) {
	switch {
	case raw == "":
		return Principal{}, time.Time{}, errUnauthenticated
	case IsAPIKey(raw):
		if a.keys == nil {
			return Principal{}, time.Time{}, refused(errors.New("api keys are not accepted"))
		}
		// Not cached here: a revoked key must stop working at once; the
		// verifier keeps its own cache if it wants one. Its errors pass
		// as they are (a store that is down is 503, not 401).
		var (
			p   Principal
			exp time.Time
			err error
		)
		if kv, ok := a.keys.(KeyExpiryVerifier); ok {
			p, exp, err = kv.VerifyKeyExpiry(ctx, raw)
		} else {
			p, err = a.keys.VerifyKey(ctx, raw)
		}
		if err != nil {
			return Principal{}, time.Time{}, err
		}
		p.Kind = KindAPIKey
		return p, exp, nil
	}
	var sum [sha256.Size]byte
	if a.cache != nil {
		sum = sha256.Sum256([]byte(raw))
		if p, exp, ok := a.cache.get(sum, time.Now()); ok {
			return p, exp, nil
		}
	}
	var p Principal
	var exp time.Time
	var err error
	if IsServiceCredential(raw) {
		p, exp, err = a.verifyService(raw)
	} else {
		p, exp, err = a.verifyJWT(ctx, raw)
	}
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	if a.cache != nil {
		a.cache.put(sum, p, exp)
	}
	return p, exp, nil
}

// verifyJWT checks a JWT: signature with a key of the algorithm's own
// family, exp (required), nbf, iat, and iss/aud when configured; then maps
// its claims to a user principal.
func (a *Authenticator) verifyJWT(ctx context.Context, raw string) (Principal, time.Time, error) {
	var c tokenClaims
	_, err := a.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			if len(a.secret) == 0 {
				return nil, errors.New("hmac tokens are not accepted")
			}
			return a.secret, nil
		case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS, *jwt.SigningMethodECDSA, *jwt.SigningMethodEd25519:
			if a.jwks == nil {
				return nil, errors.New("asymmetric tokens are not accepted")
			}
			// keyfunc returns the JWK's key as is; the jwt method then
			// refuses a key of the wrong type (an "oct" key for RS256).
			return a.jwks.KeyfuncCtx(ctx)(t)
		default:
			return nil, fmt.Errorf("algorithm %v is not accepted", t.Header["alg"])
		}
	})
	if err != nil {
		return Principal{}, time.Time{}, refused(err)
	}
	p, err := a.principal(&c)
	if err != nil {
		return Principal{}, time.Time{}, refused(err)
	}
	return p, c.ExpiresAt.Time, nil
}

// principal maps verified claims to a user principal.
func (a *Authenticator) principal(c *tokenClaims) (Principal, error) {
	sub := claimString(c.all, a.cfg.ClaimSubject)
	if sub == "" {
		sub = claimString(c.all, "user_id") // the reference's tokens
	}
	if sub == "" {
		return Principal{}, errors.New("the token names no subject")
	}
	if len(sub) > maxSubjectLen {
		return Principal{}, fmt.Errorf("subject longer than %d bytes", maxSubjectLen)
	}
	p := Principal{
		Kind:    KindUser,
		Subject: sub,
		Email:   claimString(c.all, a.cfg.ClaimEmail),
		Name:    claimString(c.all, a.cfg.ClaimName),
		Groups:  claimStrings(c.all, a.cfg.ClaimGroups),
	}
	if p.Email != "" {
		switch v, ok := claimBool(c.all, a.cfg.ClaimEmailVerified); {
		case ok:
			p.EmailVerified = v
		default:
			p.EmailVerified = a.cfg.TrustEmail && !claimPresent(c.all, a.cfg.ClaimEmailVerified)
		}
	}
	roles := claimStrings(c.all, a.cfg.ClaimRoles)
	p.Admin = a.admins[sub] ||
		a.cfg.AdminRole != "" && (slices.Contains(roles, a.cfg.AdminRole) || slices.Contains(p.Groups, a.cfg.AdminRole)) ||
		slices.ContainsFunc(p.Groups, func(g string) bool { return a.adminGrps[g] })
	return p, nil
}

// tokenClaims are a token's claims: the registered ones, with the time
// claims shadowing RegisteredClaims' with a stricter type (numericDate),
// and every claim as decoded JSON for the configurable names.
type tokenClaims struct {
	jwt.RegisteredClaims
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	all       map[string]any
}

func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	type plain tokenClaims // without this method
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.all)
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }

// numericDate is a JWT NumericDate that must be a JSON number (RFC 7519
// §2). jwt.NumericDate also takes a string holding a number, so a token
// with "exp":"9999999999" would pass: issuers that produce one are broken,
// and a verifier that accepts one is lenient where it must be strict.
type numericDate struct{ jwt.NumericDate }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("a NumericDate must be a JSON number, got %.20s", b)
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// claim finds a claim by name; a name with dots that is not itself a claim
// walks nested objects (realm_access.roles).
func claim(all map[string]any, name string) (any, bool) {
	if name == "" {
		return nil, false
	}
	if v, ok := all[name]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	sub, ok := all[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return claim(sub, rest)
}

func claimPresent(all map[string]any, name string) bool {
	_, ok := claim(all, name)
	return ok
}

func claimString(all map[string]any, name string) string {
	v, _ := claim(all, name)
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

// claimBool reads a boolean claim; some providers send "true" as a string.
func claimBool(all map[string]any, name string) (value, ok bool) {
	switch v, _ := claim(all, name); v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// claimStrings reads a list claim: an array of strings, or one string of
// space- or comma-separated values.
func claimStrings(all map[string]any, name string) []string {
	var out []string
	switch v, _ := claim(all, name); v := v.(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	case string:
		out = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return out
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// RandomSecret returns a fresh 32-byte secret (development only: tokens
// signed with it are valid where it is kept).
func RandomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// tokenCache remembers verified tokens by the SHA-256 of the raw token
// until they expire, so that a token is verified once per process and not
// on every request. It holds at most max entries: when full, the least
// recently used goes (a burst of one-off tokens — a flood of forged ones
// never gets in, only verified ones do — cannot push out the tokens of the
// users who are busy). An expired entry is dropped when it is met.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]*list.Element
	lru *list.List // of *cached, most recently used at the front
}

type cached struct {
	k   [sha256.Size]byte
	p   Principal
	exp time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[sha256.Size]byte]*list.Element), lru: list.New()}
}

func (c *tokenCache) get(k [sha256.Size]byte, now time.Time) (Principal, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return Principal{}, time.Time{}, false
	}
	e := el.Value.(*cached)
	if !now.Before(e.exp) {
		c.lru.Remove(el)
		delete(c.m, k)
		return Principal{}, time.Time{}, false
	}
	c.lru.MoveToFront(el)
	p := e.p
	p.Groups = slices.Clone(p.Groups) // the caller's own copy
	return p, e.exp, true
}

func (c *tokenCache) put(k [sha256.Size]byte, p Principal, exp time.Time) {
	if exp.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		el.Value = &cached{k: k, p: p, exp: exp}
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.m, oldest.Value.(*cached).k)
	}
	c.m[k] = c.lru.PushFront(&cached{k: k, p: p, exp: exp})
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
