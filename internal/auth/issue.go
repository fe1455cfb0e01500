package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
)

// TokenRequest is what a minted HS256 token says about its user.
type TokenRequest struct {
	Subject string
	Email   string
	// EmailVerified marks the email verified (the development issuer and
	// `docstream token mint` vouch for the addresses they are given).
	EmailVerified bool
	Name          string
	Groups        []string
	Admin         bool
	TTL           time.Duration
}

// Mint signs an HS256 token for t with cfg's secret, issuer, audience and
// claim names, so that an Authenticator of the same cfg accepts it. It is
// the development issuer and `docstream token mint`: whoever holds the
// secret can mint any user, admins included.
func Mint(cfg Config, t TokenRequest, now time.Time) (string, time.Time, error) {
	cfg.resolveAliases()
	if len(cfg.JWTSecret) < MinSecretLen {
		return "", time.Time{}, apperr.E(apperr.Unavailable, "minting tokens needs an HS256 secret (--auth-jwt-secret) of at least %d bytes", MinSecretLen)
	}
	t.Subject = strings.TrimSpace(t.Subject)
	if t.Subject == "" {
		return "", time.Time{}, errors.New("auth: a token needs a subject")
	}
	if len(t.Subject) > maxSubjectLen {
		return "", time.Time{}, fmt.Errorf("auth: subject longer than %d bytes", maxSubjectLen)
	}
	if t.TTL <= 0 {
		t.TTL = cfg.TokenTTL
	}
	if t.TTL <= 0 {
		t.TTL = DefaultTokenTTL
	}
	exp := now.Add(t.TTL)
	c := jwt.MapClaims{
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": exp.Unix(),
		// The reference's tokens name the user in user_id; kept so that
		// its clients read the same claim.
		"user_id": t.Subject,
	}
	set := func(name string, v any) {
		if name != "" && !strings.Contains(name, ".") {
			c[name] = v
		}
	}
	set(orDefault(cfg.ClaimSubject, "sub"), t.Subject)
	if cfg.Issuer != "" {
		c["iss"] = cfg.Issuer
	}
	if cfg.Audience != "" {
		c["aud"] = cfg.Audience
	}
	if t.Email != "" {
		set(orDefault(cfg.ClaimEmail, "email"), t.Email)
		set(orDefault(cfg.ClaimEmailVerified, "email_verified"), t.EmailVerified)
	}
	if t.Name != "" {
		set(orDefault(cfg.ClaimName, "name"), t.Name)
	}
	if len(t.Groups) > 0 {
		set(orDefault(cfg.ClaimGroups, "groups"), t.Groups)
	}
	if t.Admin {
		if cfg.AdminRole == "" || cfg.ClaimRoles == "" || strings.Contains(cfg.ClaimRoles, ".") {
			return "", time.Time{}, errors.New("auth: an admin token needs --auth-admin-role and a plain --auth-claim-roles name")
		}
		c[cfg.ClaimRoles] = []string{cfg.AdminRole}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(cfg.JWTSecret))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// IssueToken mints a token with this Authenticator's configuration (the
// development issuer).
func (a *Authenticator) IssueToken(t TokenRequest, now time.Time) (string, time.Time, error) {
	if a == nil {
		return "", time.Time{}, apperr.E(apperr.Unavailable, "token issuing needs a JWT secret")
	}
	return Mint(a.cfg, t, now)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
