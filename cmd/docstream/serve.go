package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/config"
	"github.com/docstream/docstream/internal/logging"
)

// serverFlags registers every flag of serve and dev on fs (the module
// table's, whatever targets are chosen, so --help and the README list them
// all) and returns the configuration they fill.
func serverFlags(fs *pflag.FlagSet) *app.Config {
	c := app.DefaultConfig()
	c.Version = version
	c.RegisterFlags(fs)
	return &c
}

// serverLog is the log of serve and dev, which the libraries' own log
// lines join.
func serverLog(e *env, level string) *slog.Logger {
	log := logging.New(e.stderr, level)
	logging.Libraries(log)
	return log
}

func newServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run services (--targets) against configured backends",
		Args:  cobra.NoArgs,
	}
	c := serverFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return app.Run(cmd.Context(), c, serverLog(e, c.Shared.LogLevel), nil)
	}
	return cmd
}

func newDevCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: local PostgreSQL and Redis, embedded NATS, Bleve, file blobs",
		Args:  cobra.NoArgs,
	}
	c := serverFlags(cmd.Flags())
	d := app.DefaultDevConfig()
	d.RegisterFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return app.Dev(cmd.Context(), c, d, serverLog(e, c.Shared.LogLevel), e.stdout)
	}
	return cmd
}

func newConfigTableCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:    "config-table",
		Short:  "Print the serve/dev configuration as the README's Markdown table",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			serverFlags(fs)
			fmt.Fprint(e.stdout, config.MarkdownTable(fs))
		},
	}
}
