package search

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
)

// Config is the search target's configuration. Start from DefaultConfig;
// Validate refuses a zero where zero has no meaning.
type Config struct {
	Addr string // REST API listen address
	// MaxWait bounds how long a request with min_lsn waits for the
	// indexer; after it, the answer carries "stale": true.
	MaxWait time.Duration
	// Poll is how often a waiting request re-reads the applied LSN.
	Poll time.Duration
	// ExtractionWait bounds how long a search with wait_for=extraction
	// waits for the documents' extractions to end (OCR takes seconds a
	// page); after it, the answer carries "stale": true.
	ExtractionWait time.Duration
	// CacheEntries bounds the search result cache (results of the index's
	// current generation; cache.go); 0 disables it.
	CacheEntries int
	// Extractions answers wait_for=extraction (the extractor's Waiter,
	// set by the app; nil: the parameter is refused).
	Extractions Extractions
	// Admission bounds the searches in flight (nil: no bound); it comes
	// from the shared --admission-* flags.
	Admission *httpx.Admission
	// Mode is the deployment's --auth-mode. In auth.ModeRequired every
	// query is restricted to the documents the caller (the principal on
	// the request's context) may view; admins and open mode see all.
	Mode auth.Mode
	// Auth verifies each request's credential and puts its principal on
	// the context (nil: every caller anonymous, as in tests); it comes
	// from the shared --auth-* flags.
	Auth *auth.Authenticator
}

// DefaultConfig is the search service's configuration when nothing is
// set: the one place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{Addr: ":8003", MaxWait: 2 * time.Second, Poll: 20 * time.Millisecond, ExtractionWait: 30 * time.Second, CacheEntries: 1000}
}

// RegisterFlags registers the search target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "search-addr", c.Addr, "search REST API listen address")
	fs.DurationVar(&c.MaxWait, "search-max-wait", c.MaxWait, "longest a search with min_lsn / X-Min-LSN waits for the indexer before answering with \"stale\": true (must be > 0)")
	fs.IntVar(&c.CacheEntries, "search-cache-entries", c.CacheEntries, "search results kept for reuse until the index changes (keyed by the query and the caller's access; never older than a request's min_lsn); 0: no cache")
	fs.DurationVar(&c.ExtractionWait, "search-extraction-wait", c.ExtractionWait, "longest a search with wait_for=extraction waits for its documents' extractions to end before answering with \"stale\": true (must be > 0)")
}

// Validate refuses a configuration the service cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	if c.MaxWait <= 0 {
		return fmt.Errorf("search: --search-max-wait must be > 0, got %v", c.MaxWait)
	}
	if c.ExtractionWait <= 0 {
		return fmt.Errorf("search: --search-extraction-wait must be > 0, got %v", c.ExtractionWait)
	}
	if c.CacheEntries < 0 {
		return fmt.Errorf("search: --search-cache-entries must be >= 0, got %d", c.CacheEntries)
	}
	if c.Poll <= 0 {
		return fmt.Errorf("search: poll interval must be > 0, got %v", c.Poll)
	}
	return nil
}
