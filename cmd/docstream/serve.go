package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	gcblob "gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/search"
)

// target is one service that can run alone or with others in one process.
// bind registers the target's own flags on fs and returns the function that
// starts it with the values those flags end up holding.
type target struct {
	name string
	bind func(fs *pflag.FlagSet) startFunc
}

// startFunc starts a target's components on sys.Group and returns once they
// are listening.
type startFunc func(ctx context.Context, sys *system) error

// targets is filled by the target_*.go files in init.
var targets = map[string]*target{}

func register(t *target) { targets[t.name] = t }

func targetNames() []string {
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sharedConfig is what every target may use.
type sharedConfig struct {
	DataDir           string
	DatabaseURL       string
	DirectDatabaseURL string
	DBMaxConns        int
	RedisURL          string
	BlobURL           string
	BusURL            string
	BusListen         string        // embedded NATS: loopback address other processes attach to
	BusMaxAge         time.Duration // retention of the bus's streams/topics
	BusSync           string        // embedded NATS: when published events reach the disk
	BusReplicas       int           // NATS: replicas of each stream
	SearchURL         string
	LogLevel          string
	Dev               bool
	Migrate           bool
	Admission         httpx.AdmissionConfig // per route class, in each of document, signature, search
	HTTP              httpx.ServerConfig    // timeouts and connection cap of every HTTP listener
}

func (c *sharedConfig) bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./var", "directory for embedded data (blobs, NATS, search index, local PostgreSQL/Redis in dev)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL for queries; may point at PgBouncer (transaction pooling)")
	fs.StringVar(&c.DirectDatabaseURL, "direct-database-url", "", "PostgreSQL URL reaching the server directly, for migrations (advisory lock) and WAL replication; default: --database-url")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", 20, "connections per process in the query pool")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL (cache and view analytics); empty: no cache, no analytics")
	fs.StringVar(&c.BlobURL, "blob-url", "", "object storage: file:///dir or s3://?endpoint=…&use_path_style=true; default: file://<data-dir>/blobs")
	fs.StringVar(&c.BusURL, "bus-url", "", "event bus: nats://host:port, kafka://host:port,…; default: NATS JetStream embedded in <data-dir>/nats")
	fs.StringVar(&c.BusListen, "bus-listen", "127.0.0.1:4250", "embedded NATS: address it also listens on so the CLI and other processes can attach (not 4222, to leave a standard NATS alone); empty: in-process only")
	fs.DurationVar(&c.BusMaxAge, "bus-max-age", 7*24*time.Hour, "how long the bus keeps events (JetStream stream max age)")
	fs.StringVar(&c.BusSync, "bus-sync", "batch", "embedded NATS: when published events reach the disk: batch (fsync once per publish, grouped, before it counts as acknowledged), always (fsync every event), or a duration (background fsync only: a power loss may lose acknowledged events)")
	fs.IntVar(&c.BusReplicas, "bus-replicas", 1, "NATS: replicas of each stream (3 on a cluster: an event is acknowledged once a quorum stored it)")
	fs.StringVar(&c.SearchURL, "search-url", "", "search index: http(s):// for Elasticsearch/OpenSearch; default: Bleve in <data-dir>/index")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.Migrate, "migrate", true, "apply pending schema migrations at start")
	c.Admission.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
}

func (c *sharedConfig) directURL() string {
	if c.DirectDatabaseURL != "" {
		return c.DirectDatabaseURL
	}
	return c.DatabaseURL
}

// system holds the process's shared resources, opened on first use by the
// targets that need them and closed after every component has stopped.
type system struct {
	cfg   *sharedConfig
	log   *slog.Logger
	Group *errgroup.Group
	ctx   context.Context // the group's context: done when any component fails or on shutdown

	mu      sync.Mutex
	pool    *pgxpool.Pool
	redis   *redis.Client
	buckets map[string]*gcblob.Bucket
	bus     bus.Bus
	// searchIndex is the one index of this process (see SearchIndex).
	searchIndex search.Index
	closers     []func() error
	// ready reports, per service name, the address it listens on (for dev's banner).
	listening []string
}

// Pool is the shared PostgreSQL query pool.
func (s *system) Pool(ctx context.Context) (*pgxpool.Pool, error) {
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

// Redis is the shared Redis client, or nil when no Redis is configured.
func (s *system) Redis() (*redis.Client, error) {
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

// Bucket opens (once) the named object storage bucket.
func (s *system) Bucket(ctx context.Context, name string) (*gcblob.Bucket, error) {
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
	if s.buckets == nil {
		s.buckets = map[string]*gcblob.Bucket{}
	}
	s.buckets[name] = b
	s.closers = append(s.closers, b.Close)
	return b, nil
}

// Bus opens (once) the event bus named by --bus-url.
func (s *system) Bus(ctx context.Context) (bus.Bus, error) {
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

// Listen binds addr now, so a port clash fails start-up rather than later.
func (s *system) Listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	s.mu.Lock()
	s.listening = append(s.listening, fmt.Sprintf("%-18s %s", name, displayAddr(name, ln.Addr())))
	s.mu.Unlock()
	return ln, nil
}

// Go runs a component until the system stops. A component returns nil when
// its context is done and it has finished its work (drained, flushed, acked).
func (s *system) Go(name string, f func(ctx context.Context) error) {
	s.Group.Go(func() error {
		if err := f(s.ctx); err != nil && s.ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// OnClose registers f to run with the shared resources, after every
// component has stopped.
func (s *system) OnClose(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

func (s *system) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close", "err", err)
		}
	}
	s.closers = nil
}

func init() {
	commands = append(commands, newServeCmd)
}

// serveFlags binds the shared and every target's flags, so `--help` and the
// README table list all of them whatever targets are chosen.
type serveFlags struct {
	shared  sharedConfig
	targets string
	starts  map[string]startFunc
}

func bindServeFlags(fs *pflag.FlagSet, defaultTargets string) *serveFlags {
	f := &serveFlags{starts: map[string]startFunc{}}
	f.shared.bind(fs)
	fs.StringVar(&f.targets, "targets", defaultTargets, "comma-separated services to run: all, "+strings.Join(targetNames(), ", "))
	for _, name := range targetNames() {
		f.starts[name] = targets[name].bind(fs)
	}
	return f
}

func newServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run services (--targets) against configured backends",
		Args:  cobra.NoArgs,
	}
	f := bindServeFlags(cmd.Flags(), "all")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		log := logging.New(e.stderr, f.shared.LogLevel)
		return serve(cmd.Context(), f, log, nil)
	}
	return cmd
}

// serve starts the chosen targets and blocks until ctx is done or one fails.
// onReady, if set, is called once every target is listening.
func serve(ctx context.Context, f *serveFlags, log *slog.Logger, onReady func(sys *system)) error {
	chosen, err := parseTargets(f.targets)
	if err != nil {
		return err
	}
	if f.shared.Migrate && f.shared.directURL() != "" {
		if err := postgres.Migrate(ctx, f.shared.directURL(), log); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	sys := &system{cfg: &f.shared, log: log, Group: g, ctx: gctx}
	defer sys.close()
	for _, name := range chosen {
		if err := f.starts[name](gctx, sys); err != nil {
			// Stop what already started before reporting.
			cancel()
			return errors.Join(fmt.Errorf("start %s: %w", name, err), g.Wait())
		}
		log.Info("target started", "target", name)
	}
	if onReady != nil {
		onReady(sys)
	}
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// parseTargets expands "all" and checks names; the order is a start order
// that brings up servers before their clients.
func parseTargets(s string) ([]string, error) {
	order := []string{"document", "signature", "cdc", "indexer", "search", "realtime", "gateway"}
	want := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case n == "all":
			for _, t := range targetNames() {
				want[t] = true
			}
		case targets[n] != nil:
			want[n] = true
		default:
			return nil, fmt.Errorf("unknown target %q: choose from all, %s", n, strings.Join(targetNames(), ", "))
		}
	}
	if len(want) == 0 {
		return nil, errors.New("--targets is empty")
	}
	var out []string
	for _, n := range order {
		if want[n] {
			out = append(out, n)
			delete(want, n)
		}
	}
	rest := make([]string, 0, len(want))
	for n := range want {
		rest = append(rest, n)
	}
	slices.Sort(rest)
	return append(out, rest...), nil
}

// displayAddr is how the dev banner shows a listener: a URL to click for
// HTTP, host:port for gRPC; wildcard hosts read as localhost.
func displayAddr(name string, a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	hp := net.JoinHostPort(host, port)
	if strings.HasSuffix(name, "grpc") {
		return hp + " (gRPC)"
	}
	return "http://" + hp
}
