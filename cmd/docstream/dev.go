package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
)

func init() {
	commands = append(commands, newDevCmd)
}

// devState is written to <data-dir>/dev.json so the CLI and operator tools
// find the running dev system without flags.
type devState struct {
	DatabaseURL string `json:"database_url"`
	RedisURL    string `json:"redis_url"`
	BusURL      string `json:"bus_url,omitempty"`
	GatewayURL  string `json:"gateway_url"`
	PID         int    `json:"pid"`
}

func newDevCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: local PostgreSQL and Redis, embedded NATS, Bleve, file blobs",
		Args:  cobra.NoArgs,
	}
	f := bindServeFlags(cmd.Flags(), "all")
	var slotWALKeep string
	cmd.Flags().StringVar(&slotWALKeep, "dev-max-slot-wal-keep-size", "4GB", "max_slot_wal_keep_size of the local PostgreSQL: the most WAL the CDC slot may hold back (the engine warns at half of it; beyond it the slot is invalidated and needs a re-snapshot); -1: unlimited")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		log := logging.New(e.stderr, f.shared.LogLevel)
		f.shared.Dev = true
		start := time.Now()
		var stack localstack.Stack
		defer stack.Close()
		if f.shared.DatabaseURL == "" {
			pg, err := localstack.StartPostgres(ctx, filepath.Join(f.shared.DataDir, "pg"), localstack.PostgresOptions{Durable: true, MaxSlotWALKeepSize: slotWALKeep})
			if err != nil {
				return err
			}
			stack.Add(pg.Stop)
			f.shared.DatabaseURL = pg.URL()
			log.Info("local postgres started", "url", pg.URL(), "dir", pg.Dir)
		}
		if f.shared.RedisURL == "" {
			r, err := localstack.StartRedis(ctx, filepath.Join(f.shared.DataDir, "redis"), 0)
			if err != nil {
				return err
			}
			stack.Add(r.Stop)
			f.shared.RedisURL = r.URL()
			log.Info("local redis started", "url", r.URL())
		}
		statePath := filepath.Join(f.shared.DataDir, "dev.json")
		return serve(ctx, f, log, func(sys *system) {
			st := devState{DatabaseURL: f.shared.DatabaseURL, RedisURL: f.shared.RedisURL, BusURL: sys.busURL(), PID: os.Getpid(),
				GatewayURL: "http://localhost:8000"}
			if b, err := json.MarshalIndent(st, "", "  "); err == nil {
				_ = os.WriteFile(statePath, b, 0o600)
			}
			fmt.Fprintf(e.stdout, "\ndocstream dev is ready in %v\n\n  %s\n\n  database  %s\n  redis     %s\n  bus       %s\n\nCtrl-C stops everything; data stays in %s\n\n",
				time.Since(start).Round(time.Millisecond), strings.Join(sys.listening, "\n  "),
				f.shared.DatabaseURL, f.shared.RedisURL, cmp.Or(st.BusURL, "in-process only"), f.shared.DataDir)
		})
	}
	return cmd
}
