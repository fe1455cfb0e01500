package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/cdc"
)

func newCDCCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "cdc", Short: "Operator tools for change data capture"}
	var (
		dbURL, dataDir, output string
		asJSONOut              bool
	)
	slot := cdc.DefaultConfig()
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the replication slot, publication, confirmed LSN and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSONOut {
				output = outputJSON
			}
			if output != outputText && output != outputJSON {
				return fmt.Errorf("--output %q: choose text or json", output)
			}
			url, err := findDatabaseURL(dbURL, dataDir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			conn, err := cdc.ConnectForStatus(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			info, err := cdc.Inspect(ctx, conn, slot.Slot, slot.Publication)
			if err != nil {
				return err
			}
			if output == outputJSON {
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
				row("confirmed lsn", cdc.DescribeLSN(info.ConfirmedLSN))
				row("restart lsn", cdc.DescribeLSN(info.RestartLSN))
			}
			row("current wal lsn", cdc.DescribeLSN(info.CurrentLSN))
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
			engine := "none (no engine holds the slot's lock: nothing captures)"
			if a := info.ActiveEngine; a != nil {
				engine = fmt.Sprintf("pid %d from %s (%s), since %s; other engines are standbys", a.PID, a.ClientAddr, a.ApplicationName,
					a.Since.UTC().Format(time.RFC3339))
			}
			row("active engine", engine)
			return tw.Flush()
		},
	}
	fs := status.Flags()
	slot.RegisterSlotFlags(fs)
	fs.StringVar(&dbURL, "database-url", "", "PostgreSQL URL (directly or through PgBouncer); default: the running dev system's (from <data-dir>/dev.json)")
	fs.StringVar(&dataDir, "data-dir", "./var", "where `docstream dev` keeps dev.json")
	// As in the user commands: the env fallback reads DOCSTREAM_OUTPUT,
	// not the far too generic OUTPUT; --output is an alias.
	fs.StringVarP(&output, "docstream-output", "o", outputText, "output format: text or json; alias --output")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "output" {
			name = "docstream-output"
		}
		return pflag.NormalizedName(name)
	})
	// --json was the first spelling; kept working, no longer documented.
	fs.BoolVar(&asJSONOut, "json", false, "print JSON (same as -o json)")
	_ = fs.MarkHidden("json")
	cmd.AddCommand(status)
	return cmd
}

func findDatabaseURL(flag, dataDir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	st, err := app.ReadDevState(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no --database-url and no %s: start `docstream dev` or pass --database-url", app.DevStatePath(dataDir))
	}
	if err != nil {
		return "", err
	}
	return st.DatabaseURL, nil
}
