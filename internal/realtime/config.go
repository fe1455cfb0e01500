package realtime

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is the realtime target's configuration. Start from DefaultConfig;
// Validate refuses a zero where zero has no meaning.
type Config struct {
	Addr string // WebSocket service listen address
	// Credentials are verified by the shared auth.Config (--auth-*, with
	// the --realtime-jwt-* flags as its aliases).
	// Origins is a comma-separated list of browser origin patterns
	// allowed to connect (empty: any).
	Origins string
	Hub     Options
}

// DefaultConfig is the realtime service's configuration when nothing is
// set: the one place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{
		Addr: ":8004",
		Hub: Options{
			QueueSize:    64,
			WriteTimeout: 10 * time.Second,
			PingInterval: 30 * time.Second,
			PongTimeout:  10 * time.Second,
			ReadLimit:    4096,
		},
	}
}

// RegisterFlags registers the realtime target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "realtime-addr", c.Addr, "realtime WebSocket service listen address")
	fs.StringVar(&c.Origins, "realtime-allowed-origins", c.Origins, "comma-separated browser origin patterns allowed to connect (empty: any; credentials are never cookies)")
	fs.IntVar(&c.Hub.QueueSize, "realtime-queue-size", c.Hub.QueueSize, "events queued per connection before a slow client is closed with 1013 (at least 1)")
	fs.DurationVar(&c.Hub.WriteTimeout, "realtime-write-timeout", c.Hub.WriteTimeout, "longest a write to one client may block before it is dropped (must be > 0)")
	fs.DurationVar(&c.Hub.PingInterval, "realtime-ping-interval", c.Hub.PingInterval, "how often each client is pinged (must be > 0)")
	fs.DurationVar(&c.Hub.PongTimeout, "realtime-pong-timeout", c.Hub.PongTimeout, "how long a ping waits for its pong before the connection is dropped as dead (must be > 0)")
}

// Validate refuses a configuration the service cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	if c.Hub.QueueSize < 1 {
		return fmt.Errorf("realtime: --realtime-queue-size must be at least 1, got %d", c.Hub.QueueSize)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--realtime-write-timeout", c.Hub.WriteTimeout},
		{"--realtime-ping-interval", c.Hub.PingInterval},
		{"--realtime-pong-timeout", c.Hub.PongTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("realtime: %s must be > 0, got %v", d.flag, d.v)
		}
	}
	if c.Hub.ReadLimit < 1 {
		return errors.New("realtime: read limit must be at least 1 byte")
	}
	return nil
}

// OriginPatterns is Origins as a list.
func (c *Config) OriginPatterns() []string {
	var out []string
	for _, p := range strings.Split(c.Origins, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
