package indexer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/httpx"
)

// Config tunes the indexer. Start from DefaultConfig; Validate refuses a
// zero where zero has no meaning.
type Config struct {
	// Addr is where the indexer serves /health/* and /metrics.
	Addr       string
	Group      string        // durable consumer group
	MaxBatch   int           // events per batch
	MaxWait    time.Duration // age of a partial batch
	ContentCap int64         // bytes of text content indexed per document (<0: none)
	// IdleGrace is how long the indexer must have been idle before it
	// trusts a watermark (0: 2×MaxWait + 100ms).
	IdleGrace time.Duration
	// RetryMax caps the backoff between attempts to write a batch;
	// RetryFor is how long one delivery keeps retrying before handing the
	// batch back to the bus.
	RetryMax time.Duration
	RetryFor time.Duration
}

// DefaultConfig is the indexer's configuration when nothing is set: the
// one place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{
		Addr:       ":8006",
		Group:      "indexer",
		MaxBatch:   1000,
		MaxWait:    200 * time.Millisecond,
		ContentCap: 1 << 20,
		RetryMax:   10 * time.Second,
		RetryFor:   30 * time.Second,
	}
}

// RegisterFlags registers the indexer target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "indexer-addr", c.Addr, "indexer health and metrics listen address (/health/*, /metrics)")
	fs.StringVar(&c.Group, "indexer-group", c.Group, "durable consumer group on cdc.documents; indexers in one group share the work (not empty)")
	fs.IntVar(&c.MaxBatch, "indexer-batch-size", c.MaxBatch, "most change events written to the index in one batch (at least 1)")
	fs.DurationVar(&c.MaxWait, "indexer-batch-wait", c.MaxWait, "longest a partial batch waits for more events (must be > 0)")
	fs.Int64Var(&c.ContentCap, "indexer-content-cap", c.ContentCap, "bytes of text/* content read from object storage and indexed per document (negative: none; 0 is refused)")
}

// Validate refuses a configuration the indexer cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("indexer: --indexer-group must not be empty")
	case c.MaxBatch < 1:
		return fmt.Errorf("indexer: --indexer-batch-size must be at least 1, got %d", c.MaxBatch)
	case c.MaxWait <= 0:
		return fmt.Errorf("indexer: --indexer-batch-wait must be > 0, got %v", c.MaxWait)
	case c.ContentCap == 0:
		return errors.New("indexer: --indexer-content-cap 0: give a positive byte count, or a negative one to index no content")
	case c.RetryMax <= 0 || c.RetryFor <= 0:
		return errors.New("indexer: retry bounds must be > 0")
	}
	return nil
}

// Handler serves the indexer's /health/live, /health/ready and /metrics
// (applied LSN, batches, retries): a worker has no API, but it answers
// health and metrics like every service.
func (x *Indexer) Handler() http.Handler {
	mux := http.NewServeMux()
	httpx.Routes(mux,
		httpx.Check{Name: "index", Probe: x.idx.Ping},
		httpx.Check{Name: "bus", Probe: x.bus.Ping},
		// An indexer whose subscription stalled indexes nothing: unready.
		httpx.Check{Name: "consumers", Critical: true, Probe: func(context.Context) error {
			return bus.CheckConsumers(x.bus, ConsumerName, ExtractionsConsumerName, WatermarkConsumerName)
		}},
	)
	return httpx.Wrap("indexer", x.log, mux)
}
