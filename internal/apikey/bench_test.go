package apikey

import (
	"context"
	"testing"
)

// BenchmarkVerifyKey is what checking an API key costs a request: cached
// (the row is younger than --apikey-cache-ttl: a SHA-256 and a map
// lookup) and uncached (one primary-key SELECT on the test PostgreSQL).
// The last-used write happens once a minute per key, so not in the loop.
func BenchmarkVerifyKey(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"cached", true}, {"uncached", false}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := defaultConfig()
			if !bc.cached {
				cfg.CacheTTL = 0
			}
			pool := open(b, testenvDatabase(b))
			svc := NewService(NewStore(pool), nil, Config{AdminOpen: true}, discard())
			_, raw, err := svc.Create(context.Background(), CreateInput{Name: "bench", Scopes: []string{"read"}})
			if err != nil {
				b.Fatal(err)
			}
			v := NewVerifier(NewStore(pool), cfg, discard())
			ctx := context.Background()
			if _, err := v.VerifyKey(ctx, raw); err != nil { // the one last-used write, and a warm cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.VerifyKey(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
