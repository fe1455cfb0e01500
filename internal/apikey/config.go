package apikey

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
)

// MaxCacheTTL bounds --apikey-cache-ttl: it is how long a revoked key may
// still work on another instance than the one that revoked it.
const MaxCacheTTL = time.Minute

// Config configures API keys: the verifier every service runs and the REST
// API the document service serves. Start from DefaultConfig.
type Config struct {
	// CacheTTL is how long a verified key's row is reused in-process
	// before PostgreSQL is asked again: the bound on how long a revoked or
	// expired-by-revocation key keeps working on an instance that did not
	// revoke it (the revoking instance forgets it at once). 0: no cache.
	CacheTTL time.Duration
	// TouchEvery is how often, at most, last_used_at is written per key.
	TouchEvery time.Duration
	// AdminOpen is set in `docstream dev` in open mode
	// (auth.Authenticator.AdminOpen): managing keys is open to anyone.
	// Elsewhere it needs an admin principal, also in --auth-mode=open.
	AdminOpen bool
	// Auth verifies each request's credential (the document service's
	// authenticator); nil: every request is anonymous.
	Auth *auth.Authenticator
	// Admission bounds in-flight requests (nil: none); the document
	// service's, from the shared --admission-* flags.
	Admission *httpx.Admission
}

// DefaultConfig is the API keys' configuration when nothing is set.
func DefaultConfig() Config {
	return Config{CacheTTL: 5 * time.Second, TouchEvery: time.Minute}
}

// RegisterFlags registers the API keys' flags, defaulting to c's values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.CacheTTL, "apikey-cache-ttl", c.CacheTTL, "how long a verified API key is reused in-process: the bound on how long a key revoked on another instance keeps working (0: ask PostgreSQL on every request; at most 1m)")
}

// Validate refuses a configuration the verifier cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	if c.CacheTTL < 0 || c.CacheTTL > MaxCacheTTL {
		return fmt.Errorf("apikey: --apikey-cache-ttl must be between 0 and %v, got %v", MaxCacheTTL, c.CacheTTL)
	}
	if c.TouchEvery <= 0 {
		return fmt.Errorf("apikey: the last-used interval must be > 0, got %v", c.TouchEvery)
	}
	return nil
}
