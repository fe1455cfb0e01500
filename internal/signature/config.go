package signature

import (
	"fmt"
	"net/url"
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
	// Workflow serves signing requests (nil: those routes answer 503).
	Workflow *Workflow
	// Signing configures the workflow: public URL, mail, scheduler.
	Signing SigningConfig
}

// SigningConfig configures signing requests (flags --public-url,
// --signing-*).
type SigningConfig struct {
	PublicURL     string
	SMTPURL       string
	MailFrom      string
	MailPerMinute int
	Scheduler     SchedulerOptions
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
		Signing: SigningConfig{PublicURL: "http://localhost:8000", MailFrom: "docstream@localhost", MailPerMinute: 30,
			Scheduler: SchedulerOptions{Interval: time.Second, MaxBackoff: time.Minute}},
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
	fs.StringVar(&c.Signing.PublicURL, "public-url", c.Signing.PublicURL, "public base URL of docstream (the gateway) that invitation links mailed to signing recipients start with")
	fs.StringVar(&c.Signing.SMTPURL, "signing-smtp-url", c.Signing.SMTPURL, "SMTP server that signing invitations are sent through, smtp://[user:password@]host:port (empty: the log notifier writes each mail, links included, to standard error: for development only)")
	fs.StringVar(&c.Signing.MailFrom, "signing-mail-from", c.Signing.MailFrom, "From address of signing mails")
	fs.IntVar(&c.Signing.MailPerMinute, "signing-mail-per-minute", c.Signing.MailPerMinute, "signing mails one principal (or client address) may cause per minute by sending or resending signing requests (a draft is counted when sent), counted in Redis and shared by every instance (must be > 0)")
	fs.DurationVar(&c.Signing.Scheduler.Interval, "signing-scheduler-interval", c.Signing.Scheduler.Interval, "how often the signing scheduler polls its due-table for notifications, reminders, expiries and status updates (must be > 0)")
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
		{"--signing-scheduler-interval", c.Signing.Scheduler.Interval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("signature: %s must be > 0, got %v", d.flag, d.v)
		}
	}
	if c.Signing.MailPerMinute <= 0 {
		return fmt.Errorf("signature: --signing-mail-per-minute must be > 0, got %d", c.Signing.MailPerMinute)
	}
	if u, err := url.Parse(c.Signing.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("signature: --public-url must be an http(s) URL, got %q", c.Signing.PublicURL)
	}
	if c.Signing.SMTPURL != "" {
		if _, err := NewSMTPNotifier(c.Signing.SMTPURL, c.Signing.MailFrom); err != nil {
			return err
		}
	}
	if c.DocumentGRPC == "" {
		return fmt.Errorf("signature: --%s must not be empty", DocumentGRPCFlag)
	}
	return c.Sweep.Validate("signature")
}
