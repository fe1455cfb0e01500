package app

import (
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/auth"
)

// serve's default is required: with nothing to verify a caller it refuses
// to start, naming the flags; open mode, a secret, or only targets that
// verify nothing start.
func TestRequiredModeWithNothingToVerifyRefusesToStart(t *testing.T) {
	c := parse(t, nil)
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--auth-jwt-secret") || !strings.Contains(err.Error(), "--auth-mode=open") {
		t.Fatalf("prepare: %v, want a refusal naming --auth-jwt-secret and --auth-mode=open", err)
	}
	for _, args := range [][]string{
		{"--auth-mode", "open"},
		{"--auth-jwt-secret", strings.Repeat("s", 32)},
		{"--targets", "cdc,indexer"},
	} {
		if _, err := prepare(parse(t, nil, args...)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	// JWKS only: users verify, but the signature service's retries have no
	// service credential.
	c = parse(t, nil, "--auth-jwks-url", "http://127.0.0.1:1/jwks", "--auth-jwt-audience", "docstream")
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--auth-service-secret") {
		t.Fatalf("JWKS without a service secret: %v", err)
	}
}

// An identity provider's keys sign the tokens of every application it
// serves: in required mode a JWKS without an audience check would accept a
// token issued for another application, so it is refused unless the
// operator says the provider serves only docstream.
func TestJWKSInRequiredModeNeedsAnAudience(t *testing.T) {
	secret := []string{"--auth-service-secret", strings.Repeat("s", 32), "--auth-jwks-url", "http://127.0.0.1:1/jwks"}
	if _, err := prepare(parse(t, nil, secret...)); err == nil || !strings.Contains(err.Error(), "--auth-jwt-audience") {
		t.Fatalf("JWKS without an audience: %v, want a refusal naming --auth-jwt-audience", err)
	}
	for _, extra := range [][]string{{"--auth-jwt-audience", "docstream"}, {"--auth-jwt-audience-any"}, {"--auth-mode", "open"}} {
		if _, err := prepare(parse(t, nil, append(secret, extra...)...)); err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
	}
}

// The --realtime-jwt-* flags and their environment names are aliases of
// --auth-jwt-*; the new name wins when both are set.
func TestRealtimeJWTFlagsAreAliases(t *testing.T) {
	s1, s2 := strings.Repeat("a", 32), strings.Repeat("b", 32)
	c := parse(t, map[string]string{"REALTIME_JWT_SECRET": s1, "REALTIME_JWT_ISSUER": "iss", "REALTIME_JWKS_URL": "http://idp/jwks", "REALTIME_JWT_AUDIENCE": "docstream"})
	if _, err := prepare(c); err != nil {
		t.Fatal(err)
	}
	if c.Auth.JWTSecret != s1 || c.Auth.Issuer != "iss" || c.Auth.JWKSURL != "http://idp/jwks" {
		t.Fatalf("aliases not applied: %+v", c.Auth)
	}
	c = parse(t, map[string]string{"REALTIME_JWT_SECRET": s1, "AUTH_JWT_SECRET": s2})
	if _, err := prepare(c); err != nil {
		t.Fatal(err)
	}
	if c.Auth.JWTSecret != s2 {
		t.Fatal("the alias won over --auth-jwt-secret")
	}
	if c.Auth.ModeOf() != auth.ModeRequired {
		t.Fatalf("serve's default mode %s", c.Auth.Mode)
	}
}

// The audit trail is evidence only when its head is signed by a key every
// instance shares: serve refuses to run the targets that append (document,
// signature) without --audit-signing-key, in required and in open mode,
// naming the flag and how to make a key; the other targets start without
// one.
func TestServeNeedsTheAuditSigningKeyInEveryMode(t *testing.T) {
	secret := []string{"--auth-jwt-secret", strings.Repeat("s", 32)}
	for _, mode := range [][]string{secret, {"--auth-mode", "open"}} {
		for _, targets := range []string{"all", "document", "signature"} {
			c := parse(t, nil, append(mode, "--targets", targets)...)
			c.Shared.AuditSigningKey = ""
			if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--audit-signing-key") || !strings.Contains(err.Error(), "docstream audit keygen") {
				t.Fatalf("%v %s without a key: %v, want a refusal naming --audit-signing-key and docstream audit keygen", mode, targets, err)
			}
		}
	}
	for _, args := range [][]string{append(secret, "--targets", "cdc,indexer,search"), {"--auth-mode", "open", "--targets", "cdc,indexer,search,realtime,gateway"}} {
		c := parse(t, nil, args...)
		c.Shared.AuditSigningKey = ""
		if _, err := prepare(c); err != nil {
			t.Fatalf("%v without a key: %v", args, err)
		}
	}
	c := parse(t, nil, append(secret, "--audit-signing-key", "ed25519:not base64")...)
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--audit-signing-key") {
		t.Fatalf("a malformed key: %v", err)
	}
	c = parse(t, map[string]string{"AUDIT_VERIFY_KEYS": "ed25519:not base64"}, secret...)
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--audit-verify-keys") {
		t.Fatalf("a malformed old key: %v", err)
	}
}

// serve refuses to run the webhooks target without --webhooks-secret-key
// (a key generated per data dir would differ between instances), naming
// the flag, in either auth mode; without the target, or in dev, it starts.
func TestServeRefusesWebhooksWithoutASecretKey(t *testing.T) {
	for _, args := range [][]string{{"--auth-mode", "open"}, {"--auth-jwt-secret", strings.Repeat("s", 32), "--targets", "webhooks"}} {
		c := parse(t, nil, args...)
		c.Webhooks.SecretKey = ""
		if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--webhooks-secret-key") {
			t.Fatalf("%v without a key: %v, want a refusal naming --webhooks-secret-key", args, err)
		}
	}
	c := parse(t, nil, "--auth-mode", "open", "--targets", "document,cdc,gateway")
	c.Webhooks.SecretKey = ""
	if _, err := prepare(c); err != nil {
		t.Fatalf("without the webhooks target: %v", err)
	}
	c = parse(t, nil, "--auth-mode", "open")
	c.Webhooks.SecretKey, c.Shared.Dev = "", true
	if _, err := prepare(c); err != nil {
		t.Fatalf("dev (which generates a key in its data dir): %v", err)
	}
	c = parse(t, nil, "--auth-mode", "open", "--webhooks-secret-key", "too short")
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--webhooks-secret-key") {
		t.Fatalf("a malformed key: %v", err)
	}
}
