package document

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/httpx"
)

// Config is the document target's configuration. Start from DefaultConfig;
// Validate refuses a zero where zero has no meaning.
type Config struct {
	Addr     string        // REST API listen address
	GRPCAddr string        // gRPC listen address
	CacheTTL time.Duration // how long a document stays in the Redis cache
	// MaxUpload is the largest multipart upload, bytes.
	MaxUpload int64
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies httpx.Prefixes
	// CacheInvalidator applies cdc.documents to the Redis cache (the
	// Invalidator), healing invalidations missed in an outage.
	CacheInvalidator bool
	// InvalidatorOff, set by the wiring, is why the invalidator does not
	// run although CacheInvalidator is set: the readiness detail of
	// "cache-invalidator" says so instead of the check being absent.
	InvalidatorOff string
	// LocalCacheSize bounds the in-process document cache (entries; 0: no
	// in-process cache). It needs the change stream (see LocalCache).
	LocalCacheSize int
	// LocalCacheMaxLag is how old the change stream's newest evidence may
	// be before the in-process cache is bypassed (and emptied).
	LocalCacheMaxLag time.Duration
	// ViewsFlush is how often views counted in memory are added to Redis:
	// the most a kill -9 can lose.
	ViewsFlush time.Duration
	// ContentJournalMax is the largest content a create makes durable
	// through the content journal (a copy committed with its row, its
	// blob synced in the background: Journal) instead of its blob's own
	// fsyncs before the commit; 0: none. File buckets only.
	ContentJournalMax int64
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

// maxContentJournal bounds --document-content-journal-max: every journalled
// byte is written twice to the WAL-backed table and held in memory per
// request, which only small content is worth.
const maxContentJournal = 1 << 20

// DefaultConfig is the document service's configuration when nothing is
// set: the one place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{
		Addr:              ":8005",
		GRPCAddr:          ":50051",
		CacheTTL:          300 * time.Second,
		MaxUpload:         httpx.DefaultMaxUpload,
		TrustedProxies:    httpx.MustPrefixes("127.0.0.1,::1"),
		CacheInvalidator:  true,
		LocalCacheSize:    10_000,
		LocalCacheMaxLag:  3 * time.Second,
		ViewsFlush:        time.Second,
		ContentJournalMax: 64 << 10,
		Sweep:             blob.DefaultSweepConfig(),
	}
}

// RegisterFlags registers the document target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "document-addr", c.Addr, "document REST API listen address")
	fs.StringVar(&c.GRPCAddr, "document-grpc-addr", c.GRPCAddr, "document gRPC listen address")
	fs.DurationVar(&c.CacheTTL, "document-cache-ttl", c.CacheTTL, "how long a document stays in the Redis cache (must be > 0; no --redis-url: no cache)")
	fs.Int64Var(&c.MaxUpload, "document-max-upload", c.MaxUpload, "largest multipart upload in bytes (inline JSON content is capped at 10 MiB; at least 1)")
	fs.BoolVar(&c.CacheInvalidator, "document-cache-invalidator", c.CacheInvalidator, "apply every change on cdc.documents to the Redis cache (heals invalidations missed in an outage; runs only beside the cdc target or with --bus-url; otherwise off, with a warning)")
	fs.IntVar(&c.LocalCacheSize, "document-local-cache-size", c.LocalCacheSize, "documents kept in the in-process cache in front of Redis, coherent by the change stream (needs it as --document-cache-invalidator does; 0: no in-process cache)")
	fs.DurationVar(&c.LocalCacheMaxLag, "document-local-cache-max-lag", c.LocalCacheMaxLag, "bypass (and empty) the in-process cache while its change-stream evidence is older than this: the longest a change made through another instance can go unseen if the stream breaks (must be > the CDC watermark interval)")
	fs.DurationVar(&c.ViewsFlush, "document-views-flush", c.ViewsFlush, "how often views counted in memory are added to Redis; a kill -9 loses at most this much of views (must be > 0)")
	fs.Int64Var(&c.ContentJournalMax, "document-content-journal-max", c.ContentJournalMax, "content of up to this many bytes is made durable by a copy committed with its row in PostgreSQL (its file blob synced in the background and checked at start) instead of the blob's own fsyncs before the 201; file:// buckets only (0: always sync the blob first; at most 1048576)")
	fs.Var(&c.TrustedProxies, "document-trusted-proxies", "peers (CIDRs) whose X-Forwarded-For is trusted for the viewer's address")
	c.Sweep.RegisterFlags(fs, "document")
}

// Validate refuses a configuration the service cannot run with, naming the
// flag.
func (c *Config) Validate() error {
	if c.CacheTTL <= 0 {
		return fmt.Errorf("document: --document-cache-ttl must be > 0, got %v", c.CacheTTL)
	}
	if c.MaxUpload < 1 {
		return fmt.Errorf("document: --document-max-upload must be at least 1 byte, got %d", c.MaxUpload)
	}
	if c.LocalCacheSize < 0 {
		return fmt.Errorf("document: --document-local-cache-size must be >= 0, got %d", c.LocalCacheSize)
	}
	if c.LocalCacheMaxLag <= 0 {
		return fmt.Errorf("document: --document-local-cache-max-lag must be > 0, got %v", c.LocalCacheMaxLag)
	}
	if c.ViewsFlush <= 0 {
		return fmt.Errorf("document: --document-views-flush must be > 0, got %v", c.ViewsFlush)
	}
	if c.ContentJournalMax < 0 || c.ContentJournalMax > maxContentJournal {
		return fmt.Errorf("document: --document-content-journal-max must be 0-%d, got %d", maxContentJournal, c.ContentJournalMax)
	}
	return c.Sweep.Validate("document")
}
