package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/proto/documentpb"
)

func init() {
	register(&target{name: "signature", bind: func(fs *pflag.FlagSet) startFunc {
		var (
			addr, docGRPC, proxies string
			opts                   signature.Options
			rec                    signature.ReconcilerOptions
			sweep                  = blob.DefaultSweepConfig()
		)
		fs.StringVar(&addr, "signature-addr", ":8002", "signature REST API listen address")
		fs.StringVar(&docGRPC, "signature-document-grpc", "127.0.0.1:50051", "address of the document service's gRPC API (used in every mode, also when both run in one process)")
		fs.StringVar(&proxies, "signature-trusted-proxies", "127.0.0.1,::1", "peers (CIDRs) whose X-Forwarded-For is trusted for a signer's ip_address")
		fs.DurationVar(&opts.CallTimeout, "signature-grpc-timeout", 2*time.Second, "deadline of one gRPC call to the document service")
		fs.Uint64Var(&opts.Retries, "signature-grpc-retries", 2, "retries (exponential backoff) of a failed gRPC call made while serving a request")
		fs.DurationVar(&opts.RetryBackoff, "signature-grpc-backoff", 50*time.Millisecond, "first backoff between those retries")
		fs.DurationVar(&rec.Interval, "signature-reconcile-interval", time.Second, "how often pending document status updates are retried from the outbox")
		fs.DurationVar(&rec.MaxBackoff, "signature-reconcile-max-backoff", 5*time.Second, "longest delay between attempts of one pending status update")
		sweep.RegisterFlags(fs, "signature")
		return func(ctx context.Context, sys *system) error {
			trusted, err := httpx.ParsePrefixes(proxies)
			if err != nil {
				return err
			}
			if err := sweep.Validate("signature"); err != nil {
				return err
			}
			pool, err := sys.Pool(ctx)
			if err != nil {
				return err
			}
			bucket, err := sys.Bucket(ctx, signature.Bucket)
			if err != nil {
				return err
			}
			conn, err := signature.Dial(docGRPC)
			if err != nil {
				return err
			}
			// Closed with the other shared resources, after both the HTTP
			// server and the reconciler have stopped.
			sys.OnClose(conn.Close)
			log := sys.log.With("service", "signature")
			store := signature.NewStore(pool)
			svc := signature.NewService(store, documentpb.NewDocumentServiceClient(conn), bucket, opts, log)
			ln, err := sys.Listen("signature", addr)
			if err != nil {
				return err
			}
			handler := signature.NewServer(svc, log, trusted,
				httpx.Check{Name: "postgres", Probe: pool.Ping},
				httpx.Check{Name: "blob", Probe: blob.Ping(bucket)},
				// Signing works while the document service is down (the
				// status update waits in the outbox): reported, never a 503.
				httpx.Check{Name: "document-grpc", Probe: svc.PingDocuments},
			).WithAdmission(httpx.NewAdmission("signature", sys.cfg.Admission)).Handler()
			sys.Go("signature http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, sys.cfg.HTTP) })
			sys.Go("signature reconciler", signature.NewReconciler(svc, rec).Run)
			sys.Go("signature blob sweeper", blob.NewSweeper(bucket, signature.Bucket, svc.Ownership(), sweep, log).Run)
			return nil
		}
	}})
}
