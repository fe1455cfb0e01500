package realtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
)

// SubprotocolBearer is the WebSocket subprotocol that carries a token from a
// browser, whose WebSocket API cannot set an Authorization header. The client
// offers two subprotocols, "bearer" and then the JWT itself:
//
//	new WebSocket("ws://host:8004/ws/<id>", ["bearer", jwt])
//
// which sends `Sec-WebSocket-Protocol: bearer, <jwt>`. The server selects and
// echoes "bearer" (never the token, so it is not reflected into logs or
// proxies' response headers). A JWT is made of base64url characters and
// dots, all legal in an HTTP token, so it survives as a subprotocol value.
const SubprotocolBearer = "bearer"

// asymmetricMethods are the JWS algorithms accepted for keys from a JWKS.
var asymmetricMethods = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// AuthConfig says which tokens are accepted.
type AuthConfig struct {
	// Secret verifies (and, for the development token endpoint, signs)
	// HS256 tokens. Empty: HMAC tokens are refused.
	Secret []byte
	// JWKSURL is where RS*/PS*/ES*/EdDSA public keys are fetched from
	// (refreshed hourly and on an unknown kid). Empty: asymmetric tokens
	// are refused.
	JWKSURL string
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// TokenTTL is the lifetime of tokens issued by IssueToken (0:
	// DefaultTokenTTL).
	TokenTTL time.Duration
	// HTTPClient fetches the JWKS (default: http.DefaultClient with a 10s timeout).
	HTTPClient *http.Client
	Log        *slog.Logger
}

// Authenticator checks the bearer tokens of WebSocket handshakes.
type Authenticator struct {
	secret []byte
	jwks   keyfunc.Keyfunc
	parser *jwt.Parser
	ttl    time.Duration
	issuer string
	aud    string
}

// Identity is who a valid token names.
type Identity struct {
	UserID    string
	Email     string
	ExpiresAt time.Time
}

// tokenClaims are the claims of our tokens: the registered ones plus the
// reference's user_id and email. The time claims shadow RegisteredClaims'
// with a stricter type (see numericDate).
type tokenClaims struct {
	jwt.RegisteredClaims
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	UserID    string       `json:"user_id,omitempty"`
	Email     string       `json:"email,omitempty"`
}

func (c tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }

// numericDate is a JWT NumericDate that must be a JSON number (RFC 7519
// §2). jwt.NumericDate also takes a string holding a number, so a token
// with "exp":"9999999999" would pass: issuers that produce one are broken,
// and a verifier that accepts one is lenient where it must be strict.
type numericDate struct{ jwt.NumericDate }

func newNumericDate(t time.Time) *numericDate { return &numericDate{*jwt.NewNumericDate(t)} }

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

// NewAuthenticator builds an Authenticator. With a JWKS URL it starts a
// background refresh that stops when ctx is done. At least one of Secret
// and JWKSURL is required.
func NewAuthenticator(ctx context.Context, cfg AuthConfig) (*Authenticator, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("realtime: a JWT secret or a JWKS URL is required")
	}
	if n := len(cfg.Secret); n > 0 && n < MinSecretLen {
		// RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
		return nil, fmt.Errorf("realtime: the JWT secret is %d bytes; HS256 needs at least %d (e.g. openssl rand -base64 32)", n, MinSecretLen)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{secret: cfg.Secret, ttl: cfg.TokenTTL, issuer: cfg.Issuer, aud: cfg.Audience}
	// Only the algorithms we hold keys for are valid: this is what refuses
	// alg "none" and a token that names an algorithm of the other family
	// (e.g. HS256 signed with an RSA public key taken from the JWKS).
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		log := cfg.Log
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client: client,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					log.WarnContext(ctx, "jwks refresh failed", "url", u, "err", err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("realtime: jwks %s: %w", cfg.JWKSURL, err)
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
	return a, nil
}

// MinSecretLen is the shortest HS256 secret accepted, in bytes.
const MinSecretLen = 32

// RandomSecret returns a fresh 32-byte HMAC secret (development only: tokens
// signed with it are valid in this process alone).
func RandomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// errUnauthenticated is what every refused token gets: the client learns
// nothing about why, or about the document.
var errUnauthenticated = apperr.E(apperr.Unauthenticated, "a valid bearer token is required")

// Authenticate finds the token of r and verifies it. It returns the
// subprotocol to select ("" unless the token came as SubprotocolBearer).
// Where a token is looked for, in order: Authorization: Bearer, ?token=,
// Sec-WebSocket-Protocol. The error is always apperr Unauthenticated.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, string, error) {
	token, proto := tokenFrom(r)
	if token == "" {
		return Identity{}, "", errUnauthenticated
	}
	id, err := a.Verify(r.Context(), token)
	if err != nil {
		return Identity{}, "", err
	}
	return id, proto, nil
}

// tokenFrom extracts the raw token and the subprotocol to echo.
func tokenFrom(r *http.Request) (token, subprotocol string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(rest), ""
		}
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t, ""
	}
	var protos []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				protos = append(protos, p)
			}
		}
	}
	for i, p := range protos {
		if strings.EqualFold(p, SubprotocolBearer) && i+1 < len(protos) {
			return protos[i+1], SubprotocolBearer
		}
	}
	return "", ""
}

// Verify checks a raw token: signature with a key of the algorithm's own
// family, exp (required), nbf, iat, and iss/aud when configured.
func (a *Authenticator) Verify(ctx context.Context, raw string) (Identity, error) {
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
		return Identity{}, apperr.Wrap(apperr.Unauthenticated, err, "%s", errUnauthenticated.Message)
	}
	id := Identity{UserID: c.UserID, Email: c.Email}
	if id.UserID == "" {
		id.UserID = c.Subject
	}
	if c.ExpiresAt != nil {
		id.ExpiresAt = c.ExpiresAt.Time
	}
	return id, nil
}

// IssueToken signs an HS256 token for userID and email valid for the
// configured TTL. It needs the secret (HS256 tokens only).
func (a *Authenticator) IssueToken(userID, email string, now time.Time) (string, time.Time, error) {
	if len(a.secret) == 0 {
		return "", time.Time{}, apperr.E(apperr.Unavailable, "token issuing needs a JWT secret")
	}
	exp := now.Add(a.ttl)
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: userID, Issuer: a.issuer},
		IssuedAt:         newNumericDate(now),
		NotBefore:        newNumericDate(now),
		ExpiresAt:        newNumericDate(exp),
		UserID:           userID,
		Email:            email,
	}
	if a.aud != "" {
		c.Audience = jwt.ClaimStrings{a.aud}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("realtime: sign token: %w", err)
	}
	return s, exp, nil
}
