package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/cdc"
)

func init() {
	commands = append(commands, newCDCCmd)
}

func newCDCCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "cdc", Short: "Operator tools for change data capture"}
	var (
		dbURL, dataDir string
		asJSONOut      bool
	)
	f := &cdcFlags{}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the replication slot, publication, confirmed LSN and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := findDatabaseURL(dbURL, dataDir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			defer conn.Close(ctx)
			info, err := cdc.Inspect(ctx, conn, f.cfg.Slot, f.cfg.Publication)
			if err != nil {
				return err
			}
			if asJSONOut {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
			row("slot", info.Slot)
			if !info.Exists {
				row("state", "missing (the cdc target creates it on start)")
			} else {
				state := "inactive (no engine attached)"
				if info.Active {
					state = "active"
					if info.ActivePID != nil {
						state += fmt.Sprintf(" (walsender pid %d)", *info.ActivePID)
					}
				}
				row("state", state)
				row("confirmed lsn", formatLSN(info.ConfirmedLSN))
				row("restart lsn", formatLSN(info.RestartLSN))
			}
			row("current wal lsn", formatLSN(info.CurrentLSN))
			if info.Exists {
				row("lag", fmt.Sprintf("%d bytes", info.LagBytes))
			}
			if info.SnapshotDone != nil {
				row("initial snapshot", map[bool]string{true: "done", false: "not finished"}[*info.SnapshotDone])
			}
			pub := "missing"
			if len(info.Tables) > 0 {
				pub = strings.Join(info.Tables, ", ")
			}
			row("publication", info.Publication+": "+pub)
			return tw.Flush()
		},
	}
	fs := status.Flags()
	f.bind(fs)
	fs.StringVar(&dbURL, "database-url", "", "PostgreSQL URL reaching the server directly; default: the running dev system's (from <data-dir>/dev.json)")
	fs.StringVar(&dataDir, "data-dir", "./var", "where `docstream dev` keeps dev.json")
	fs.BoolVar(&asJSONOut, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}

func findDatabaseURL(flag, dataDir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	path := filepath.Join(dataDir, "dev.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no --database-url and no %s: start `docstream dev` or pass --database-url", path)
	}
	if err != nil {
		return "", err
	}
	var st devState
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return st.DatabaseURL, nil
}
