package main

import (
	"context"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/indexer"
)

func init() {
	register(&target{name: "indexer", bind: func(fs *pflag.FlagSet) startFunc {
		var cfg indexer.Config
		var addr string
		fs.StringVar(&addr, "indexer-addr", ":8006", "indexer health and metrics listen address (/health/*, /metrics)")
		fs.StringVar(&cfg.Group, "indexer-group", "indexer", "durable consumer group on cdc.documents; indexers in one group share the work")
		fs.IntVar(&cfg.MaxBatch, "indexer-batch-size", 500, "most change events written to the index in one batch")
		fs.DurationVar(&cfg.MaxWait, "indexer-batch-wait", 200*time.Millisecond, "longest a partial batch waits for more events")
		fs.Int64Var(&cfg.ContentCap, "indexer-content-cap", 1<<20, "bytes of text/* content read from object storage and indexed per document (negative: none)")
		return func(ctx context.Context, sys *system) error {
			idx, err := sys.SearchIndex(ctx)
			if err != nil {
				return err
			}
			b, err := sys.Bus(ctx)
			if err != nil {
				return err
			}
			bucket, err := sys.Bucket(ctx, indexer.ContentBucket)
			if err != nil {
				return err
			}
			log := sys.log.With("service", "indexer")
			x := indexer.New(idx, bucket, cfg, log)
			ln, err := sys.Listen("indexer", addr)
			if err != nil {
				return err
			}
			// A worker has no API, but it still answers health and metrics
			// (applied LSN, batches, retries) like every service.
			mux := http.NewServeMux()
			httpx.Routes(mux,
				httpx.Check{Name: "index", Probe: idx.Ping},
				httpx.Check{Name: "bus", Probe: b.Ping},
			)
			sys.Go("indexer", func(ctx context.Context) error { return x.Run(ctx, b) })
			sys.Go("indexer http", func(ctx context.Context) error {
				return httpx.Serve(ctx, ln, httpx.Wrap("indexer", log, mux), log, sys.cfg.HTTP)
			})
			return nil
		}
	}})
}
