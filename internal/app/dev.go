package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/webhooks"
)

// DevState is written to <data-dir>/dev.json so the CLI and operator tools
// find the running dev system without flags.
type DevState struct {
	DatabaseURL string `json:"database_url"`
	RedisURL    string `json:"redis_url"`
	BusURL      string `json:"bus_url,omitempty"`
	GatewayURL  string `json:"gateway_url"`
	PID         int    `json:"pid"`
}

// DevStatePath is where `docstream dev` writes its DevState.
func DevStatePath(dataDir string) string { return filepath.Join(dataDir, "dev.json") }

// ReadDevState reads the DevState of the dev system using dataDir. A
// missing file is an error wrapping os.ErrNotExist.
func ReadDevState(dataDir string) (DevState, error) {
	var st DevState
	path := DevStatePath(dataDir)
	raw, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// DevConfig is what only `docstream dev` has: the local servers it starts.
type DevConfig struct {
	// MaxSlotWALKeepSize is max_slot_wal_keep_size of the local PostgreSQL.
	MaxSlotWALKeepSize string
}

// DefaultDevConfig is DevConfig when nothing is set.
func DefaultDevConfig() DevConfig { return DevConfig{MaxSlotWALKeepSize: "4GB"} }

// RegisterFlags registers dev's own flags, defaulting to d's values.
func (d *DevConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&d.MaxSlotWALKeepSize, "dev-max-slot-wal-keep-size", d.MaxSlotWALKeepSize, "max_slot_wal_keep_size of the local PostgreSQL: the most WAL the CDC slot may hold back (the engine warns at half of it; beyond it the slot is invalidated and needs a re-snapshot); -1: unlimited")
}

// Dev runs the whole system in one process (`docstream dev`): a local
// PostgreSQL and Redis unless URLs are given, then Run with every chosen
// target; once ready it writes dev.json and prints the banner to stdout.
func Dev(ctx context.Context, c *Config, d DevConfig, log *slog.Logger, stdout io.Writer) error {
	c.Shared.Dev = true
	if !c.given("auth-mode") {
		// The reference's behaviour, so its walkthrough works as written.
		c.Auth.Mode = string(auth.ModeOpen)
	}
	if err := c.Auth.Validate(); err != nil { // resolves the --realtime-jwt-* aliases
		return err
	}
	if c.Auth.JWTSecret == "" {
		// A random secret kept in the data dir, so that dev tokens survive
		// a restart of `docstream dev` like its data does.
		s, err := devSecret(filepath.Join(c.Shared.DataDir, "auth.secret"))
		if err != nil {
			return err
		}
		c.Auth.JWTSecret = string(s)
		log.Info("no --auth-jwt-secret: using the development secret in the data dir")
	}
	if !c.given(webhooks.AllowPrivateFlag) {
		// Receivers in development are local (a script on localhost).
		c.Webhooks.AllowPrivate = true
	}
	if c.Shared.AuditSigningKey == "" {
		// Generated once and kept with the data, like the JWT secret, so
		// trails written before a restart still verify after it.
		path := filepath.Join(c.Shared.DataDir, "audit-signing.key")
		if _, err := audit.DevKey(path); err != nil {
			return fmt.Errorf("audit signing key: %w", err)
		}
		c.Shared.AuditSigningKey = path
		log.Info("no --audit-signing-key: using the development key in the data dir", "path", path)
	}
	if !c.given("shutdown-drain") {
		// One process, no load balancer to move traffic away: Ctrl-C stops
		// at once.
		c.Shared.HTTP.ShutdownDrain = 0
	}
	start := time.Now()
	var stack localstack.Stack
	defer stack.Close()
	if c.Shared.DatabaseURL == "" {
		pg, err := localstack.StartPostgres(ctx, filepath.Join(c.Shared.DataDir, "pg"), localstack.PostgresOptions{Durable: true, MaxSlotWALKeepSize: d.MaxSlotWALKeepSize})
		if err != nil {
			return err
		}
		stack.Add(pg.Stop)
		c.Shared.DatabaseURL = pg.URL()
		log.Info("local postgres started", "url", redactURL(pg.URL()), "dir", pg.Dir)
	}
	if c.Shared.RedisURL == "" {
		r, err := localstack.StartRedis(ctx, filepath.Join(c.Shared.DataDir, "redis"), 0)
		if err != nil {
			return err
		}
		stack.Add(r.Stop)
		c.Shared.RedisURL = r.URL()
		log.Info("local redis started", "url", r.URL())
	}
	return Run(ctx, c, log, func(sys *System) {
		st := DevState{DatabaseURL: c.Shared.DatabaseURL, RedisURL: c.Shared.RedisURL, BusURL: sys.BusURL(), PID: os.Getpid(),
			GatewayURL: gatewayURL(c, sys)}
		if err := writeDevState(c.Shared.DataDir, st); err != nil {
			log.Warn("dev.json not written: the CLI will not find this system without flags", "err", err)
		}
		fmt.Fprintf(stdout, "\ndocstream dev is ready in %v\n\n  %s\n\n  database  %s\n  redis     %s\n  bus       %s\n\nCtrl-C stops everything; data stays in %s\n\n",
			time.Since(start).Round(time.Millisecond), strings.Join(sys.Listening(), "\n  "),
			c.Shared.DatabaseURL, c.Shared.RedisURL, cmp.Or(st.BusURL, "in-process only"), c.Shared.DataDir)
	})
}

// gatewayURL is where this system's gateway answers: its bound port when
// it runs here, else --gateway-addr.
func gatewayURL(c *Config, sys *System) string {
	if u := sys.URL("gateway"); u != "" {
		return u
	}
	return "http://" + loopbackHostPort(c.Gateway.Addr)
}

func writeDevState(dataDir string, st DevState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(DevStatePath(dataDir), b, 0o600)
}

// redactURL hides a URL's password: secrets never reach a log (the banner
// and dev.json, which are the developer's own, keep it).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
