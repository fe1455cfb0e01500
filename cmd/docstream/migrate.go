package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
)

func newMigrateCmd(e *env) *cobra.Command {
	var url, level string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations (under an advisory lock) and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return errors.New("--direct-database-url (DIRECT_DATABASE_URL) is required: migrations need a session, so not PgBouncer in transaction mode")
			}
			return postgres.Migrate(cmd.Context(), url, logging.New(e.stderr, level))
		},
	}
	cmd.Flags().StringVar(&url, "direct-database-url", "", "PostgreSQL URL reaching the server directly")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return cmd
}
