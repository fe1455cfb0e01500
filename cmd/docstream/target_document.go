package main

import (
	"context"
	"net"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/httpx"
)

func init() {
	register(&target{name: "document", bind: func(fs *pflag.FlagSet) startFunc {
		var (
			addr, grpcAddr, proxies string
			ttl                     time.Duration
			maxUpload               int64
			invalidator             bool
			sweep                   = blob.DefaultSweepConfig()
		)
		fs.StringVar(&addr, "document-addr", ":8005", "document REST API listen address")
		fs.StringVar(&grpcAddr, "document-grpc-addr", ":50051", "document gRPC listen address")
		fs.DurationVar(&ttl, "document-cache-ttl", 300*time.Second, "how long a document stays in the Redis cache")
		fs.Int64Var(&maxUpload, "document-max-upload", 100<<20, "largest multipart upload in bytes (inline JSON content is capped at 10 MiB)")
		fs.BoolVar(&invalidator, "document-cache-invalidator", true, "apply every change on cdc.documents to the Redis cache (heals invalidations missed in an outage; needs the shared bus: --bus-url when services run in several processes)")
		fs.StringVar(&proxies, "document-trusted-proxies", "127.0.0.1,::1", "peers (CIDRs) whose X-Forwarded-For is trusted for the viewer's address")
		sweep.RegisterFlags(fs, "document")
		return func(ctx context.Context, sys *system) error {
			trusted, err := httpx.ParsePrefixes(proxies)
			if err != nil {
				return err
			}
			if err := sweep.Validate("document"); err != nil {
				return err
			}
			pool, err := sys.Pool(ctx)
			if err != nil {
				return err
			}
			rdb, err := sys.Redis()
			if err != nil {
				return err
			}
			bucket, err := sys.Bucket(ctx, document.Bucket)
			if err != nil {
				return err
			}
			log := sys.log.With("service", "document")
			cache := document.NewCache(rdb, ttl, log)
			svc := document.NewService(document.NewStore(pool), bucket, cache, log)
			var checks []httpx.Check
			if invalidator && rdb != nil {
				b, err := sys.Bus(ctx)
				if err != nil {
					return err
				}
				inv := document.NewInvalidator(cache, document.InvalidatorConfig{}, log)
				sys.Go("document cache invalidator", func(ctx context.Context) error { return inv.Run(ctx, b) })
				checks = append(checks, httpx.Check{Name: "cache-invalidator", Probe: inv.Health})
			}
			ln, err := sys.Listen("document", addr)
			if err != nil {
				return err
			}
			gln, err := sys.Listen("document-grpc", grpcAddr)
			if err != nil {
				ln.Close()
				return err
			}
			handler := document.NewServer(svc, document.HTTPConfig{MaxUpload: maxUpload, TrustedProxies: trusted, Checks: checks,
				Admission: httpx.NewAdmission("document", sys.cfg.Admission)}, log)
			sys.Go("document blob sweeper", blob.NewSweeper(bucket, document.Bucket, svc.Ownership(), sweep, log).Run)
			sys.Go("document http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, sys.cfg.HTTP) })
			gs, _ := document.NewGRPCServer(svc, log)
			sys.Go("document grpc", func(ctx context.Context) error { return serveGRPC(ctx, gs, gln) })
			return nil
		}
	}})
}

// serveGRPC serves until ctx is done, then lets in-flight calls finish
// (bounded by httpx.ShutdownTimeout).
func serveGRPC(ctx context.Context, gs *grpc.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(httpx.ShutdownTimeout):
		gs.Stop()
	}
	return nil
}
