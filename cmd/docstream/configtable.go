package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/config"
)

func init() {
	commands = append(commands, func(e *env) *cobra.Command {
		return &cobra.Command{
			Use:    "config-table",
			Short:  "Print the serve/dev configuration as the README's Markdown table",
			Hidden: true,
			Args:   cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
				bindServeFlags(fs, "all")
				fmt.Fprint(e.stdout, config.MarkdownTable(fs))
			},
		}
	})
}
