package realtime

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func hsToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"user_id": "u1", "email": "u1@example.com", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

// jwksServer serves the public halves of the given keys as a JWK Set.
func jwksServer(t *testing.T, keys map[string]any) string {
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestVerifyHS256(t *testing.T) {
	a, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret, Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	other := hsToken(t, []byte("another-secret-another-secret-xx"), validClaims())
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"a valid token is accepted", hsToken(t, testSecret, validClaims()), true},
		{"an expired token is refused", hsToken(t, testSecret, jwt.MapClaims{"user_id": "u1", "exp": now.Add(-time.Minute).Unix()}), false},
		{"a token without exp is refused", hsToken(t, testSecret, jwt.MapClaims{"user_id": "u1"}), false},
		{"a token not valid yet is refused", hsToken(t, testSecret, jwt.MapClaims{"user_id": "u1", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(time.Minute).Unix()}), false},
		{"a token signed with another key is refused", other, false},
		{"alg none is refused", noneTok, false},
		{"garbage is refused", "not.a.jwt", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Verify(t.Context(), tc.token)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.UserID != "u1" || id.Email != "u1@example.com" || id.ExpiresAt.IsZero() {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				t.Fatalf("code %s", apperr.CodeOf(err))
			}
		})
	}
}

func TestVerifyJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	url := jwksServer(t, map[string]any{"rsa": rsaKey, "ec": ecKey, "ed": edKey})
	// Both a secret and a JWKS: each family must use its own keys only.
	a, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret, JWKSURL: url})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, kid string, key any) string {
		tok := jwt.NewWithClaims(m, validClaims())
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	strangerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256 from the JWKS is accepted", sign(jwt.SigningMethodRS256, "rsa", rsaKey), true},
		{"ES256 from the JWKS is accepted", sign(jwt.SigningMethodES256, "ec", ecKey), true},
		{"EdDSA from the JWKS is accepted", sign(jwt.SigningMethodEdDSA, "ed", edKey), true},
		{"RS256 signed by a key not in the JWKS is refused", sign(jwt.SigningMethodRS256, "rsa", strangerKey), false},
		{"an unknown kid is refused", sign(jwt.SigningMethodRS256, "nope", rsaKey), false},
		// Algorithm confusion: HS256 keyed with the RSA public key (what a
		// verifier that trusts the token's alg would check it against).
		{"HS256 keyed with the JWKS public key is refused", sign(jwt.SigningMethodHS256, "rsa", rsaPubDER), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Verify(t.Context(), tc.token)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}

	// With only a secret configured, asymmetric tokens are not even tried.
	hsOnly, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsOnly.Verify(t.Context(), sign(jwt.SigningMethodRS256, "rsa", rsaKey)); err == nil {
		t.Fatal("RS256 accepted without a JWKS")
	}
}

func TestTokenTransports(t *testing.T) {
	a, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	tok := hsToken(t, testSecret, validClaims())
	cases := []struct {
		name      string
		prepare   func(r *http.Request)
		ok        bool
		wantProto string
	}{
		{"query parameter", func(r *http.Request) { r.URL.RawQuery = "token=" + tok }, true, ""},
		{"authorization header", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, true, ""},
		{"subprotocol pair", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "bearer, "+tok) }, true, SubprotocolBearer},
		{"missing token", func(r *http.Request) {}, false, ""},
		{"basic auth is not a bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") }, false, ""},
		{"bearer subprotocol without a token", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "bearer") }, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ws/x", nil)
			tc.prepare(r)
			id, proto, err := a.Authenticate(r)
			if tc.ok != (err == nil) {
				t.Fatalf("ok=%v err=%v", tc.ok, err)
			}
			if tc.ok && (id.UserID != "u1" || proto != tc.wantProto) {
				t.Fatalf("identity %+v proto %q", id, proto)
			}
		})
	}
}

func TestIssueTokenRoundTrip(t *testing.T) {
	a, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret, TokenTTL: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, exp, err := a.IssueToken("alice", "alice@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(now); d != 2*time.Hour {
		t.Fatalf("expiry in %v", d)
	}
	id, err := a.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "alice" || id.Email != "alice@example.com" {
		t.Fatalf("identity %+v", id)
	}
}

// Issue 11 §9: time claims must be JSON numbers; a string holding a number
// is refused, whatever it says.
func TestTimeClaimsGivenAsStringsAreRefused(t *testing.T) {
	a, err := NewAuthenticator(t.Context(), AuthConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := a.Verify(t.Context(), hsToken(t, testSecret, validClaims())); err != nil {
		t.Fatalf("numeric claims refused: %v", err)
	}
	for _, claim := range []string{"exp", "nbf", "iat"} {
		t.Run(claim, func(t *testing.T) {
			c := validClaims()
			c["nbf"] = now.Add(-time.Minute).Unix()
			c[claim] = strconv.FormatInt(c[claim].(int64), 10)
			if claim == "exp" {
				c[claim] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
			}
			_, err := a.Verify(t.Context(), hsToken(t, testSecret, c))
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				t.Fatalf("%s as a string %q: %v, want refused", claim, c[claim], err)
			}
		})
	}
	// Tokens the server issues itself still verify.
	tok, _, err := a.IssueToken("u1", "u1@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Verify(t.Context(), tok); err != nil || id.UserID != "u1" || id.ExpiresAt.IsZero() {
		t.Fatalf("issued token: %+v %v", id, err)
	}
}

// Issue 11 §9: an HS256 secret shorter than the hash is refused at start,
// saying why.
func TestShortHS256SecretIsRefusedAtStart(t *testing.T) {
	for _, n := range []int{1, 16, 31} {
		_, err := NewAuthenticator(t.Context(), AuthConfig{Secret: make([]byte, n)})
		if err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Fatalf("%d-byte secret: %v, want refused naming the minimum", n, err)
		}
	}
	if _, err := NewAuthenticator(t.Context(), AuthConfig{Secret: make([]byte, 32)}); err != nil {
		t.Fatalf("32-byte secret: %v", err)
	}
}
