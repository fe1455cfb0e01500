package webhooks

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
)

// Config tunes the webhooks target. Start from DefaultConfig.
type Config struct {
	// Addr serves /webhooks, /health/* and /metrics.
	Addr string
	// SecretKey encrypts signing secrets at rest (32 bytes, hex or base64).
	// serve refuses to run the target without one; `docstream dev`
	// generates one and keeps it in the data directory.
	SecretKey string
	// AllowPrivate lets endpoints reach loopback, private and link-local
	// addresses (default on in `docstream dev` only).
	AllowPrivate bool
	// Timeout bounds one delivery attempt (connect, send, answer).
	Timeout time.Duration
	// RetryFirst is the wait before the first retry; each next one doubles,
	// with jitter, up to RetryMax. RetryPeriod is how long a delivery is
	// retried (from its first attempt) before it is parked as failed.
	RetryFirst  time.Duration
	RetryMax    time.Duration
	RetryPeriod time.Duration
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long (a period, not a count: a short outage never disables it).
	DisableAfter time.Duration
	// Concurrency is how many endpoints this process delivers to at once
	// (one delivery in flight per endpoint): a slow endpoint holds one of
	// them, never another endpoint's queue.
	Concurrency int
	// Lease is how long an endpoint's queue stays claimed by a worker that
	// stopped answering (its process died mid-delivery) before another
	// instance takes it over; above Timeout.
	Lease time.Duration
	// Poll is how often idle workers look for due deliveries (the fan-out
	// also wakes the workers of its own process at once).
	Poll time.Duration
	// EventRetention is how long change events are kept for replay.
	EventRetention time.Duration
	// ResponseCap is how much of a response body is read (and the first
	// KiB of it kept for the deliveries list).
	ResponseCap int64

	// Auth verifies each request's credential (nil: open). Set by the app.
	Auth      *auth.Authenticator
	Admission *httpx.Admission
	// Resolver replaces the system resolver (tests).
	Resolver Resolver
}

// DefaultConfig is the configuration when nothing is set.
func DefaultConfig() Config {
	return Config{
		Addr:           ":8009",
		Timeout:        10 * time.Second,
		RetryFirst:     5 * time.Second,
		RetryMax:       time.Hour,
		RetryPeriod:    72 * time.Hour,
		DisableAfter:   72 * time.Hour,
		Concurrency:    64,
		Lease:          time.Minute,
		Poll:           500 * time.Millisecond,
		EventRetention: 7 * 24 * time.Hour,
		ResponseCap:    16 << 10,
	}
}

// AllowPrivateFlag is the flag `docstream dev` turns on by default.
const AllowPrivateFlag = "webhooks-allow-private"

// SecretKeyFlag is the flag `docstream dev` fills with a generated key.
const SecretKeyFlag = "webhooks-secret-key"

// RegisterFlags registers the webhooks target's flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "webhooks-addr", c.Addr, "webhooks listen address (/webhooks, /health/*, /metrics)")
	fs.StringVar(&c.SecretKey, SecretKeyFlag, c.SecretKey, "key encrypting webhook signing secrets at rest: 32 bytes as 64 hex digits or base64; every webhooks instance must have the same one (e.g. openssl rand -hex 32); required by serve; `docstream dev` generates one in <data-dir>/webhooks.key")
	fs.BoolVar(&c.AllowPrivate, AllowPrivateFlag, c.AllowPrivate, "let webhook endpoints reach loopback, private and link-local addresses (default true in `docstream dev` only)")
	fs.DurationVar(&c.Timeout, "webhooks-timeout", c.Timeout, "limit of one delivery attempt: connect, send and answer (must be > 0)")
	fs.DurationVar(&c.RetryFirst, "webhooks-retry-first", c.RetryFirst, "wait before a failed delivery's first retry; later ones double with jitter (must be > 0)")
	fs.DurationVar(&c.RetryMax, "webhooks-retry-max", c.RetryMax, "longest wait between two retries of a delivery (at least --webhooks-retry-first)")
	fs.DurationVar(&c.RetryPeriod, "webhooks-retry-period", c.RetryPeriod, "how long a delivery is retried from its first attempt before it is parked as failed (must be > 0)")
	fs.DurationVar(&c.DisableAfter, "webhooks-disable-after", c.DisableAfter, "disable an endpoint whose attempts have all failed for this long, keeping the reason (must be > 0)")
	fs.IntVar(&c.Concurrency, "webhooks-concurrency", c.Concurrency, "endpoints this process delivers to at once, one delivery in flight each (1-4096)")
	fs.DurationVar(&c.Lease, "webhooks-lease", c.Lease, "how long an endpoint's queue stays with a worker that stopped answering before another instance takes it (must exceed --webhooks-timeout)")
	fs.DurationVar(&c.EventRetention, "webhooks-event-retention", c.EventRetention, "how long change events are kept for POST /webhooks/{id}/replay (must be > 0)")
}

// Validate refuses a configuration the target cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("webhooks: --webhooks-timeout must be > 0, got %v", c.Timeout)
	case c.RetryFirst <= 0:
		return fmt.Errorf("webhooks: --webhooks-retry-first must be > 0, got %v", c.RetryFirst)
	case c.RetryMax < c.RetryFirst:
		return fmt.Errorf("webhooks: --webhooks-retry-max (%v) must be at least --webhooks-retry-first (%v)", c.RetryMax, c.RetryFirst)
	case c.RetryPeriod <= 0:
		return fmt.Errorf("webhooks: --webhooks-retry-period must be > 0, got %v", c.RetryPeriod)
	case c.DisableAfter <= 0:
		return fmt.Errorf("webhooks: --webhooks-disable-after must be > 0, got %v", c.DisableAfter)
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return fmt.Errorf("webhooks: --webhooks-concurrency must be 1-4096, got %d", c.Concurrency)
	case c.Lease <= c.Timeout:
		return fmt.Errorf("webhooks: --webhooks-lease (%v) must exceed --webhooks-timeout (%v)", c.Lease, c.Timeout)
	case c.EventRetention <= 0:
		return fmt.Errorf("webhooks: --webhooks-event-retention must be > 0, got %v", c.EventRetention)
	case c.Poll <= 0 || c.ResponseCap < 1:
		return errors.New("webhooks: poll and response cap must be > 0")
	}
	if c.SecretKey != "" {
		if _, err := NewCipher(c.SecretKey); err != nil {
			return err
		}
	}
	return nil
}
