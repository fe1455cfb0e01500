package auth

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkAuthenticate is what verifying a bearer token costs per request:
// HS256 and RS256 (JWKS) without the cache, and a cache hit (the same
// token again, the common case).
func BenchmarkAuthenticate(b *testing.B) {
	k := rsaKey(b)
	j := newJWKS(b, map[string]any{"k1": k})
	claims := func() jwt.MapClaims { return with(validClaims(), "exp", time.Now().Add(time.Hour).Unix()) }
	for _, bc := range []struct {
		name  string
		cache int
		token func() string
	}{
		{"HS256 uncached", 0, func() string { return hsToken(b, testSecret, claims()) }},
		{"RS256 uncached", 0, func() string { return sign(b, jwt.SigningMethodRS256, "k1", k, claims()) }},
		{"cache hit", 1000, func() string { return hsToken(b, testSecret, claims()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := newAuth(b, func(c *Config) { c.JWKSURL = j.url; c.AudienceAny = true; c.CacheSize = bc.cache })
			tok := bc.token()
			ctx := context.Background()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
