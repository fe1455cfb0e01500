package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// env is how commands read the environment (tests pass their own).
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func newRootCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "docstream",
		Short:         "Event-driven document management: documents, signatures, CDC, search and live updates",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Every flag falls back to its environment variable.
			var err error
			for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
				if e := config.ApplyEnv(fs, getenv); e != nil && err == nil {
					err = e
				}
			}
			return err
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range []func(*env) *cobra.Command{
		// The servers (internal/app).
		newServeCmd, newDevCmd, newMigrateCmd, newConfigTableCmd,
		// Operator tools.
		newCDCCmd, newEventsCmd, newBenchCmd, newAuditCmd,
		// The user CLI.
		newDocCmd, newSignCmd, newRequestCmd, newSearchCmd, newWatchCmd, newLoginCmd, newLogoutCmd, newTokenCmd, newAPIKeyCmd, newExtractCmd, newWebhookCmd, newVerifyCmd,
	} {
		root.AddCommand(c(e))
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(stdout, "docstream", version) },
	})
	annotate(root)
	return root
}

func annotate(c *cobra.Command) {
	config.AnnotateUsage(c.Flags())
	config.AnnotateUsage(c.PersistentFlags())
	for _, sub := range c.Commands() {
		annotate(sub)
	}
}
