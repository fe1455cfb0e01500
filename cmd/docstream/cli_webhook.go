package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/config"
)

func newWebhookCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Manage webhook endpoints: create, list, update, delete, rotate secrets, deliveries, redeliver, replay, test"}
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
	printWebhook := func(c *userClient, w api.Webhook) error {
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "id\t%s\nurl\t%s\nevents\t%s\nenabled\t%v\n", w.ID, w.URL, strings.Join(w.Events, ","), w.Enabled)
		if w.DisabledReason != "" {
			fmt.Fprintf(tw, "disabled because\t%s\n", w.DisabledReason)
		}
		if w.FailingSince != nil {
			fmt.Fprintf(tw, "failing since\t%s\n", w.FailingSince.Format(time.RFC3339))
		}
		return tw.Flush()
	}

	var req api.CreateWebhookRequest
	create := &cobra.Command{
		Use: "create URL", Short: "Register an endpoint; its signing secret (whsec_…) is printed this once", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			req.URL = args[0]
			w, err := c.api.CreateWebhook(ctx, req)
			if err != nil {
				return err
			}
			return c.print(w, func() error {
				if err := printWebhook(c, w.Webhook); err != nil {
					return err
				}
				_, err := fmt.Fprintf(c.stdout, "\n%s\n\nThis is the only time the signing secret is shown: store it now.\n", w.Secret)
				return err
			})
		}),
	}
	create.Flags().StringSliceVar(&req.Events, "event", nil, "event types: document.created, document.updated, document.deleted, document.signed, signature.created; repeat or separate with commas")
	create.Flags().StringVar(&req.Description, "description", "", "what the endpoint is for")
	create.Flags().StringVar(&req.DocumentID, "document", "", "only this document's events")
	create.Flags().StringVar(&req.CreatedBy, "created-by", "", "only events of documents with this created_by")

	list := &cobra.Command{
		Use: "list", Short: "List your endpoints (every one for an admin)", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *userClient, _ []string) error {
			ws, err := c.api.ListWebhooks(ctx)
			if err != nil {
				return err
			}
			return c.print(api.Webhooks{Webhooks: ws}, func() error {
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tURL\tEVENTS\tENABLED\tFAILING SINCE")
				for _, w := range ws {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", w.ID, oneLine(w.URL, 60), strings.Join(w.Events, ","), w.Enabled, when(w.FailingSince, "-"))
				}
				return tw.Flush()
			})
		}),
	}

	get := &cobra.Command{
		Use: "get ID", Short: "Show an endpoint", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			w, err := c.api.GetWebhook(ctx, args[0])
			if err != nil {
				return err
			}
			return c.print(w, func() error { return printWebhook(c, *w) })
		}),
	}

	var enable, disable bool
	var newURL string
	var newEvents []string
	update := &cobra.Command{
		Use: "update ID", Short: "Change an endpoint's URL or events, or enable or disable it", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			var u api.UpdateWebhookRequest
			if newURL != "" {
				u.URL = &newURL
			}
			if len(newEvents) > 0 {
				u.Events = &newEvents
			}
			if enable || disable {
				v := enable
				u.Enabled = &v
			}
			w, err := c.api.UpdateWebhook(ctx, args[0], u)
			if err != nil {
				return err
			}
			return c.print(w, func() error { return printWebhook(c, *w) })
		}),
	}
	update.Flags().StringVar(&newURL, "url", "", "new URL")
	update.Flags().StringSliceVar(&newEvents, "event", nil, "new event types (replace the list)")
	update.Flags().BoolVar(&enable, "enable", false, "enable it (clears the reason it was disabled for)")
	update.Flags().BoolVar(&disable, "disable", false, "disable it")
	update.MarkFlagsMutuallyExclusive("enable", "disable")

	del := &cobra.Command{
		Use: "delete ID", Short: "Remove an endpoint and its deliveries", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if err := c.api.DeleteWebhook(ctx, args[0]); err != nil {
				return err
			}
			return c.print(map[string]string{"id": args[0], "status": "deleted"}, func() error {
				_, err := fmt.Fprintf(c.stdout, "deleted %s\n", args[0])
				return err
			})
		}),
	}

	var overlap string
	rotate := &cobra.Command{
		Use: "rotate ID", Short: "Make a new signing secret (printed once); the old one keeps signing during the overlap", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			w, err := c.api.RotateWebhookSecret(ctx, args[0], overlap)
			if err != nil {
				return err
			}
			return c.print(w, func() error {
				_, err := fmt.Fprintf(c.stdout, "%s\n\nThe previous secret signs too until %s.\n", w.Secret, when(w.PreviousSecretUntil, "now"))
				return err
			})
		}),
	}
	rotate.Flags().StringVar(&overlap, "overlap", "", "how long the old secret keeps signing (default 24h; 0s: stop at once)")

	var status string
	var limit int
	deliveries := &cobra.Command{
		Use: "deliveries ID", Short: "List an endpoint's newest deliveries and their attempts", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			ds, err := c.api.WebhookDeliveries(ctx, args[0], status, limit)
			if err != nil {
				return err
			}
			return c.print(api.Deliveries{Deliveries: ds}, func() error {
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tATTEMPTS\tLAST\tWEBHOOK-ID\tERROR")
				for _, d := range ds {
					last := "-"
					if d.LastStatus != 0 {
						last = fmt.Sprint(d.LastStatus)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Type, d.Status, d.Attempts, last, d.WebhookID, oneLine(d.LastError, 60))
				}
				return tw.Flush()
			})
		}),
	}
	deliveries.Flags().StringVar(&status, "status", "", "only pending, delivered, failed or skipped")
	deliveries.Flags().IntVar(&limit, "limit", 0, "how many (1-500; default 50)")

	redeliver := &cobra.Command{
		Use: "redeliver ID DELIVERY", Short: "Send one delivery again (same webhook-id)", Args: cobra.ExactArgs(2),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if err := c.api.RedeliverWebhook(ctx, args[0], args[1]); err != nil {
				return err
			}
			return c.print(api.Queued{Queued: 1}, func() error { _, err := fmt.Fprintln(c.stdout, "queued 1"); return err })
		}),
	}

	var rr api.ReplayRequest
	var since, until string
	replay := &cobra.Command{
		Use: "replay ID", Short: "Queue again every event of a commit LSN range or a time range (RFC 3339)", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			for _, p := range []struct {
				s   string
				dst **time.Time
			}{{since, &rr.Since}, {until, &rr.Until}} {
				if p.s == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, p.s)
				if err != nil {
					return fmt.Errorf("--since/--until: %w", err)
				}
				*p.dst = &t
			}
			n, err := c.api.ReplayWebhook(ctx, args[0], rr)
			if err != nil {
				return err
			}
			return c.print(api.Queued{Queued: n}, func() error { _, err := fmt.Fprintf(c.stdout, "queued %d\n", n); return err })
		}),
	}
	replay.Flags().Uint64Var(&rr.FromLSN, "from-lsn", 0, "first commit LSN")
	replay.Flags().Uint64Var(&rr.ToLSN, "to-lsn", 0, "last commit LSN")
	replay.Flags().StringVar(&since, "since", "", "from this time (RFC 3339)")
	replay.Flags().StringVar(&until, "until", "", "until this time (RFC 3339)")

	test := &cobra.Command{
		Use: "test ID", Short: "Send a webhook.test event", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if err := c.api.TestWebhook(ctx, args[0]); err != nil {
				return err
			}
			return c.print(api.Queued{Queued: 1}, func() error { _, err := fmt.Fprintln(c.stdout, "queued a test event"); return err })
		}),
	}
	for _, sub := range []*cobra.Command{create, list, get, update, del, rotate, deliveries, redeliver, replay, test} {
		config.NoEnv(sub.Flags())
		cmd.AddCommand(sub)
	}
	return cmd
}
