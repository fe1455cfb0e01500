package signature

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/httpx"
)

// Config is the signature target's configuration. Start from
// DefaultConfig; Validate refuses a zero where zero has no meaning.
type Config struct {
	Addr string // REST API listen address
	// DocumentGRPC is the document service's gRPC address.
	DocumentGRPC string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies httpx.Prefixes
	Options        Options
	Reconciler     ReconcilerOptions
	// Sweep removes objects of the bucket no row owns.
	Sweep blob.SweepConfig
	// Admission bounds in-flight requests per route class (nil: none); it
	// comes from the shared --admission-* flags.
	Admission *httpx.Admission
	// Auth verifies each request's credential and puts its principal on
	// the context (nil: every caller anonymous, as in tests); it comes
	// from the shared --auth-* flags.
	Auth *auth.Authenticator
}

// DefaultConfig is the signature service's configuration when nothing is
// set: the one place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{
		Addr:           ":8002",
		DocumentGRPC:   "127.0.0.1:50051",
		TrustedProxies: httpx.MustPrefixes("127.0.0.1,::1"),
		Options:        Options{CallTimeout: 2 * time.Second, Retries: 2, RetryBackoff: 50 * time.Millisecond},
		Reconciler:     ReconcilerOptions{Interval: time.Second, MaxBackoff: 5 * time.Second},
		Sweep:          blob.DefaultSweepConfig(),
	}
}

// DocumentGRPCFlag names the flag of Config.DocumentGRPC: when the document
// service runs in the same process, its address is followed unless this
// flag is given.
const DocumentGRPCFlag = "signature-document-grpc"

// RegisterFlags registers the signature target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "signature-addr", c.Addr, "signature REST API listen address")
	fs.StringVar(&c.DocumentGRPC, DocumentGRPCFlag, c.DocumentGRPC, "address of the document service's gRPC API: host:port, a comma-separated list of them, or dns:///name:port (every address the name resolves to), balanced round robin; when the document target runs in the same process and this is not given, its --document-grpc-addr")
	fs.Var(&c.TrustedProxies, "signature-trusted-proxies", "peers (CIDRs) whose X-Forwarded-For is trusted for a signer's ip_address")
	fs.DurationVar(&c.Options.CallTimeout, "signature-grpc-timeout", c.Options.CallTimeout, "deadline of one gRPC call to the document service (must be > 0)")
	fs.Uint64Var(&c.Options.Retries, "signature-grpc-retries", c.Options.Retries, "retries (exponential backoff) of a failed gRPC call made while serving a request (0: none)")
	fs.DurationVar(&c.Options.RetryBackoff, "signature-grpc-backoff", c.Options.RetryBackoff, "first backoff between those retries (must be > 0)")
	fs.DurationVar(&c.Reconciler.Interval, "signature-reconcile-interval", c.Reconciler.Interval, "how often pending document status updates are retried from the outbox (must be > 0)")
	fs.DurationVar(&c.Reconciler.MaxBackoff, "signature-reconcile-max-backoff", c.Reconciler.MaxBackoff, "longest delay between attempts of one pending status update (must be > 0)")
	c.Sweep.RegisterFlags(fs, "signature")
}

// Validate refuses a configuration the service cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--signature-grpc-timeout", c.Options.CallTimeout},
		{"--signature-grpc-backoff", c.Options.RetryBackoff},
		{"--signature-reconcile-interval", c.Reconciler.Interval},
		{"--signature-reconcile-max-backoff", c.Reconciler.MaxBackoff},
	} {
		if d.v <= 0 {
			return fmt.Errorf("signature: %s must be > 0, got %v", d.flag, d.v)
		}
	}
	if c.DocumentGRPC == "" {
		return fmt.Errorf("signature: --%s must not be empty", DocumentGRPCFlag)
	}
	return c.Sweep.Validate("signature")
}
