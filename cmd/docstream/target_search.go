package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/search"
)

func init() {
	register(&target{name: "search", bind: func(fs *pflag.FlagSet) startFunc {
		var (
			addr    string
			maxWait time.Duration
		)
		fs.StringVar(&addr, "search-addr", ":8003", "search REST API listen address")
		fs.DurationVar(&maxWait, "search-max-wait", 2*time.Second, "longest a search with min_lsn / X-Min-LSN waits for the indexer before answering with \"stale\": true")
		return func(ctx context.Context, sys *system) error {
			idx, err := sys.SearchIndex(ctx)
			if err != nil {
				return err
			}
			ln, err := sys.Listen("search", addr)
			if err != nil {
				return err
			}
			log := sys.log.With("service", "search")
			handler := search.NewServer(idx, log, search.Options{MaxWait: maxWait,
				Admission: httpx.NewAdmission("search", sys.cfg.Admission)}).Handler()
			sys.Go("search http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, sys.cfg.HTTP) })
			return nil
		}
	}})
}
