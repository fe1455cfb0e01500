package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/config"
)

func newAPIKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Create, list and revoke API keys for machines (admin; open in docstream dev)"}
	cf := bindClientFlags(cmd)
	run := func(f func(ctx context.Context, c *userClient, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(e)
			if err != nil {
				return err
			}
			return shown(f(cmd.Context(), c, args))
		}
	}

	var name, expiresIn string
	var scopes []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; the key is printed this once and cannot be shown again",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *userClient, _ []string) error {
			k, err := c.api.CreateAPIKey(ctx, api.CreateAPIKeyRequest{Name: name, Scopes: scopes, ExpiresIn: expiresIn})
			if err != nil {
				return err
			}
			return c.print(k, func() error {
				w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintf(w, "id\t%s\nname\t%s\nscopes\t%s\nexpires\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), when(k.ExpiresAt, "never"))
				if err := w.Flush(); err != nil {
					return err
				}
				_, err := fmt.Fprintf(c.stdout, "\n%s\n\nThis is the only time the key is shown: store it now. Send it as \"Authorization: Bearer <key>\".\n", k.Key)
				return err
			})
		}),
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for (1–100 characters)")
	create.Flags().StringSliceVar(&scopes, "scope", nil, "read, write, sign or admin; repeat or separate with commas")
	create.Flags().StringVar(&expiresIn, "expires-in", "", `lifetime: a duration ("720h") or days ("90d"); default: never expires`)

	list := &cobra.Command{
		Use: "list", Short: "List API keys, newest first (never their secrets)", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *userClient, _ []string) error {
			keys, err := c.api.ListAPIKeys(ctx)
			if err != nil {
				return err
			}
			return c.print(api.APIKeys{Keys: keys}, func() error {
				w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, oneLine(k.Name, 40), strings.Join(k.Scopes, ","),
						k.CreatedAt.Format(time.RFC3339), when(k.LastUsedAt, "never"), when(k.ExpiresAt, "never"), when(k.RevokedAt, "-"))
				}
				return w.Flush()
			})
		}),
	}

	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API key (by its id; a whole key is accepted and only its id is sent)", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			id := keyID(args[0])
			if err := c.api.RevokeAPIKey(ctx, id); err != nil {
				return err
			}
			return c.print(map[string]string{"id": id, "status": "revoked"}, func() error {
				_, err := fmt.Fprintf(c.stdout, "revoked %s\n", id)
				return err
			})
		}),
	}
	for _, sub := range []*cobra.Command{create, list, revoke} {
		config.NoEnv(sub.Flags())
		cmd.AddCommand(sub)
	}
	return cmd
}

// keyID is the id of a whole key pasted in its place, so the secret never
// travels in a URL (and so never into an access log); anything else is
// taken as an id.
func keyID(arg string) string {
	if rest, ok := strings.CutPrefix(arg, auth.APIKeyPrefix); ok {
		if id, _, ok := strings.Cut(rest, "_"); ok {
			return id
		}
	}
	return arg
}

func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}
