package cdc

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Snapshot modes.
const (
	SnapshotInitial = "initial" // read existing rows as op "r" when the slot is created
	SnapshotNever   = "never"
)

// Config configures an Engine. Start from DefaultConfig: New refuses a zero
// where zero has no meaning, rather than guessing.
type Config struct {
	// Addr is where the cdc target serves /health/* and /metrics.
	Addr string
	// DatabaseURL reaches PostgreSQL directly (never through PgBouncer:
	// replication and session advisory locks need a real session).
	DatabaseURL string
	Slot        string   // replication slot
	Publication string   // publication of Tables
	Tables      []string // schema-qualified captured tables
	// ExcludeColumns are schema.table.column names never published (as
	// Debezium's column.exclude.list): the column is left out of before and
	// after, in snapshots and while streaming. A publication column list
	// cannot do this for a REPLICA IDENTITY FULL table (PostgreSQL requires
	// such a list to hold every column), so the engine drops them.
	ExcludeColumns []string
	// TopicPrefix + "." + table name is a table's topic.
	TopicPrefix string
	// Snapshot is SnapshotInitial or SnapshotNever.
	Snapshot string
	// StatusInterval is how often the confirmed position is reported to
	// PostgreSQL.
	StatusInterval time.Duration
	// WatermarkInterval is how often an idle engine asks the server for its
	// WAL position and publishes it as a watermark.
	WatermarkInterval time.Duration
	// HeartbeatInterval runs HeartbeatSQL so the slot advances while the
	// captured tables are idle (negative: off).
	HeartbeatInterval time.Duration
	// HeartbeatSQL is the heartbeat action (empty: a non-transactional
	// logical decoding message, which writes WAL and reaches this slot).
	HeartbeatSQL string
	// MaxBatch is the most events published in one bus round trip.
	MaxBatch int
	// FlushInterval is the longest events wait to be batched while the bus
	// is busy with the previous batch.
	FlushInterval time.Duration
	// StandbyPoll is how often a standby tries to become active.
	StandbyPoll time.Duration
	// SlotWALWarn is the share of max_slot_wal_keep_size the slot may
	// retain before the engine logs a warning every minute: at the limit
	// PostgreSQL invalidates the slot and only a re-snapshot recovers.
	SlotWALWarn float64
	// Name is source.name; Version is source.version.
	Name    string
	Version string
	Log     *slog.Logger // nil: discard
}

// DefaultConfig is the engine's configuration when nothing is set: the one
// place its defaults are written (the flags show them).
func DefaultConfig() Config {
	return Config{
		Addr:        ":8083",
		Slot:        "docstream_slot",
		Publication: "docstream_pub",
		Tables:      []string{"documents.documents", "documents.extractions", "signatures.signatures", "signing.signing_requests", "signing.signing_recipients"},
		// A recipient's IP address and user agent are personal data the
		// audit trail keeps for the owner and admins only; the change
		// stream reaches every viewer of the document (WebSocket, webhooks).
		// Invitation token hashes live in signing.invitations, which is
		// never captured.
		ExcludeColumns:    []string{"signing.signing_recipients.ip_address", "signing.signing_recipients.user_agent"},
		TopicPrefix:       "cdc",
		Snapshot:          SnapshotInitial,
		StatusInterval:    10 * time.Second,
		WatermarkInterval: time.Second,
		HeartbeatInterval: 30 * time.Second,
		MaxBatch:          1000,
		FlushInterval:     20 * time.Millisecond,
		StandbyPoll:       time.Second,
		SlotWALWarn:       0.5,
		Name:              "cdc",
		Version:           "dev",
	}
}

// defaultHeartbeatSQL writes WAL that reaches this slot without touching a
// table.
const defaultHeartbeatSQL = "SELECT pg_logical_emit_message(false, 'docstream.heartbeat', '')"

// RegisterSlotFlags registers the flags naming the slot and publication,
// which `docstream cdc status` shares with the cdc target.
func (c *Config) RegisterSlotFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Slot, "cdc-slot", c.Slot, "logical replication slot the CDC engine reads (created if missing)")
	fs.StringVar(&c.Publication, "cdc-publication", c.Publication, "publication of the captured tables (created if missing)")
}

// RegisterFlags registers the cdc target's flags, defaulting to c's values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.RegisterSlotFlags(fs)
	fs.StringVar(&c.Addr, "cdc-addr", c.Addr, "CDC engine health and metrics listen address (/health/*, /metrics)")
	fs.StringSliceVar(&c.ExcludeColumns, "cdc-exclude-columns", c.ExcludeColumns, "schema.table.column names left out of every change event (comma-separated; as Debezium's column.exclude.list)")
	fs.StringVar(&c.Snapshot, "cdc-snapshot", c.Snapshot, "initial snapshot when the slot is created: initial or never")
	fs.DurationVar(&c.StatusInterval, "cdc-status-interval", c.StatusInterval, "how often the confirmed LSN is reported to PostgreSQL (must be > 0)")
	fs.DurationVar(&c.WatermarkInterval, "cdc-watermark-interval", c.WatermarkInterval, "how often an idle engine publishes the server WAL position on cdc.watermarks (must be > 0)")
	fs.DurationVar(&c.HeartbeatInterval, "cdc-heartbeat-interval", c.HeartbeatInterval, "how often the heartbeat action runs so the slot advances while the tables are idle (negative: off; 0 is refused)")
	fs.StringVar(&c.HeartbeatSQL, "cdc-heartbeat-sql", c.HeartbeatSQL, "heartbeat action (default: "+defaultHeartbeatSQL+")")
	fs.IntVar(&c.MaxBatch, "cdc-max-batch", c.MaxBatch, "most events published in one bus round trip (at least 1)")
	fs.DurationVar(&c.StandbyPoll, "cdc-standby-poll", c.StandbyPoll, "how often a hot-standby engine tries to take over (must be > 0)")
	fs.Float64Var(&c.SlotWALWarn, "cdc-slot-wal-warn", c.SlotWALWarn, "share of max_slot_wal_keep_size the slot may retain before the engine logs a warning (each minute; above 0, at most 1)")
}

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate refuses settings the engine cannot run with, naming the flag.
// (New also requires DatabaseURL.)
func (c *Config) Validate() error {
	if !identRe.MatchString(c.Slot) || !identRe.MatchString(c.Publication) {
		return fmt.Errorf("cdc: --cdc-slot %q and --cdc-publication %q must be lower-case identifiers", c.Slot, c.Publication)
	}
	if len(c.Tables) == 0 {
		return errors.New("cdc: no captured tables")
	}
	for _, t := range c.Tables {
		s, n, ok := strings.Cut(t, ".")
		if !ok || !identRe.MatchString(s) || !identRe.MatchString(n) {
			return fmt.Errorf("cdc: table %q must be schema.table in lower case", t)
		}
	}
	for _, col := range c.ExcludeColumns {
		parts := strings.Split(col, ".")
		if len(parts) != 3 || !identRe.MatchString(parts[0]) || !identRe.MatchString(parts[1]) || !identRe.MatchString(parts[2]) {
			return fmt.Errorf("cdc: --cdc-exclude-columns %q must be schema.table.column in lower case", col)
		}
	}
	if c.TopicPrefix == "" || c.Name == "" {
		return errors.New("cdc: topic prefix and source name required")
	}
	switch c.Snapshot {
	case SnapshotInitial, SnapshotNever:
	default:
		return fmt.Errorf("cdc: --cdc-snapshot %q: want initial or never", c.Snapshot)
	}
	positive := []struct {
		flag string
		d    time.Duration
	}{
		{"--cdc-status-interval", c.StatusInterval},
		{"--cdc-watermark-interval", c.WatermarkInterval},
		{"--cdc-standby-poll", c.StandbyPoll},
		{"flush interval", c.FlushInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("cdc: %s must be > 0, got %v", p.flag, p.d)
		}
	}
	if c.HeartbeatInterval == 0 {
		return errors.New("cdc: --cdc-heartbeat-interval 0: give a positive interval, or a negative one to turn the heartbeat off")
	}
	if c.SlotWALWarn <= 0 || c.SlotWALWarn > 1 {
		return fmt.Errorf("cdc: --cdc-slot-wal-warn must be above 0 and at most 1, got %v", c.SlotWALWarn)
	}
	if c.MaxBatch < 1 {
		return fmt.Errorf("cdc: --cdc-max-batch must be at least 1, got %d", c.MaxBatch)
	}
	return nil
}
