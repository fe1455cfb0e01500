package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/indexer"
	"github.com/docstream/docstream/internal/ops"
	"github.com/docstream/docstream/internal/realtime"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/internal/webapp"
	"github.com/docstream/docstream/internal/webhooks"
	"github.com/docstream/docstream/proto/documentpb"
)

// Module is one target: a service or worker that runs alone
// (`serve --targets=<name>`) or with others in one process. Its row says
// everything about it; adding a target is adding a row and its start
// function.
type Module struct {
	Name string
	// Deps start before this module when both run in this process. They
	// are not started implicitly: in microservices mode a dependency runs
	// in another process.
	Deps []string
	// Needs are the shared resources the module may ask the System for.
	Needs []Resource
	// Flags registers the module's flags: its package's RegisterFlags.
	Flags func(c *Config, fs *pflag.FlagSet)
	// Metrics registers the module's own metrics (its package's
	// RegisterMetrics), before it starts: a process exports the metrics
	// of the targets it runs, and only those.
	Metrics func()
	// Validate refuses, before anything starts, a configuration the
	// module cannot run with.
	Validate func(c *Config) error
	// Ports are the addresses the module listens on, bound before any
	// module starts.
	Ports func(c *Config) []Port
	// Routes are the gateway routes this module serves, sent to its HTTP
	// port: the gateway's built-in routes, and what a user's gateway YAML
	// is checked against.
	Routes []gateway.Route
	// Wire adjusts c for the modules running in this process (in reports
	// whether a module does) before any starts.
	Wire func(c *Config, in func(module string) bool)
	// Start starts the module's components with r.Go and returns once they
	// are serving. ctx is done when the system stops.
	Start func(ctx context.Context, c *Config, r *Resources) error
}

// Port is one listen address of a module.
type Port struct {
	Name string // unique in the table: document, document-grpc, gateway-admin…
	Addr string
	// HTTP ports serve the module's API (if any), /health/live,
	// /health/ready and /metrics; the first is where the gateway sends the
	// module's routes. The others are gRPC.
	HTTP bool
	GRPC bool
}

// Modules is the module table, in start order: dependencies before
// dependents (TestDependenciesStartFirst).
func Modules() []*Module {
	return []*Module{
		{
			Name: "document",
			// The bus only for the cache invalidator (see Wire).
			Needs:    []Resource{PGPool, Redis, BucketOf(document.Bucket), Bus, Auth, APIKeys},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Document.RegisterFlags(fs) },
			Metrics:  document.RegisterMetrics,
			Validate: func(c *Config) error { return c.Document.Validate() },
			Ports: func(c *Config) []Port {
				return []Port{{Name: "document", Addr: c.Document.Addr, HTTP: true}, {Name: "document-grpc", Addr: c.Document.GRPCAddr, GRPC: true}}
			},
			// The document service owns PostgreSQL, so it also serves the
			// administration of API keys (internal/apikey).
			Routes: []gateway.Route{{Name: "documents", Paths: []string{"/documents"}}, {Name: "apikeys", Paths: []string{"/apikeys"}},
				// Open to anyone: the public keys of the audit trail.
				{Name: "audit-keys", Paths: []string{document.AuditKeysPath}}},
			Wire: func(c *Config, in func(string) bool) {
				// The invalidator consumes cdc.documents. A bus of its own
				// (embedded, no cdc target beside it) would never carry
				// one event, and would hold --bus-listen against the
				// process that does.
				if c.Document.CacheInvalidator && !in("cdc") && c.Shared.BusURL == "" {
					c.Document.InvalidatorOff = "no cdc target in this process and no --bus-url to reach the shared bus"
				}
			},
			Start: startDocument,
		},
		{
			Name:     "signature",
			Deps:     []string{"document"},
			Needs:    []Resource{PGPool, Redis, BucketOf(signature.Bucket), BucketOf(document.Bucket), Auth},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Signature.RegisterFlags(fs) },
			Metrics:  signature.RegisterMetrics,
			Validate: func(c *Config) error { return c.Signature.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "signature", Addr: c.Signature.Addr, HTTP: true}} },
			// Signatures of a document live in the signature service even
			// though the path is under /documents; the more specific
			// pattern wins.
			Routes: []gateway.Route{{Name: "signatures", Paths: []string{"/signatures", "/documents/{id}/signatures",
				"/documents/{id}/signing-requests", "/signing-requests", "/invitations"}}},
			Wire: func(c *Config, in func(string) bool) {
				// In one process the signature service follows the document
				// service's gRPC port unless told otherwise.
				if in("document") && !c.given(signature.DocumentGRPCFlag) {
					c.Signature.DocumentGRPC = loopbackDial(c.Document.GRPCAddr)
				}
			},
			Start: startSignature,
		},
		{
			Name:     "cdc",
			Needs:    []Resource{DirectDB, Bus},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.CDC.RegisterFlags(fs) },
			Metrics:  cdc.RegisterMetrics,
			Validate: func(c *Config) error { return c.CDC.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "cdc", Addr: c.CDC.Addr, HTTP: true}} },
			Start:    startCDC,
		},
		{
			Name:     "indexer",
			Deps:     []string{"cdc"},
			Needs:    []Resource{Index, Bus, BucketOf(indexer.ContentBucket)},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Indexer.RegisterFlags(fs) },
			Metrics:  indexer.RegisterMetrics,
			Validate: func(c *Config) error { return c.Indexer.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "indexer", Addr: c.Indexer.Addr, HTTP: true}} },
			Start:    startIndexer,
		},
		{
			Name: "extractor",
			// After cdc (its consumer starts with the stream live) and
			// after document (a thumbnail route beside the document's).
			Deps:     []string{"cdc", "document"},
			Needs:    []Resource{PGPool, Bus, BucketOf(extractor.Bucket), Auth},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Extractor.RegisterFlags(fs) },
			Validate: func(c *Config) error { return c.Extractor.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "extractor", Addr: c.Extractor.Addr, HTTP: true}} },
			// The more specific patterns win over the document service's
			// /documents.
			Routes: []gateway.Route{{Name: "extractor", Paths: []string{"/documents/{id}/thumbnail", "/documents/{id}/extraction",
				"/documents/{id}/extract", "/extractions"}}},
			Start: startExtractor,
		},
		{
			Name: "search",
			Deps: []string{"indexer"},
			// PostgreSQL only for wait_for=extraction (the extraction rows),
			// and only when a database is configured.
			Needs:    []Resource{Index, Auth, PGPool},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Search.RegisterFlags(fs) },
			Validate: func(c *Config) error { return c.Search.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "search", Addr: c.Search.Addr, HTTP: true}} },
			Routes:   []gateway.Route{{Name: "search", Paths: []string{"/search", "/suggest", "/aggregations"}}},
			Start:    startSearch,
		},
		{
			Name:     "realtime",
			Deps:     []string{"cdc"},
			Needs:    []Resource{PGPool, Bus, Auth},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Realtime.RegisterFlags(fs) },
			Metrics:  realtime.RegisterMetrics,
			Validate: func(c *Config) error { return c.Realtime.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "realtime", Addr: c.Realtime.Addr, HTTP: true}} },
			Routes:   []gateway.Route{{Name: "realtime", Paths: []string{"/ws", "/auth"}}},
			Start:    startRealtime,
		},
		{
			Name: "webhooks",
			// After cdc: its fan-out follows the change stream.
			Deps:     []string{"cdc"},
			Needs:    []Resource{PGPool, Bus, Auth},
			Flags:    func(c *Config, fs *pflag.FlagSet) { c.Webhooks.RegisterFlags(fs) },
			Metrics:  webhooks.RegisterMetrics,
			Validate: func(c *Config) error { return c.Webhooks.Validate() },
			Ports:    func(c *Config) []Port { return []Port{{Name: "webhooks", Addr: c.Webhooks.Addr, HTTP: true}} },
			Routes:   []gateway.Route{{Name: "webhooks", Paths: []string{"/webhooks"}}},
			Start:    startWebhooks,
		},
		{
			Name:  "gateway",
			Deps:  []string{"document", "signature", "extractor", "search", "realtime", "webhooks"},
			Needs: []Resource{Auth},
			Flags: func(c *Config, fs *pflag.FlagSet) {
				c.Gateway.RegisterFlags(fs)
				c.WebApp.RegisterFlags(fs) // the gateway serves the web application
			},
			Validate: func(c *Config) error { return errors.Join(c.Gateway.Validate(), c.WebApp.Validate()) },
			Ports: func(c *Config) []Port {
				ports := []Port{{Name: "gateway", Addr: c.Gateway.Addr, HTTP: true}}
				if c.Gateway.AdminAddr != "" {
					ports = append(ports, Port{Name: "gateway-admin", Addr: c.Gateway.AdminAddr, HTTP: true})
				}
				return ports
			},
			Start: startGateway,
		},
	}
}

func startDocument(ctx context.Context, c *Config, r *Resources) error {
	pool, err := r.Pool(ctx)
	if err != nil {
		return err
	}
	rdb, err := r.Redis()
	if err != nil {
		return err
	}
	bucket, err := r.Bucket(ctx, document.Bucket)
	if err != nil {
		return err
	}
	ln, err := r.Listener("document")
	if err != nil {
		return err
	}
	gln, err := r.Listener("document-grpc")
	if err != nil {
		return err
	}
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	log := r.Log()
	cache := document.NewCache(rdb, c.Document.CacheTTL, log)
	cfg := c.Document
	// The in-process cache needs the change stream, as the invalidator
	// does: without it there is none.
	var local *document.LocalCache
	var localBus bus.Bus
	switch {
	case !cfg.CacheInvalidator || rdb == nil:
		cfg.InvalidatorOff = "" // nothing to heal: no detail, no warning
	case cfg.InvalidatorOff != "":
		log.Warn("change-stream cache invalidation is off: cached documents are invalidated by this instance's own writes only", "reason", cfg.InvalidatorOff)
	default:
		b, err := r.Bus(ctx)
		if err != nil {
			return err
		}
		inv := document.NewInvalidator(cache, document.InvalidatorConfig{}, log)
		r.Go("document cache invalidator", func(ctx context.Context) error { return inv.Run(ctx, b) })
		if cfg.LocalCacheSize > 0 {
			local, localBus = document.NewLocalCache(cfg.LocalCacheSize, cfg.LocalCacheMaxLag, log), b
		}
	}
	store := document.NewStore(pool)
	if local != nil {
		r.Go("document local cache", func(ctx context.Context) error { return local.Run(ctx, localBus, store.FlushedLSN) })
	}
	svc := document.NewService(store, bucket, cache, log)
	svc.SetMode(authn.Mode())
	svc.SetLocalCache(local)
	views := svc.Views()
	r.Go("document views", func(ctx context.Context) error { return views.Run(ctx, cfg.ViewsFlush) })
	// Content journalled before a crash is checked against its blob (and
	// the blob rewritten where a power loss lost it) before the service
	// answers anything. Recovery runs even with the journal now off: the
	// entries of an earlier run still need it.
	svc.SetContentJournal(cfg.ContentJournalMax)
	journal := svc.Journal()
	if _, err := journal.Recover(ctx); err != nil {
		return err
	}
	r.Go("document content journal", func(ctx context.Context) error { return journal.Run(ctx, document.JournalFlushEvery) })
	// Closers run after every component stopped (the HTTP server drained)
	// and before Redis and PostgreSQL close (opened earlier, closed later):
	// the views counted last are flushed, and the journal's last entries.
	r.OnClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := views.Flush(ctx); err != nil {
			return fmt.Errorf("document views: last flush: %w", err)
		}
		if err := journal.Flush(ctx); err != nil {
			return fmt.Errorf("document content journal: last flush: %w", err)
		}
		return nil
	})
	cfg.Admission = httpx.NewAdmission("document", c.Shared.Admission)
	cfg.Auth = authn
	keys, err := r.APIKeys(ctx)
	if err != nil {
		return err
	}
	kcfg := c.Shared.APIKey
	kcfg.Auth, kcfg.AdminOpen, kcfg.Admission = authn, authn.AdminOpen(), cfg.Admission
	keyAPI := apikey.NewServer(apikey.NewService(apikey.NewStore(pool), keys, kcfg, log), kcfg, log)
	handler := apikey.Mount(keyAPI, document.NewServer(svc, cfg, log))
	r.Go("document http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, c.Shared.HTTP) })
	gs, health := document.NewGRPCServer(svc, log, authn)
	if longest, ok := longestCreate(c.Document.MaxUpload, c.Shared.HTTP); !ok || c.Document.Sweep.Grace <= longest {
		// An object younger than the longest legal create may belong to a
		// row not committed yet (on S3 a multipart object is dated from its
		// first part): sweeping it would leave a document without content.
		log.Warn("--document-sweep-grace is shorter than the longest legal upload: a slow create could lose its content to the sweeper",
			"grace", c.Document.Sweep.Grace, "longest_upload", longest, "bounded", ok)
	}
	r.Go("document blob sweeper", blob.NewSweeper(bucket, document.Bucket, svc.Ownership(), c.Document.Sweep, log).Run)
	r.Go("document grpc", func(ctx context.Context) error {
		return serveGRPC(ctx, gs, gln, c.Shared.HTTP.ShutdownDrain, health.Shutdown)
	})
	return nil
}

func startSignature(ctx context.Context, c *Config, r *Resources) error {
	pool, err := r.Pool(ctx)
	if err != nil {
		return err
	}
	bucket, err := r.Bucket(ctx, signature.Bucket)
	if err != nil {
		return err
	}
	ln, err := r.Listener("signature")
	if err != nil {
		return err
	}
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	// Calls made for a request carry its caller's credential; the
	// reconciler's carry the credential of service "signature".
	conn, err := signature.Dial(c.Signature.DocumentGRPC, grpc.WithPerRPCCredentials(authn.ClientCredentials("signature")))
	if err != nil {
		return err
	}
	// Closed with the shared resources, after both the HTTP server and the
	// reconciler have stopped.
	r.OnClose(conn.Close)
	log := r.Log()
	svc := signature.NewService(signature.NewStore(pool), documentpb.NewDocumentServiceClient(conn), bucket, c.Signature.Options, log)
	cfg := c.Signature
	svc.SetMode(authn.Mode())
	cfg.Admission = httpx.NewAdmission("signature", c.Shared.Admission)
	cfg.Auth = authn
	// The documents bucket: an invitation shows the pinned content, and
	// the certificate of completion is stored beside the document.
	docs, err := r.Bucket(ctx, document.Bucket)
	if err != nil {
		return err
	}
	var notifier signature.Notifier = &signature.LogNotifier{W: os.Stderr}
	if cfg.Signing.SMTPURL != "" {
		if notifier, err = signature.NewSMTPNotifier(cfg.Signing.SMTPURL, cfg.Signing.MailFrom); err != nil {
			return err
		}
	} else {
		log.Warn("no --signing-smtp-url: signing mails, invitation links included, are written to standard error (development only)")
	}
	rdb, err := r.Redis()
	if err != nil {
		return err
	}
	if rdb == nil {
		// The mail rate limit is counted in Redis so that every instance
		// charges one count per principal.
		return errors.New("the signature target counts signing mails per principal in Redis, shared by its instances: set --redis-url (REDIS_URL)")
	}
	cfg.Workflow = signature.NewWorkflow(svc, docs, notifier, signature.WorkflowOptions{
		PublicURL: cfg.Signing.PublicURL, MailPerMinute: cfg.Signing.MailPerMinute, Redis: rdb})
	handler := signature.NewServer(svc, cfg, log)
	r.Go("signature http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, c.Shared.HTTP) })
	r.Go("signing scheduler", signature.NewScheduler(cfg.Workflow, cfg.Signing.Scheduler).Run)
	r.Go("signature blob sweeper", blob.NewSweeper(bucket, signature.Bucket, svc.Ownership(), c.Signature.Sweep, log).Run)
	r.Go("signature reconciler", signature.NewReconciler(svc, c.Signature.Reconciler).Run)
	return nil
}

func startCDC(ctx context.Context, c *Config, r *Resources) error {
	url, err := r.DirectDatabaseURL()
	if err != nil {
		return err
	}
	b, err := r.Bus(ctx)
	if err != nil {
		return err
	}
	ln, err := r.Listener("cdc")
	if err != nil {
		return err
	}
	log := r.Log()
	cfg := c.CDC
	cfg.DatabaseURL, cfg.Version, cfg.Log = url, c.Version, log
	e, err := cdc.New(cfg, b)
	if err != nil {
		return err
	}
	r.Go("cdc engine", e.Run)
	// Report started once capture is live (or this instance is a standby),
	// so "ready" means new commits are streamed as they happen.
	if st := e.WaitStarted(ctx, 15*time.Second); !st.Streaming && !st.Standby {
		log.Warn("cdc engine not streaming yet; continuing start-up", "last_error", st.LastError)
	}
	r.Go("cdc http", func(ctx context.Context) error {
		return httpx.Serve(ctx, ln, e.Handler(), log, undrained(c.Shared.HTTP))
	})
	return nil
}

func startIndexer(ctx context.Context, c *Config, r *Resources) error {
	idx, err := r.Index(ctx)
	if err != nil {
		return err
	}
	b, err := r.Bus(ctx)
	if err != nil {
		return err
	}
	bucket, err := r.Bucket(ctx, indexer.ContentBucket)
	if err != nil {
		return err
	}
	ln, err := r.Listener("indexer")
	if err != nil {
		return err
	}
	log := r.Log()
	x := indexer.New(idx, b, bucket.Bucket, c.Indexer, log)
	r.Go("indexer", x.Run)
	r.Go("indexer http", func(ctx context.Context) error {
		return httpx.Serve(ctx, ln, x.Handler(), log, undrained(c.Shared.HTTP))
	})
	return nil
}

func startExtractor(ctx context.Context, c *Config, r *Resources) error {
	pool, err := r.Pool(ctx)
	if err != nil {
		return err
	}
	b, err := r.Bus(ctx)
	if err != nil {
		return err
	}
	bucket, err := r.Bucket(ctx, extractor.Bucket)
	if err != nil {
		return err
	}
	ln, err := r.Listener("extractor")
	if err != nil {
		return err
	}
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	log := r.Log()
	cfg := c.Extractor
	cfg.Auth = authn
	x := extractor.New(extractor.NewStore(pool), b, bucket, cfg, log)
	if err := x.Check(ctx); err != nil {
		return err
	}
	handler := x.Handler(httpx.NewAdmission("extractor", c.Shared.Admission))
	r.Go("extractor", x.Run)
	r.Go("extractor http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, c.Shared.HTTP) })
	return nil
}

func startWebhooks(ctx context.Context, c *Config, r *Resources) error {
	pool, err := r.Pool(ctx)
	if err != nil {
		return err
	}
	b, err := r.Bus(ctx)
	if err != nil {
		return err
	}
	ln, err := r.Listener("webhooks")
	if err != nil {
		return err
	}
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	log := r.Log()
	cfg := c.Webhooks
	cfg.Auth = authn
	if cfg.SecretKey == "" {
		// dev only (prepare refuses serve without one): a key kept in the
		// data dir, as dev's JWT secret is.
		key, err := devWebhooksKey(filepath.Join(c.Shared.DataDir, "webhooks.key"))
		if err != nil {
			return err
		}
		cfg.SecretKey = key
	}
	s, err := webhooks.New(webhooks.NewStore(pool), b, cfg, log)
	if err != nil {
		return err
	}
	handler := s.Handler(httpx.NewAdmission("webhooks", c.Shared.Admission))
	r.Go("webhooks", s.Run)
	r.Go("webhooks http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, c.Shared.HTTP) })
	return nil
}

// devWebhooksKey reads the webhooks secret key kept at path, creating it.
func devWebhooksKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if _, err := webhooks.NewCipher(string(b)); err == nil {
			return string(b), nil
		}
	}
	key := webhooks.NewKey()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return key, os.WriteFile(path, []byte(key), 0o600)
}

func startSearch(ctx context.Context, c *Config, r *Resources) error {
	idx, err := r.Index(ctx)
	if err != nil {
		return err
	}
	ln, err := r.Listener("search")
	if err != nil {
		return err
	}
	log := r.Log()
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	cfg := c.Search
	cfg.Admission = httpx.NewAdmission("search", c.Shared.Admission)
	cfg.Auth = authn
	cfg.Mode = authn.Mode()
	if c.Shared.DatabaseURL != "" {
		pool, err := r.Pool(ctx)
		if err != nil {
			return err
		}
		cfg.Extractions = extractor.NewWaiter(pool, cfg.Mode)
	}
	handler := search.NewServer(idx, cfg, log)
	r.Go("search http", func(ctx context.Context) error { return httpx.Serve(ctx, ln, handler, log, c.Shared.HTTP) })
	return nil
}

func startRealtime(ctx context.Context, c *Config, r *Resources) error {
	log := r.Log()
	a, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	b, err := r.Bus(ctx)
	if err != nil {
		return err
	}
	ln, err := r.Listener("realtime")
	if err != nil {
		return err
	}
	opts := c.Realtime.Hub
	opts.Bus, opts.Log = b, log
	h := realtime.NewHub(opts)
	scfg := realtime.ServerConfig{Dev: c.Shared.Dev, OriginPatterns: c.Realtime.OriginPatterns(), Log: log}
	if a.Mode() == auth.ModeRequired {
		// Subscriptions are authorised against the documents table; in
		// open mode nothing is checked and no database is needed.
		pool, err := r.Pool(ctx)
		if err != nil {
			return err
		}
		scfg.Access = realtime.NewPGAccess(pool)
	}
	handler := realtime.NewServer(h, a, scfg)
	r.Go("realtime hub", h.Run)
	r.Go("realtime http", func(ctx context.Context) error {
		// No drain period: the hub closes every WebSocket (1001) as soon as
		// the process stops, so a connection accepted while draining would
		// meet a stopped hub; one refused is retried by the gateway on
		// another instance, and a client reconnects (with since) anyway.
		err := httpx.Serve(ctx, ln, handler, log, undrained(c.Shared.HTTP))
		// Serve does not wait for hijacked connections: the hub closes
		// every WebSocket with 1001 when ctx is done; wait for them.
		h.Wait()
		return err
	})
	return nil
}

// gatewayVerifies reports whether the gateway verifies credentials: for
// every request with --auth-at-gateway, and for its admin API in required
// mode (the services verify in any case).
func gatewayVerifies(c *Config) bool {
	return c.Auth.AtGateway || c.Auth.ModeOf() == auth.ModeRequired && c.Gateway.AdminAddr != ""
}

func startGateway(ctx context.Context, c *Config, r *Resources) error {
	log := r.Log()
	cfg, err := c.Gateway.Resolve(gateway.Builtin(BuiltinRoutes(), localUpstreams(c)), c.given)
	if err != nil {
		return err
	}
	if gatewayVerifies(c) {
		a, err := r.Auth(ctx)
		if err != nil {
			return err
		}
		if c.Auth.AtGateway {
			// Invitation links carry their own credential (the token).
			cfg.Authenticate = func(h http.Handler) http.Handler { return a.Middleware(h, "/invitations/") }
		}
		if a.Mode() == auth.ModeRequired {
			cfg.AdminAuthorize = func(h http.Handler) http.Handler { return a.AdminOnly(h, "the gateway's admin API") }
		}
	}
	if c.WebApp.Enabled {
		wc := c.WebApp
		wc.AuthMode, wc.Dev = c.Auth.Mode, c.Shared.Dev
		cfg.App = webapp.Handler(wc)
	}
	// GET /ops: the operations view over every module's address.
	authn, err := r.Auth(ctx)
	if err != nil {
		return err
	}
	cfg.Handlers = map[string]http.Handler{ops.Pattern: ops.New(ops.Config{Targets: opsTargets(c), Log: log}).Handler(authn)}
	if c.Gateway.File != "" {
		for _, p := range CheckGatewayRoutes(cfg) {
			log.Warn("gateway config does not match the module table", "file", c.Gateway.File, "problem", p)
		}
	}
	g, err := gateway.New(cfg, log)
	if err != nil {
		if c.Gateway.File != "" {
			return errors.Join(errors.New("gateway config "+c.Gateway.File), err)
		}
		return err
	}
	ln, err := r.Listener("gateway")
	if err != nil {
		return err
	}
	if c.Gateway.AdminAddr != "" {
		aln, err := r.Listener("gateway-admin")
		if err != nil {
			return err
		}
		r.Go("gateway admin", func(ctx context.Context) error {
			return httpx.Serve(ctx, aln, g.AdminHandler(), log, undrained(c.Shared.HTTP))
		})
	}
	r.Go("gateway health checks", g.Run)
	r.Go("gateway", func(ctx context.Context) error { return httpx.Serve(ctx, ln, g.Handler(), log, c.Shared.HTTP) })
	return nil
}

// serveGRPC serves until ctx is done, then drains as httpx.Serve does:
// unready (the health service NOT_SERVING) but serving for drain, then
// GracefulStop, which sends GOAWAY so clients reconnect elsewhere and lets
// in-flight calls finish (bounded by httpx.ShutdownTimeout).
func serveGRPC(ctx context.Context, gs *grpc.Server, ln net.Listener, drain time.Duration, unready func()) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	unready()
	if drain > 0 {
		t := time.NewTimer(drain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
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

// undrained is h for a listener no load balancer routes to (health,
// metrics, the gateway's admin API): nothing to move away, so no drain
// period holds the process up.
func undrained(h httpx.ServerConfig) httpx.ServerConfig {
	h.ShutdownDrain = 0
	return h
}

// devSecret reads the secret at path, creating a random one first (hex,
// so that it can be passed on: AUTH_JWT_SECRET=$(cat var/auth.secret)).
func devSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= auth.MinSecretLen {
		return b, nil
	}
	b := []byte(hex.EncodeToString(auth.RandomSecret()))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}

// longestCreate is how long a create of maxUpload bytes may legally take
// under the body rules (ok false: no minimum rate, no bound).
func longestCreate(maxUpload int64, h httpx.ServerConfig) (time.Duration, bool) {
	if h.MinBodyRate <= 0 {
		return 0, false
	}
	return h.BodyGrace + time.Duration(maxUpload/h.MinBodyRate+1)*time.Second, true
}
