package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// DefaultTokenTTL is the lifetime of tokens from the development issuer
// (GET /auth/token) and the default of `docstream token mint`.
const DefaultTokenTTL = 24 * time.Hour

// MinSecretLen is the shortest HS256 secret accepted, in bytes (RFC 7518
// §3.2: an HS256 key must be at least as long as the hash).
const MinSecretLen = 32

// Config says who may call and how a credential becomes a Principal. One
// Config serves every service of a process: the flags are registered once
// (internal/app) and each service's middleware is built from it.
type Config struct {
	// Mode is open or required (see ModeOpen, ModeRequired).
	Mode string
	// JWTSecret verifies HS256 tokens (and signs the development issuer's
	// and `docstream token mint`'s). Empty: HMAC tokens are refused.
	JWTSecret string
	// JWKSURL is where RS*/PS*/ES*/EdDSA public keys are fetched from
	// (refreshed every JWKSRefresh, and on an unknown kid at most once per
	// JWKSUnknownKID). Empty: asymmetric tokens are refused.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSUnknownKID time.Duration
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// AudienceAny accepts a JWKS-signed token for any audience in required
	// mode. Off by default: an identity provider's keys sign the tokens of
	// every application it serves, so without an audience check a token
	// issued for another application would be accepted.
	AudienceAny bool
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Claim names (a name with dots also walks nested objects, e.g.
	// realm_access.roles for Keycloak, when no claim has the literal name).
	ClaimSubject       string
	ClaimEmail         string
	ClaimEmailVerified string
	ClaimName          string
	ClaimGroups        string
	ClaimRoles         string
	// TrustEmail counts a token's email as verified when the token does
	// not say (for identity providers that omit email_verified but only
	// issue verified addresses). A token saying false is never trusted.
	TrustEmail bool
	// AdminRole is the value of the roles (or groups) claim that makes a
	// principal an admin; AdminSubjects and AdminGroups are comma-separated
	// lists of subjects and groups that are admins whatever the token says.
	AdminRole     string
	AdminSubjects string
	AdminGroups   string
	// ServiceSecret signs and verifies the credentials services present to
	// each other for background work (the signature outbox's retries).
	// Empty: derived from JWTSecret; with neither, there are none.
	ServiceSecret string
	// TokenTTL is the lifetime of the development issuer's tokens.
	TokenTTL time.Duration
	// CacheSize bounds the verified-token cache (entries); 0 disables it.
	CacheSize int
	// AtGateway also verifies credentials at the gateway, so a request
	// with a bad token is refused before it reaches a service.
	AtGateway bool

	// Dev is set by `docstream dev`: the development issuer is mounted and
	// admin-only operations are open in open mode. Not a flag.
	Dev bool
	// HTTPClient fetches the JWKS (default: a 10 s timeout). Not a flag.
	HTTPClient *http.Client
	// Log receives JWKS refresh failures. Not a flag.
	Log *slog.Logger

	// The --realtime-jwt-* flags of earlier releases, kept as aliases:
	// used when the --auth-* flag is not set.
	legacySecret, legacyJWKS, legacyIssuer, legacyAudience string
	legacyTTL                                              time.Duration

	// jwksFetchTimeout bounds each JWKS fetch (zero: jwksFetchTimeout);
	// tests shorten it.
	jwksFetchTimeout time.Duration
}

// DefaultConfig is the configuration when nothing is set. Mode is
// required: `docstream serve`'s default; `docstream dev` sets open.
func DefaultConfig() Config {
	return Config{
		Mode:               string(ModeRequired),
		JWKSRefresh:        time.Hour,
		JWKSUnknownKID:     time.Minute,
		Leeway:             30 * time.Second,
		ClaimSubject:       "sub",
		ClaimEmail:         "email",
		ClaimEmailVerified: "email_verified",
		ClaimName:          "name",
		ClaimGroups:        "groups",
		ClaimRoles:         "roles",
		AdminRole:          "admin",
		TokenTTL:           DefaultTokenTTL,
		CacheSize:          10000,
	}
}

// RegisterFlags registers the --auth-* flags (and the --realtime-jwt-*
// aliases), defaulting to c's values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Mode, "auth-mode", c.Mode, "open (anonymous callers allowed, everyone sees everything; a presented token is still verified) or required (no valid token: 401; access control applies); default required for serve, open for dev")
	fs.StringVar(&c.JWTSecret, "auth-jwt-secret", c.JWTSecret, "HS256 secret, at least 32 bytes, verifying tokens (and signing /auth/token's in dev and `docstream token mint`'s); in dev, when empty, a random one kept in <data-dir>/auth.secret")
	fs.StringVar(&c.JWKSURL, "auth-jwks-url", c.JWKSURL, "JWKS URL of the identity provider's RS256/ES256/EdDSA keys")
	fs.DurationVar(&c.JWKSRefresh, "auth-jwks-refresh", c.JWKSRefresh, "how often the JWKS is fetched again (must be > 0)")
	fs.DurationVar(&c.JWKSUnknownKID, "auth-jwks-unknown-kid-interval", c.JWKSUnknownKID, "a token with an unknown kid refetches the JWKS at most once per this interval (a flood of made-up kids costs one fetch; must be > 0)")
	fs.StringVar(&c.Issuer, "auth-jwt-issuer", c.Issuer, "required iss of tokens (empty: not checked)")
	fs.StringVar(&c.Audience, "auth-jwt-audience", c.Audience, "required aud of tokens (empty: not checked; required mode with --auth-jwks-url needs it or --auth-jwt-audience-any)")
	fs.BoolVar(&c.AudienceAny, "auth-jwt-audience-any", c.AudienceAny, "in required mode, accept JWKS-signed tokens issued for any audience (the identity provider serves no other application)")
	fs.DurationVar(&c.Leeway, "auth-jwt-leeway", c.Leeway, "clock skew tolerated on exp, nbf and iat")
	fs.StringVar(&c.ClaimSubject, "auth-claim-subject", c.ClaimSubject, "claim naming the user (falls back to user_id); a dotted name also walks nested objects")
	fs.StringVar(&c.ClaimEmail, "auth-claim-email", c.ClaimEmail, "claim holding the user's email")
	fs.StringVar(&c.ClaimEmailVerified, "auth-claim-email-verified", c.ClaimEmailVerified, "claim saying the email is verified (only a verified email counts for shares)")
	fs.StringVar(&c.ClaimName, "auth-claim-name", c.ClaimName, "claim holding the user's display name")
	fs.StringVar(&c.ClaimGroups, "auth-claim-groups", c.ClaimGroups, "claim holding the user's groups (array or space/comma-separated string)")
	fs.StringVar(&c.ClaimRoles, "auth-claim-roles", c.ClaimRoles, "claim holding the user's roles (e.g. realm_access.roles for Keycloak)")
	fs.BoolVar(&c.TrustEmail, "auth-trust-email", c.TrustEmail, "count a token's email as verified when the token has no email-verified claim (for identity providers that omit it)")
	fs.StringVar(&c.AdminRole, "auth-admin-role", c.AdminRole, "role (or group) claim value that makes a user an admin (empty: none)")
	fs.StringVar(&c.AdminSubjects, "auth-admin-subjects", c.AdminSubjects, "comma-separated subjects that are admins")
	fs.StringVar(&c.AdminGroups, "auth-admin-groups", c.AdminGroups, "comma-separated groups whose members are admins")
	fs.StringVar(&c.ServiceSecret, "auth-service-secret", c.ServiceSecret, "secret (at least 32 bytes) of the credentials services present to each other for background work; default: derived from --auth-jwt-secret; every process of a deployment needs the same")
	fs.DurationVar(&c.TokenTTL, "auth-token-ttl", c.TokenTTL, "lifetime of tokens issued by GET /auth/token (dev only; must be > 0)")
	fs.IntVar(&c.CacheSize, "auth-cache-size", c.CacheSize, "verified tokens remembered (by SHA-256, until they expire) so a token is checked once per process; 0: no cache")
	fs.BoolVar(&c.AtGateway, "auth-at-gateway", c.AtGateway, "the gateway also verifies credentials and refuses a bad one before proxying (the services verify in any case)")

	// Aliases of earlier releases' realtime-only flags.
	alias := func(name, to string) { _ = fs.MarkDeprecated(name, "use --"+to) }
	fs.StringVar(&c.legacySecret, "realtime-jwt-secret", "", "alias of --auth-jwt-secret")
	alias("realtime-jwt-secret", "auth-jwt-secret")
	fs.StringVar(&c.legacyJWKS, "realtime-jwks-url", "", "alias of --auth-jwks-url")
	alias("realtime-jwks-url", "auth-jwks-url")
	fs.StringVar(&c.legacyIssuer, "realtime-jwt-issuer", "", "alias of --auth-jwt-issuer")
	alias("realtime-jwt-issuer", "auth-jwt-issuer")
	fs.StringVar(&c.legacyAudience, "realtime-jwt-audience", "", "alias of --auth-jwt-audience")
	alias("realtime-jwt-audience", "auth-jwt-audience")
	fs.DurationVar(&c.legacyTTL, "realtime-token-ttl", 0, "alias of --auth-token-ttl")
	alias("realtime-token-ttl", "auth-token-ttl")
}

// Validate refuses a configuration nothing can run with, naming the flag;
// it also resolves the --realtime-jwt-* aliases.
func (c *Config) Validate() error {
	c.resolveAliases()
	if _, err := ParseMode(c.Mode); err != nil {
		return fmt.Errorf("--auth-mode: %w", err)
	}
	if n := len(c.JWTSecret); n > 0 && n < MinSecretLen {
		return fmt.Errorf("--auth-jwt-secret is %d bytes; HS256 needs at least %d (e.g. openssl rand -base64 32)", n, MinSecretLen)
	}
	if n := len(c.ServiceSecret); n > 0 && n < MinSecretLen {
		return fmt.Errorf("--auth-service-secret is %d bytes; at least %d are needed", n, MinSecretLen)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--auth-jwks-refresh", c.JWKSRefresh}, {"--auth-jwks-unknown-kid-interval", c.JWKSUnknownKID}, {"--auth-token-ttl", c.TokenTTL}} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be > 0, got %v", d.flag, d.v)
		}
	}
	if c.Leeway < 0 {
		return fmt.Errorf("--auth-jwt-leeway must be >= 0, got %v", c.Leeway)
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("--auth-cache-size must be >= 0, got %d", c.CacheSize)
	}
	if c.ClaimSubject == "" {
		return errors.New("--auth-claim-subject must not be empty")
	}
	if c.ModeOf() == ModeRequired && c.JWKSURL != "" && c.Audience == "" && !c.AudienceAny {
		return errors.New("--auth-jwks-url in required mode needs --auth-jwt-audience (AUTH_JWT_AUDIENCE): the identity provider's keys sign tokens for every application it serves; set --auth-jwt-audience-any if it serves only docstream")
	}
	return nil
}

func (c *Config) resolveAliases() {
	for _, a := range []struct{ to, from *string }{
		{&c.JWTSecret, &c.legacySecret}, {&c.JWKSURL, &c.legacyJWKS},
		{&c.Issuer, &c.legacyIssuer}, {&c.Audience, &c.legacyAudience},
	} {
		if *a.to == "" {
			*a.to = *a.from
		}
	}
	if c.legacyTTL > 0 && c.TokenTTL == DefaultTokenTTL {
		c.TokenTTL = c.legacyTTL
	}
}

// ModeOf is c.Mode parsed (Validate has refused anything else; an invalid
// value reads as required, the safe side).
func (c *Config) ModeOf() Mode {
	m, err := ParseMode(c.Mode)
	if err != nil {
		return ModeRequired
	}
	return m
}

// CanVerify reports whether anything can be verified without API keys: a
// JWT secret or a JWKS URL.
func (c *Config) CanVerify() bool {
	return c.JWTSecret != "" || c.JWKSURL != "" || c.legacySecret != "" || c.legacyJWKS != ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
