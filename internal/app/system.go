package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/search"
)

// Resource is one shared resource a module may declare in its row.
type Resource string

// The shared resources. Each is opened once per process, on first use by
// a module that declared it, and closed after every module has stopped.
const (
	// PGPool is the PostgreSQL query pool (--database-url; may be PgBouncer).
	PGPool Resource = "postgres pool"
	// DirectDB is the URL reaching PostgreSQL directly (replication,
	// advisory locks): --direct-database-url, else --database-url.
	DirectDB Resource = "direct database url"
	// Redis is the Redis client, nil when --redis-url is empty.
	Redis Resource = "redis"
	// Bus is the event bus (--bus-url, default embedded NATS).
	Bus Resource = "bus"
	// Index is the search index (--search-url, default Bleve).
	Index Resource = "search index"
	// Auth is the authenticator every service's middleware and gRPC
	// interceptor verify credentials with (--auth-*).
	Auth Resource = "auth"
	// APIKeys is the process's one API key verifier, over the query pool;
	// nil when no --database-url is set (API keys are then refused).
	APIKeys Resource = "api key verifier"
)

// apiKeys returns the verifier of API keys the authenticator consults
// (auth.KeyVerifier): the process's one *apikey.Verifier over the query
// pool, or nil without --database-url (API keys are then refused).
var apiKeys = func(ctx context.Context, s *System) (auth.KeyVerifier, error) {
	v, err := s.openAPIKeys(ctx)
	if v == nil || err != nil {
		return nil, err // never a typed nil in the interface
	}
	return v, nil
}

// BucketOf is the object storage bucket name, as a resource.
func BucketOf(name string) Resource { return Resource("bucket " + name) }

// System holds the process's shared resources and the group of running
// components. A module reaches it only through Resources, which hands out
// what the module's row declared.
type System struct {
	cfg   *Shared
	log   *slog.Logger
	group *errgroup.Group
	ctx   context.Context // the group's: done when any component fails or on shutdown

	mu        sync.Mutex
	pool      *pgxpool.Pool
	redis     *redis.Client
	buckets   map[string]*blob.Bucket
	bus       bus.Bus
	index     search.Index
	keys      *apikey.Verifier
	listeners map[string]net.Listener
	ports     []boundPort // in binding order, for the banner
	closers   []func() error

	authCfg auth.Config
	authMu  sync.Mutex // apart from mu: opening it may open the pool
	authn   *auth.Authenticator
}

type boundPort struct {
	Port
	addr net.Addr
}

func newSystem(ctx context.Context, cfg *Shared, log *slog.Logger) *System {
	g, gctx := errgroup.WithContext(ctx)
	return &System{cfg: cfg, log: log, group: g, ctx: gctx, buckets: map[string]*blob.Bucket{}, listeners: map[string]net.Listener{}}
}

// openAuth builds the process's one authenticator: every service verifies
// with it, so a token is checked (and cached) once per process.
func (s *System) openAuth(ctx context.Context) (*auth.Authenticator, error) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.authn != nil {
		return s.authn, nil
	}
	var keys auth.KeyVerifier
	if apiKeys != nil {
		k, err := apiKeys(ctx, s)
		if err != nil {
			return nil, err
		}
		keys = k
	}
	cfg := s.authCfg
	cfg.Log = s.log.With("component", "auth")
	// The JWKS refresh lives as long as the system.
	a, err := auth.New(s.ctx, cfg, keys)
	if err != nil {
		return nil, err
	}
	s.authn = a
	return a, nil
}

func (s *System) openPool(ctx context.Context) (*pgxpool.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool != nil {
		return s.pool, nil
	}
	if s.cfg.DatabaseURL == "" {
		return nil, errors.New("--database-url (DATABASE_URL) is required for this target")
	}
	p, err := postgres.Open(ctx, s.cfg.DatabaseURL, int32(s.cfg.DBMaxConns))
	if err != nil {
		return nil, err
	}
	s.pool = p
	s.closers = append(s.closers, func() error { p.Close(); return nil })
	return p, nil
}

func (s *System) openRedis() (*redis.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.redis != nil || s.cfg.RedisURL == "" {
		return s.redis, nil
	}
	opts, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	// The cache is optional: fail fast and serve from PostgreSQL rather than
	// hold requests on a slow or dead Redis.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	opts.MaxRetries = 1
	s.redis = redis.NewClient(opts)
	s.closers = append(s.closers, s.redis.Close)
	return s.redis, nil
}

func (s *System) openBucket(ctx context.Context, name string) (*blob.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[name]; ok {
		return b, nil
	}
	base := s.cfg.BlobURL
	if base == "" {
		abs, err := filepath.Abs(filepath.Join(s.cfg.DataDir, "blobs"))
		if err != nil {
			return nil, err
		}
		base = "file://" + filepath.ToSlash(abs)
	}
	b, err := blob.Open(ctx, base, name)
	if err != nil {
		return nil, err
	}
	s.buckets[name] = b
	s.closers = append(s.closers, b.Close)
	return b, nil
}

func (s *System) openBus(ctx context.Context) (bus.Bus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bus != nil {
		return s.bus, nil
	}
	b, err := openBus(ctx, s.cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.bus = b
	s.closers = append(s.closers, b.Close)
	return b, nil
}

// openIndex opens the one index of this process: Bleve allows a single
// opener per directory, so the indexer and the search service share it.
func (s *System) openIndex(ctx context.Context) (search.Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index != nil {
		return s.index, nil
	}
	x, err := openIndex(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.index = x
	s.closers = append(s.closers, x.Close)
	return x, nil
}

// openAPIKeys returns the process's one API key verifier: shared by every
// module's authenticator, so a key revoked through this process's REST API
// is refused by all of them at once (and by other processes within
// --apikey-cache-ttl). nil without --database-url.
func (s *System) openAPIKeys(ctx context.Context) (*apikey.Verifier, error) {
	s.mu.Lock()
	keys, url := s.keys, s.cfg.DatabaseURL
	s.mu.Unlock()
	if keys != nil || url == "" {
		return keys, nil
	}
	pool, err := s.openPool(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = apikey.NewVerifier(apikey.NewStore(pool), s.cfg.APIKey, s.log)
	}
	return s.keys, nil
}

// bind listens on every port now, so a port clash fails start-up before
// any module runs.
func (s *System) bind(module string, ports []Port) error {
	for _, p := range ports {
		ln, err := net.Listen("tcp", p.Addr)
		if err != nil {
			return fmt.Errorf("%s: listen on %s: %w", p.Name, p.Addr, err)
		}
		s.mu.Lock()
		s.listeners[p.Name] = ln
		s.ports = append(s.ports, boundPort{Port: p, addr: ln.Addr()})
		s.closers = append(s.closers, func() error {
			// Serve closed it already unless the module never started.
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
		s.mu.Unlock()
	}
	return nil
}

// Go runs a component until the system stops. A component returns nil when
// its context is done and it has finished its work (drained, flushed, acked).
func (s *System) Go(name string, f func(ctx context.Context) error) {
	s.group.Go(func() error {
		if err := f(s.ctx); err != nil && s.ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// close closes the shared resources in reverse order of opening, after
// every component has stopped.
func (s *System) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close", "err", err)
		}
	}
	s.closers = nil
}

// BusURL is the URL other processes use to attach to this system's bus:
// the embedded server's loopback address when it runs, else --bus-url.
func (s *System) BusURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nb, ok := s.bus.(*busnats.Bus); ok && s.cfg.BusURL == "" {
		return nb.URL()
	}
	return s.cfg.BusURL
}

// Listening lists every bound port, one line each, in start order: a URL
// to click for HTTP, host:port for gRPC (for dev's banner).
func (s *System) Listening() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ports))
	for _, p := range s.ports {
		out = append(out, fmt.Sprintf("%-18s %s", p.Name, displayAddr(p.Port, p.addr)))
	}
	return out
}

// URL is the http:// URL of the bound port name ("" when not bound).
func (s *System) URL(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.ports {
		if p.Name == name {
			return "http://" + loopbackHostPort(p.addr.String())
		}
	}
	return ""
}

// displayAddr is how the dev banner shows a listener.
func displayAddr(p Port, a net.Addr) string {
	hp := loopbackHostPort(a.String())
	if p.GRPC {
		return hp + " (gRPC)"
	}
	return "http://" + hp
}

// loopbackHostPort reads a wildcard host (":8000", "0.0.0.0:8000") as
// localhost.
func loopbackHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// Resources is a module's view of the System: only what its row declared.
// Asking for anything else is an error naming the module and the resource,
// so a row cannot drift from what its module really uses.
type Resources struct {
	sys    *System
	module *Module
	ports  []Port
	log    *slog.Logger
}

func (r *Resources) need(res Resource) error {
	if !slices.Contains(r.module.Needs, res) {
		return fmt.Errorf("module %s asks for %s, which its row in the module table does not declare", r.module.Name, res)
	}
	return nil
}

// Log is the module's logger (service=<name>).
func (r *Resources) Log() *slog.Logger { return r.log }

// Pool is the shared PostgreSQL query pool (PGPool).
func (r *Resources) Pool(ctx context.Context) (*pgxpool.Pool, error) {
	if err := r.need(PGPool); err != nil {
		return nil, err
	}
	return r.sys.openPool(ctx)
}

// DirectDatabaseURL reaches PostgreSQL directly, never through PgBouncer
// (DirectDB).
func (r *Resources) DirectDatabaseURL() (string, error) {
	if err := r.need(DirectDB); err != nil {
		return "", err
	}
	if u := r.sys.cfg.directURL(); u != "" {
		return u, nil
	}
	return "", fmt.Errorf("%s needs --direct-database-url or --database-url reaching PostgreSQL directly", r.module.Name)
}

// Redis is the shared Redis client, nil when none is configured (Redis).
func (r *Resources) Redis() (*redis.Client, error) {
	if err := r.need(Redis); err != nil {
		return nil, err
	}
	return r.sys.openRedis()
}

// Bucket is the named object storage bucket (BucketOf(name)).
func (r *Resources) Bucket(ctx context.Context, name string) (*blob.Bucket, error) {
	if err := r.need(BucketOf(name)); err != nil {
		return nil, err
	}
	return r.sys.openBucket(ctx, name)
}

// Bus is the event bus (Bus).
func (r *Resources) Bus(ctx context.Context) (bus.Bus, error) {
	if err := r.need(Bus); err != nil {
		return nil, err
	}
	return r.sys.openBus(ctx)
}

// Index is the search index (Index).
func (r *Resources) Index(ctx context.Context) (search.Index, error) {
	if err := r.need(Index); err != nil {
		return nil, err
	}
	return r.sys.openIndex(ctx)
}

// Auth is the process's authenticator (Auth).
func (r *Resources) Auth(ctx context.Context) (*auth.Authenticator, error) {
	if err := r.need(Auth); err != nil {
		return nil, err
	}
	return r.sys.openAuth(ctx)
}

// APIKeys is the process's API key verifier (APIKeys); nil when no
// --database-url is set. A nil *apikey.Verifier refuses every key.
func (r *Resources) APIKeys(ctx context.Context) (*apikey.Verifier, error) {
	if err := r.need(APIKeys); err != nil {
		return nil, err
	}
	return r.sys.openAPIKeys(ctx)
}

// Listener is the module's bound port name (one of its row's Ports).
func (r *Resources) Listener(name string) (net.Listener, error) {
	if !slices.ContainsFunc(r.ports, func(p Port) bool { return p.Name == name }) {
		return nil, fmt.Errorf("module %s asks for port %q, which its row in the module table does not declare", r.module.Name, name)
	}
	r.sys.mu.Lock()
	defer r.sys.mu.Unlock()
	return r.sys.listeners[name], nil
}

// Go runs a component of the module until the system stops (see System.Go).
func (r *Resources) Go(name string, f func(ctx context.Context) error) { r.sys.Go(name, f) }

// OnClose registers f to run with the shared resources, after every
// component has stopped.
func (r *Resources) OnClose(f func() error) {
	r.sys.mu.Lock()
	defer r.sys.mu.Unlock()
	r.sys.closers = append(r.sys.closers, f)
}
