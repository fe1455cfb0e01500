package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/httpx"
)

// cdcFlags are the cdc target's settings; `cdc status` reads the slot and
// publication names from the same flags.
type cdcFlags struct {
	addr string
	cfg  cdc.Config
}

func (f *cdcFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.cfg.Slot, "cdc-slot", "docstream_slot", "logical replication slot the CDC engine reads (created if missing)")
	fs.StringVar(&f.cfg.Publication, "cdc-publication", "docstream_pub", "publication of the captured tables (created if missing)")
}

func init() {
	register(&target{name: "cdc", bind: func(fs *pflag.FlagSet) startFunc {
		f := &cdcFlags{}
		f.bind(fs)
		fs.StringVar(&f.addr, "cdc-addr", ":8083", "CDC engine health and metrics listen address (/health/*, /metrics)")
		fs.StringVar(&f.cfg.Snapshot, "cdc-snapshot", cdc.SnapshotInitial, "initial snapshot when the slot is created: initial or never")
		fs.DurationVar(&f.cfg.StatusInterval, "cdc-status-interval", 10*time.Second, "how often the confirmed LSN is reported to PostgreSQL")
		fs.DurationVar(&f.cfg.WatermarkInterval, "cdc-watermark-interval", time.Second, "how often an idle engine publishes the server WAL position on cdc.watermarks")
		fs.DurationVar(&f.cfg.HeartbeatInterval, "cdc-heartbeat-interval", 30*time.Second, "how often the heartbeat action runs so the slot advances while the tables are idle (negative: off)")
		fs.StringVar(&f.cfg.HeartbeatSQL, "cdc-heartbeat-sql", "", "heartbeat action (default: SELECT pg_logical_emit_message(false, 'docstream.heartbeat', ''))")
		fs.IntVar(&f.cfg.MaxBatch, "cdc-max-batch", 1000, "most events published in one bus round trip")
		fs.DurationVar(&f.cfg.StandbyPoll, "cdc-standby-poll", time.Second, "how often a hot-standby engine tries to take over")
		fs.Float64Var(&f.cfg.SlotWALWarn, "cdc-slot-wal-warn", 0.5, "share of max_slot_wal_keep_size the slot may retain before the engine logs a warning (each minute)")
		return func(ctx context.Context, sys *system) error {
			log := sys.log.With("service", "cdc")
			// Replication and the session advisory lock need a real
			// session: never PgBouncer.
			url := sys.cfg.directURL()
			if url == "" {
				return errors.New("cdc needs --direct-database-url or --database-url reaching PostgreSQL directly")
			}
			b, err := sys.Bus(ctx)
			if err != nil {
				return err
			}
			cfg := f.cfg
			cfg.DatabaseURL, cfg.Version, cfg.Log = url, version, log
			e, err := cdc.New(cfg, b)
			if err != nil {
				return err
			}
			ln, err := sys.Listen("cdc", f.addr)
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			httpx.Routes(mux,
				httpx.Check{Name: "bus", Probe: b.Ping},
				// A standby is ready too: it is doing its job. An active
				// engine that keeps failing is not.
				httpx.Check{Name: "engine", Probe: func(context.Context) error {
					if st := e.Status(); st.LastError != "" && !st.Streaming {
						return fmt.Errorf("cdc: %s", st.LastError)
					}
					return nil
				}},
			)
			sys.Go("cdc engine", e.Run)
			// Report started once capture is live (or this instance is a
			// standby), so "ready" means new commits are streamed as they happen.
			if st := e.WaitStarted(ctx, 15*time.Second); !st.Streaming && !st.Standby {
				log.Warn("cdc engine not streaming yet; continuing start-up", "last_error", st.LastError)
			}
			sys.Go("cdc http", func(ctx context.Context) error {
				return httpx.Serve(ctx, ln, httpx.Wrap("cdc", log, mux), log, sys.cfg.HTTP)
			})
			return nil
		}
	}})
}
