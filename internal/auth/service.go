package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
)

// ServiceCredentialPrefix starts every service credential: "dss_" and an
// HS256 JWT signed with the service key (--auth-service-secret, or a key
// derived from --auth-jwt-secret). The prefix keeps the two kinds apart: a
// service credential is verified with the service key only and a user
// token never with it, so neither can pass for the other.
const ServiceCredentialPrefix = "dss_"

// IsServiceCredential reports whether a bearer credential is a service's.
func IsServiceCredential(raw string) bool { return strings.HasPrefix(raw, ServiceCredentialPrefix) }

const (
	serviceIssuer = "docstream-service"
	serviceTTL    = 10 * time.Minute
	// serviceRenew is how long before expiry a cached credential is
	// replaced, so a call never leaves with one about to expire.
	serviceRenew = 2 * time.Minute
)

type serviceCred struct {
	raw string
	exp time.Time
}

// ServiceCredential returns a credential naming this process's service
// name (principal "service:<name>", KindService) for work done on no
// caller's behalf, such as the signature outbox's retries. What a service
// principal may do is up to each service. It is reused until shortly
// before it expires.
func (a *Authenticator) ServiceCredential(name string) (string, error) {
	if a == nil || len(a.svcKey) == 0 {
		return "", apperr.E(apperr.Unavailable, "service credentials need --auth-service-secret or --auth-jwt-secret")
	}
	if name == "" || len(name) > maxSubjectLen {
		return "", errors.New("auth: a service credential needs a name")
	}
	now := time.Now()
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	if c, ok := a.svcCreds[name]; ok && now.Add(serviceRenew).Before(c.exp) {
		return c.raw, nil
	}
	exp := now.Add(serviceTTL)
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: serviceIssuer, Subject: name,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(a.svcKey)
	if err != nil {
		return "", fmt.Errorf("auth: sign service credential: %w", err)
	}
	raw := ServiceCredentialPrefix + s
	a.svcCreds[name] = serviceCred{raw: raw, exp: exp}
	return raw, nil
}

// verifyService checks a service credential.
func (a *Authenticator) verifyService(raw string) (Principal, time.Time, error) {
	if len(a.svcKey) == 0 {
		return Principal{}, time.Time{}, refused(errors.New("service credentials are not accepted"))
	}
	var c tokenClaims
	_, err := a.svcParser.ParseWithClaims(strings.TrimPrefix(raw, ServiceCredentialPrefix), &c, func(t *jwt.Token) (any, error) {
		return a.svcKey, nil
	})
	if err != nil {
		return Principal{}, time.Time{}, refused(err)
	}
	if c.Subject == "" || len(c.Subject) > maxSubjectLen {
		return Principal{}, time.Time{}, refused(errors.New("service credential without a name"))
	}
	return Principal{Kind: KindService, Subject: c.Subject}, c.ExpiresAt.Time, nil
}
