package app

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/indexer"
	"github.com/docstream/docstream/internal/realtime"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/internal/webapp"
	"github.com/docstream/docstream/internal/webhooks"
)

// Shared is the configuration of the shared resources (System).
type Shared struct {
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
	BusReplicas       int           // NATS: replicas of each stream and durable consumer (never lowers a stream's)
	BusPublishTimeout time.Duration // NATS: wait for one publish's acknowledgement before it fails (and is retried)
	BusStallTimeout   time.Duration // NATS: no progress with messages pending before a subscription is replaced and reported stalled
	SearchURL         string
	LogLevel          string
	Migrate           bool
	// Admission bounds requests in flight per route class, in each of
	// document, signature and search.
	Admission httpx.AdmissionConfig
	// HTTP is the timeouts and connection cap of every HTTP listener.
	HTTP httpx.ServerConfig
	// APIKey is the API key verifier every service runs (and the
	// document service's /apikeys).
	APIKey apikey.Config
	// AuditSigningKey is the Ed25519 key audit checkpoints are signed
	// with (internal/audit): the key itself or a file holding it.
	AuditSigningKey string
	// AuditVerifyKeys are the keys that signed before a rotation:
	// published and used to verify, never to sign.
	AuditVerifyKeys string
	// Dev is set by `docstream dev`: development conveniences (GET
	// /auth/token, a generated JWT secret, open mode by default).
	Dev bool
}

func defaultShared() Shared {
	return Shared{DataDir: "./var", DBMaxConns: 20, BusListen: "127.0.0.1:4250", BusMaxAge: bus.DefaultMaxAge, BusSync: "batch", BusReplicas: 1,
		BusPublishTimeout: 5 * time.Second, BusStallTimeout: 30 * time.Second, LogLevel: "info", Migrate: true,
		HTTP: httpx.DefaultServerConfig(), APIKey: apikey.DefaultConfig()}
}

// RegisterFlags registers the shared resources' flags, defaulting to c's
// values.
func (c *Shared) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for embedded data (blobs, NATS, search index, local PostgreSQL/Redis in dev)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL for queries; may point at PgBouncer (transaction pooling)")
	fs.StringVar(&c.DirectDatabaseURL, "direct-database-url", c.DirectDatabaseURL, "PostgreSQL URL reaching the server directly, for migrations (advisory lock) and WAL replication; default: --database-url")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", c.DBMaxConns, "connections per process in the query pool (at least 1)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL (cache, view analytics, and the signing mail rate limit shared by every signature instance); empty: no cache, no analytics, and the signature target refuses to start")
	fs.StringVar(&c.BlobURL, "blob-url", c.BlobURL, "object storage: file:///dir or s3://?endpoint=…&use_path_style=true; default: file://<data-dir>/blobs")
	fs.StringVar(&c.BusURL, "bus-url", c.BusURL, "event bus: nats://host:port, kafka://host:port,…; default: NATS JetStream embedded in <data-dir>/nats")
	fs.StringVar(&c.BusListen, "bus-listen", c.BusListen, "embedded NATS: address it also listens on so the CLI and other processes can attach (not 4222, to leave a standard NATS alone); empty: in-process only")
	fs.DurationVar(&c.BusMaxAge, "bus-max-age", c.BusMaxAge, "how long the bus keeps events (JetStream stream max age; must be > 0)")
	fs.StringVar(&c.BusSync, "bus-sync", c.BusSync, "embedded NATS: when published events reach the disk: batch (fsync once per publish, grouped, before it counts as acknowledged), always (fsync every event), or a duration (background fsync only: a power loss may lose acknowledged events)")
	fs.IntVar(&c.BusReplicas, "bus-replicas", c.BusReplicas, "NATS: replicas of each stream and durable consumer (3 on a cluster: an event is acknowledged once a quorum stored it, and a node may fail); a stream with more replicas keeps them")
	fs.DurationVar(&c.BusPublishTimeout, "bus-publish-timeout", c.BusPublishTimeout, "NATS: how long one publish waits for its acknowledgement before it fails and is retried (a stream electing a new leader answers nothing meanwhile)")
	fs.DurationVar(&c.BusStallTimeout, "bus-stall-timeout", c.BusStallTimeout, "how long a consumer may go without progress while events wait (or the bus cannot say: its NATS stream unavailable, its Kafka offsets unreadable) before it is subscribed again and reported stalled (/health/ready 503)")
	fs.StringVar(&c.SearchURL, "search-url", c.SearchURL, "search index: http(s):// for Elasticsearch/OpenSearch; default: Bleve in <data-dir>/index")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "apply pending schema migrations at start")
	fs.StringVar(&c.AuditSigningKey, "audit-signing-key", c.AuditSigningKey, "Ed25519 key that signs audit checkpoints, the same in every instance: a file holding it (PEM PKCS#8, e.g. openssl genpkey -algorithm ed25519; or ed25519:<base64 seed>) or the key itself; required by serve for the document and signature targets in every auth mode (create one with docstream audit keygen); generated in <data-dir>/audit-signing.key by dev")
	fs.StringVar(&c.AuditVerifyKeys, "audit-verify-keys", c.AuditVerifyKeys, "comma-separated keys that signed audit checkpoints before a key rotation, published at /.well-known/docstream-audit-keys so trails they signed still verify (never used to sign): each a file or the key itself, private (as --audit-signing-key takes it) or a PEM public key (openssl pkey -pubout)")
	c.Admission.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
	c.APIKey.RegisterFlags(fs)
}

// Validate refuses shared settings nothing can run with, naming the flag.
func (c *Shared) Validate() error {
	if c.DBMaxConns < 1 {
		return fmt.Errorf("--db-max-conns must be at least 1, got %d", c.DBMaxConns)
	}
	if c.HTTP.ShutdownDrain < 0 {
		return fmt.Errorf("--shutdown-drain must be >= 0 (0: stop at once), got %v", c.HTTP.ShutdownDrain)
	}
	if c.BusMaxAge <= 0 {
		return fmt.Errorf("--bus-max-age must be > 0, got %v", c.BusMaxAge)
	}
	if c.BusReplicas < 1 || c.BusReplicas > 5 {
		return fmt.Errorf("--bus-replicas must be between 1 and 5 (JetStream's limit), got %d", c.BusReplicas)
	}
	if c.BusPublishTimeout <= 0 {
		return fmt.Errorf("--bus-publish-timeout must be > 0, got %v", c.BusPublishTimeout)
	}
	if c.BusStallTimeout <= 0 {
		return fmt.Errorf("--bus-stall-timeout must be > 0, got %v", c.BusStallTimeout)
	}
	return c.APIKey.Validate()
}

func (c *Shared) directURL() string {
	if c.DirectDatabaseURL != "" {
		return c.DirectDatabaseURL
	}
	return c.DatabaseURL
}

// Config is everything `serve` and `dev` run with: the shared resources'
// settings and each module's own Config, which its package owns.
type Config struct {
	Shared  Shared
	Targets string // comma-separated module names, or all
	// Auth is shared by every service: one verifier per process.
	Auth      auth.Config
	Document  document.Config
	Signature signature.Config
	CDC       cdc.Config
	Indexer   indexer.Config
	Extractor extractor.Config
	Search    search.Config
	Realtime  realtime.Config
	Webhooks  webhooks.Config
	Gateway   gateway.Flags
	WebApp    webapp.Config
	// Version is the binary's version (source.version of change events).
	Version string

	fs *pflag.FlagSet // where the flags were registered: which were given
}

// DefaultConfig is the configuration when nothing is set.
func DefaultConfig() Config {
	return Config{
		Shared:    defaultShared(),
		Targets:   "all",
		Auth:      auth.DefaultConfig(),
		Document:  document.DefaultConfig(),
		Signature: signature.DefaultConfig(),
		CDC:       cdc.DefaultConfig(),
		Indexer:   indexer.DefaultConfig(),
		Extractor: extractor.DefaultConfig(),
		Search:    search.DefaultConfig(),
		Realtime:  realtime.DefaultConfig(),
		Webhooks:  webhooks.DefaultConfig(),
		Gateway:   gateway.DefaultFlags(),
		WebApp:    webapp.DefaultConfig(),
		Version:   "dev",
	}
}

// RegisterFlags registers the shared flags, --targets and every module's
// flags (from the module table), so `--help` and the README table list all
// of them whatever targets are chosen.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.fs = fs
	c.Shared.RegisterFlags(fs)
	c.Auth.RegisterFlags(fs)
	fs.StringVar(&c.Targets, "targets", c.Targets, "comma-separated services to run: all, "+joinNames(sortedNames()))
	for _, m := range Modules() {
		m.Flags(c, fs)
	}
}

// given reports whether flag was set on the command line or by its
// environment variable.
func (c *Config) given(flag string) bool {
	return c.fs != nil && c.fs.Changed(flag)
}
