package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func hsToken(t testing.TB, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "u1", "email": "u1@example.com", "email_verified": true, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func newAuth(t testing.TB, mutate func(*Config)) *Authenticator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.JWTSecret = testSecret
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// jwks is a real JWKS endpoint on a loopback port whose key set can be
// rotated and which counts its fetches.
type jwks struct {
	url     string
	fetches atomic.Int64
	mu      sync.Mutex
	raw     []byte
}

func newJWKS(t testing.TB, keys map[string]any) *jwks {
	t.Helper()
	j := &jwks{}
	j.set(t, keys)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		raw := j.raw
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(srv.Close)
	j.url = srv.URL
	return j
}

// set replaces the published keys (their public halves).
func (j *jwks) set(t testing.TB, keys map[string]any) {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.raw = raw
	j.mu.Unlock()
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tamper replaces a token's payload with claims, keeping its header and
// signature.
func tamper(t testing.TB, token string, claims string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(claims))
	return strings.Join(parts, ".")
}

// The attack table at the verifier: every forged, stale or foreign token
// is refused, as Unauthenticated, with both a secret and a JWKS configured
// (each family must use its own keys only).
func TestVerifierAttackTable(t *testing.T) {
	rk := rsaKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j := newJWKS(t, map[string]any{"rsa": rk, "ec": ec, "ed": ed})
	a := newAuth(t, func(c *Config) {
		c.JWKSURL = j.url
		c.Issuer = "https://idp.example"
		c.Audience = "docstream"
		c.Leeway = time.Second
	})
	good := func() jwt.MapClaims { return with(validClaims(), "iss", "https://idp.example", "aud", "docstream") }
	now := time.Now()
	pubDER, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := hsToken(t, testSecret, good())
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"a valid HS256 token is accepted", valid, true},
		{"RS256 from the JWKS is accepted", sign(t, jwt.SigningMethodRS256, "rsa", rk, good()), true},
		{"ES256 from the JWKS is accepted", sign(t, jwt.SigningMethodES256, "ec", ec, good()), true},
		{"EdDSA from the JWKS is accepted", sign(t, jwt.SigningMethodEdDSA, "ed", ed, good()), true},
		{"no token", "", false},
		{"garbage", "not.a.jwt", false},
		{"expired", hsToken(t, testSecret, with(good(), "exp", now.Add(-time.Minute).Unix())), false},
		{"without exp", hsToken(t, testSecret, with(good(), "exp", nil)), false},
		{"not valid yet", hsToken(t, testSecret, with(good(), "nbf", now.Add(time.Minute).Unix())), false},
		{"issued in the future", hsToken(t, testSecret, with(good(), "iat", now.Add(time.Hour).Unix())), false},
		{"wrong issuer", hsToken(t, testSecret, with(good(), "iss", "https://evil.example")), false},
		{"no issuer", hsToken(t, testSecret, with(good(), "iss", nil)), false},
		{"wrong audience", hsToken(t, testSecret, with(good(), "aud", "other-app")), false},
		{"signed with another secret", hsToken(t, "another-secret-another-secret-xx", good()), false},
		{"RS256 by a key not in the JWKS", sign(t, jwt.SigningMethodRS256, "rsa", rsaKey(t), good()), false},
		{"an unknown kid", sign(t, jwt.SigningMethodRS256, "nope", rk, good()), false},
		{"alg none", none, false},
		// Algorithm confusion: HS256 keyed with the RSA public key (what a
		// verifier that trusts the token's alg would check it against).
		{"HS256 keyed with the JWKS's RSA public key", sign(t, jwt.SigningMethodHS256, "rsa", pubDER, good()), false},
		{"a tampered payload", tamper(t, valid, `{"sub":"admin","roles":["admin"],"exp":9999999999}`), false},
		{"exp given as a string", hsToken(t, testSecret, with(good(), "exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), false},
		{"iat given as a string", hsToken(t, testSecret, with(good(), "iat", strconv.FormatInt(now.Unix(), 10))), false},
		{"no subject", hsToken(t, testSecret, with(good(), "sub", nil)), false},
		{"a subject too long", hsToken(t, testSecret, with(good(), "sub", strings.Repeat("x", 256))), false},
		{"an API key when none are accepted", APIKeyPrefix + "abc_def", false},
		{"a service credential forged with the JWT secret", ServiceCredentialPrefix + hsToken(t, testSecret,
			jwt.MapClaims{"iss": serviceIssuer, "sub": "signature", "exp": now.Add(time.Hour).Unix()}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(t.Context(), tc.token)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Kind != KindUser || p.Subject != "u1" || p.Key() != "user:u1" {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				t.Fatalf("code %s, want unauthenticated", apperr.CodeOf(err))
			}
			if m := apperr.As(err).Message; m != errUnauthenticated.Message {
				t.Fatalf("message %q says why; want %q", m, errUnauthenticated.Message)
			}
		})
	}

	// With only a secret configured, asymmetric tokens are not even tried.
	hsOnly := newAuth(t, nil)
	if _, err := hsOnly.Authenticate(t.Context(), sign(t, jwt.SigningMethodRS256, "rsa", rk, validClaims())); err == nil {
		t.Fatal("RS256 accepted without a JWKS")
	}
}

// Rotation against a real JWKS endpoint: after the provider replaces its
// key, a token of the new kid is accepted (the unknown kid refetches the
// set) and a new token of the old kid is refused.
func TestJWKSRotation(t *testing.T) {
	k1, k2 := rsaKey(t), rsaKey(t)
	j := newJWKS(t, map[string]any{"k1": k1})
	a := newAuth(t, func(c *Config) { c.JWKSURL = j.url; c.AudienceAny = true; c.CacheSize = 0 })
	if _, err := a.Authenticate(t.Context(), sign(t, jwt.SigningMethodRS256, "k1", k1, validClaims())); err != nil {
		t.Fatalf("k1 before rotation: %v", err)
	}
	j.set(t, map[string]any{"k2": k2})
	if _, err := a.Authenticate(t.Context(), sign(t, jwt.SigningMethodRS256, "k2", k2, validClaims())); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if _, err := a.Authenticate(t.Context(), sign(t, jwt.SigningMethodRS256, "k1", k1, validClaims())); err == nil {
		t.Fatal("a token of the retired kid k1 was accepted after rotation")
	}
}

// A flood of tokens with made-up kids costs at most one JWKS refetch per
// interval, and none of them waits for the rate limiter.
func TestUnknownKIDFloodRefetchesOnce(t *testing.T) {
	k := rsaKey(t)
	j := newJWKS(t, map[string]any{"k1": k})
	a := newAuth(t, func(c *Config) { c.JWKSURL = j.url; c.AudienceAny = true; c.JWKSUnknownKID = time.Hour })
	if _, err := a.Authenticate(t.Context(), sign(t, jwt.SigningMethodRS256, "k1", k, validClaims())); err != nil {
		t.Fatal(err)
	}
	before := j.fetches.Load()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, jwt.SigningMethodRS256, fmt.Sprintf("made-up-%d", i), k, validClaims())
			if _, err := a.Authenticate(context.Background(), tok); err == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d tokens with unknown kids accepted", accepted.Load())
	}
	if n := j.fetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for a flood of unknown kids, want at most 1", n)
	}
}

// Claims map to the principal by the configured names.
func TestClaimsMapToThePrincipal(t *testing.T) {
	cases := []struct {
		name   string
		cfg    func(*Config)
		claims jwt.MapClaims
		want   Principal
	}{
		{"default names", nil,
			with(validClaims(), "name", "Una", "groups", []string{"legal", "ops"}),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true, Name: "Una", Groups: []string{"legal", "ops"}}},
		{"the reference's user_id when there is no sub", nil,
			with(validClaims(), "sub", nil, "user_id", "ref-user", "email_verified", false),
			Principal{Kind: KindUser, Subject: "ref-user", Email: "u1@example.com"}},
		{"an email without email_verified is not verified", nil,
			with(validClaims(), "email_verified", nil),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com"}},
		{"trusted when configured for an IdP that omits the claim", func(c *Config) { c.TrustEmail = true },
			with(validClaims(), "email_verified", nil),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true}},
		{"but never when the token says false", func(c *Config) { c.TrustEmail = true },
			with(validClaims(), "email_verified", false),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com"}},
		{"email_verified as the string \"true\"", nil,
			with(validClaims(), "email_verified", "true"),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true}},
		{"custom and nested claim names (Keycloak)", func(c *Config) {
			c.ClaimSubject, c.ClaimEmail, c.ClaimName, c.ClaimGroups, c.ClaimRoles = "oid", "upn", "preferred_username", "grp", "realm_access.roles"
		}, jwt.MapClaims{"oid": "o-1", "upn": "o@example.com", "preferred_username": "oz", "grp": "a b,c",
			"realm_access": map[string]any{"roles": []string{"admin"}}, "exp": time.Now().Add(time.Hour).Unix()},
			Principal{Kind: KindUser, Subject: "o-1", Email: "o@example.com", Name: "oz", Groups: []string{"a", "b", "c"}, Admin: true}},
		{"admin by role", nil, with(validClaims(), "roles", []string{"reader", "admin"}),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true, Admin: true}},
		{"admin by configured subject", func(c *Config) { c.AdminSubjects = "x, u1" }, validClaims(),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true, Admin: true}},
		{"admin by configured group", func(c *Config) { c.AdminGroups = "root" }, with(validClaims(), "groups", []string{"root"}),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true, Groups: []string{"root"}, Admin: true}},
		{"another role is not admin", nil, with(validClaims(), "roles", []string{"administrator"}),
			Principal{Kind: KindUser, Subject: "u1", Email: "u1@example.com", EmailVerified: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, tc.cfg)
			p, err := a.Authenticate(t.Context(), hsToken(t, testSecret, tc.claims))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("got  %+v\nwant %+v", p, tc.want)
			}
		})
	}
}

// A verified token is remembered by its hash until it expires, and only
// then: an expired entry is verified again (and refused).
func TestVerifiedTokensAreCachedUntilExpiry(t *testing.T) {
	a := newAuth(t, func(c *Config) { c.CacheSize = 2; c.Leeway = 0 })
	tok := hsToken(t, testSecret, with(validClaims(), "exp", time.Now().Add(1100*time.Millisecond).Unix()))
	if _, err := a.Authenticate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d", a.cache.len())
	}
	for i := range 5 { // bounded
		if _, err := a.Authenticate(t.Context(), hsToken(t, testSecret, with(validClaims(), "sub", fmt.Sprint("s", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.cache.len(); n > 2 {
		t.Fatalf("cache holds %d entries, bound 2", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.Authenticate(t.Context(), tok)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired token is still accepted")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Mint's tokens (the dev issuer, `docstream token mint`) verify with the
// same configuration, custom claim names included.
func TestMintRoundTrip(t *testing.T) {
	for _, custom := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.JWTSecret, cfg.Issuer, cfg.Audience = testSecret, "docstream", "api"
		if custom {
			cfg.ClaimSubject, cfg.ClaimGroups, cfg.ClaimRoles = "uid", "teams", "perms"
		}
		a, err := New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		tok, exp, err := Mint(cfg, TokenRequest{Subject: "alice", Email: "a@example.com", EmailVerified: true, Name: "Alice",
			Groups: []string{"legal"}, Admin: true, TTL: 2 * time.Hour}, now)
		if err != nil {
			t.Fatal(err)
		}
		if d := exp.Sub(now); d != 2*time.Hour {
			t.Fatalf("expires in %v", d)
		}
		p, err := a.Authenticate(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		want := Principal{Kind: KindUser, Subject: "alice", Email: "a@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"legal"}, Admin: true}
		if fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", want) {
			t.Fatalf("custom=%v: %+v", custom, p)
		}
	}
	if _, _, err := Mint(Config{JWTSecret: "short"}, TokenRequest{Subject: "x"}, time.Now()); err == nil {
		t.Fatal("minted with a short secret")
	}
}

// Service credentials: verified with the service key only; a user token
// is never one, and a service credential of another deployment is refused.
func TestServiceCredentials(t *testing.T) {
	a := newAuth(t, nil)
	raw, err := a.ServiceCredential("signature")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := a.ServiceCredential("signature"); again != raw {
		t.Fatal("a fresh credential is minted per call; want it reused until near expiry")
	}
	p, err := a.Authenticate(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindService || p.Key() != "service:signature" || p.Admin {
		t.Fatalf("principal %+v", p)
	}
	// Without the prefix it is a user token signed with a key the JWT
	// verifier does not hold.
	if _, err := a.Authenticate(t.Context(), strings.TrimPrefix(raw, ServiceCredentialPrefix)); err == nil {
		t.Fatal("a service credential passed as a user token")
	}
	other := newAuth(t, func(c *Config) { c.JWTSecret = "another-secret-another-secret-xx" })
	if _, err := other.Authenticate(t.Context(), raw); err == nil {
		t.Fatal("another deployment's service credential accepted")
	}
	explicit := newAuth(t, func(c *Config) { c.ServiceSecret = "service-secret-service-secret-xx" })
	if _, err := explicit.Authenticate(t.Context(), raw); err == nil {
		t.Fatal("a credential derived from the JWT secret accepted where --auth-service-secret is set")
	}
}

// Required mode with nothing to verify refuses to start; a short secret is
// refused naming the minimum; the --realtime-jwt-* aliases still work.
func TestConfigRefusals(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "--auth-jwt-secret") {
		t.Fatalf("required without a secret: %v", err)
	}
	cfg.Mode = string(ModeOpen)
	if _, err := New(t.Context(), cfg, nil); err != nil {
		t.Fatalf("open without a secret: %v", err)
	}
	for _, n := range []int{1, 16, 31} {
		c := DefaultConfig()
		c.JWTSecret = strings.Repeat("s", n)
		if _, err := New(t.Context(), c, nil); err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Fatalf("%d-byte secret: %v", n, err)
		}
	}
	c := DefaultConfig()
	c.Mode = "sometimes"
	if err := c.Validate(); err == nil {
		t.Fatal("mode sometimes accepted")
	}
}

// A full cache lets the least recently used token go, not an arbitrary
// one: the tokens in use stay verified while a burst of one-off tokens
// passes through. (Before, a full cache dropped entries in map order: the
// busy half was almost never kept whole.)
func TestFullTokenCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	const size = 50
	a := newAuth(t, func(c *Config) { c.CacheSize = size })
	tok := func(prefix string, i int) string {
		return hsToken(t, testSecret, with(validClaims(), "sub", fmt.Sprint(prefix, i)))
	}
	verify := func(raw string) {
		t.Helper()
		if _, err := a.Authenticate(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	var busy, idle []string
	for i := range size / 2 {
		busy, idle = append(busy, tok("busy", i)), append(idle, tok("idle", i))
	}
	for i := range busy { // the idle ones were verified last...
		verify(busy[i])
		verify(idle[i])
	}
	for _, raw := range busy { // ...but the busy ones were used since
		verify(raw)
	}
	for i := range size / 2 { // a burst of new tokens fills the other half
		verify(tok("burst", i))
	}
	if n := a.cache.len(); n != size {
		t.Fatalf("cache holds %d entries, want %d", n, size)
	}
	now := time.Now()
	for i, raw := range busy {
		if _, _, ok := a.cache.get(sha256.Sum256([]byte(raw)), now); !ok {
			t.Fatalf("busy token %d was evicted", i)
		}
	}
	for i, raw := range idle {
		if _, _, ok := a.cache.get(sha256.Sum256([]byte(raw)), now); ok {
			t.Fatalf("idle token %d is still cached while busy ones had to go", i)
		}
	}
}

// An identity provider whose JWKS endpoint accepts the connection and
// never answers does not hang start-up: New returns once the first fetch
// times out (the fetch's own bound), and the deployment runs degraded —
// its tokens are refused (401, not a hung request) — until the provider
// answers, when they are accepted without a restart (a token's kid that
// is not held refetches the set, at most once per
// --auth-jwks-unknown-kid-interval).
func TestJWKSThatHangsAtStartDegradesInsteadOfHanging(t *testing.T) {
	k := rsaKey(t)
	j := newJWKS(t, map[string]any{"k1": k})
	var answering atomic.Bool
	release := make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answering.Load() {
			select { // hang until the client gives up or the test ends
			case <-r.Context().Done():
				return
			case <-release:
				return
			}
		}
		http.Redirect(w, r, j.url, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(gate.Close)
	t.Cleanup(func() { close(release) })
	// A client without a timeout of its own: the fetch is still bounded.
	a := newAuth(t, func(c *Config) {
		c.JWKSURL = gate.URL
		c.AudienceAny = true
		c.CacheSize = 0
		c.JWKSUnknownKID = 50 * time.Millisecond
		c.HTTPClient = &http.Client{}
		c.jwksFetchTimeout = time.Second
	})
	tok := sign(t, jwt.SigningMethodRS256, "k1", k, validClaims())
	if _, err := a.Authenticate(t.Context(), tok); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("a token while the JWKS hangs: %v, want 401", err)
	}
	answering.Store(true)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := a.Authenticate(t.Context(), tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider answers again and its token is still refused: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
