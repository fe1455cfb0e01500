package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/realtime"
)

func init() {
	register(&target{name: "realtime", bind: func(fs *pflag.FlagSet) startFunc {
		var (
			addr, secret, origins string
			auth                  realtime.AuthConfig
			hub                   realtime.Options
		)
		fs.StringVar(&addr, "realtime-addr", ":8004", "realtime WebSocket service listen address")
		fs.StringVar(&secret, "realtime-jwt-secret", "", "HS256 secret, at least 32 bytes, verifying WebSocket tokens (and signing /auth/token's in development); in dev, when empty, a random one kept in <data-dir>/realtime.secret")
		fs.StringVar(&auth.JWKSURL, "realtime-jwks-url", "", "JWKS URL of the RS256/ES256/EdDSA keys accepted for WebSocket tokens")
		fs.StringVar(&auth.Issuer, "realtime-jwt-issuer", "", "required iss of tokens (empty: not checked)")
		fs.StringVar(&auth.Audience, "realtime-jwt-audience", "", "required aud of tokens (empty: not checked)")
		fs.DurationVar(&auth.TokenTTL, "realtime-token-ttl", 24*time.Hour, "lifetime of tokens issued by GET /auth/token (development only)")
		fs.StringVar(&origins, "realtime-allowed-origins", "", "comma-separated browser origin patterns allowed to connect (empty: any; tokens are never cookies)")
		fs.IntVar(&hub.QueueSize, "realtime-queue-size", 64, "messages queued per connection before a slow client is closed with 1013")
		fs.DurationVar(&hub.WriteTimeout, "realtime-write-timeout", 10*time.Second, "longest a write to one client may block before it is dropped")
		fs.DurationVar(&hub.PingInterval, "realtime-ping-interval", 30*time.Second, "how often each client is pinged")
		fs.DurationVar(&hub.PongTimeout, "realtime-pong-timeout", 10*time.Second, "how long a ping waits for its pong before the connection is dropped as dead")
		return func(ctx context.Context, sys *system) error {
			log := sys.log.With("service", "realtime")
			auth.Secret = []byte(secret)
			if secret == "" && auth.JWKSURL == "" {
				if !sys.cfg.Dev {
					return errors.New("realtime needs --realtime-jwt-secret (REALTIME_JWT_SECRET) or --realtime-jwks-url")
				}
				// A random secret kept in the data dir, so that dev tokens
				// survive a restart of `docstream dev` like its data does.
				s, err := devSecret(filepath.Join(sys.cfg.DataDir, "realtime.secret"))
				if err != nil {
					return err
				}
				auth.Secret = s
				log.Info("no --realtime-jwt-secret: using the development secret in the data dir")
			}
			auth.Log = log
			a, err := realtime.NewAuthenticator(sys.ctx, auth)
			if err != nil {
				return err
			}
			b, err := sys.Bus(ctx)
			if err != nil {
				return err
			}
			hub.Bus, hub.Log = b, log
			h := realtime.NewHub(hub)
			var patterns []string
			for _, p := range strings.Split(origins, ",") {
				if p = strings.TrimSpace(p); p != "" {
					patterns = append(patterns, p)
				}
			}
			srv := realtime.NewServer(h, a, realtime.ServerConfig{Dev: sys.cfg.Dev, OriginPatterns: patterns, Log: log})
			ln, err := sys.Listen("realtime", addr)
			if err != nil {
				return err
			}
			handler := srv.Handler(sys.ctx, httpx.Check{Name: "bus", Probe: h.Ready})
			sys.Go("realtime consumer", h.Consume)
			sys.Go("realtime http", func(ctx context.Context) error {
				err := httpx.Serve(ctx, ln, handler, log, sys.cfg.HTTP)
				// Serve does not wait for hijacked connections: every
				// WebSocket has been told 1001 through ctx; wait for them.
				h.Wait()
				return err
			})
			return nil
		}
	}})
}

// devSecret reads the secret at path, creating a random one first.
func devSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := realtime.RandomSecret()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}
