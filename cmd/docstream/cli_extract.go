package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/config"
)

// newExtractCmd re-runs extractions: one document (extract ID), or many
// (--all, --failed), waiting for the queue to drain with a progress bar.
func newExtractCmd(e *env) *cobra.Command {
	var all, failed, noWait, noProgress bool
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "extract [ID]",
		Short: "Extract text and thumbnails again: one document, or --all (backfill) / --failed, with a progress bar",
		Args:  cobra.MaximumNArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every document with content (a backfill of documents older than the bus's retention)")
	cmd.Flags().BoolVar(&failed, "failed", false, "the failed and unsupported extractions (after installing a tool or raising a limit)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "queue and return, without waiting for the extractions to end")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar while waiting")
	cmd.Flags().DurationVar(&poll, "poll", 500*time.Millisecond, "how often the queue is read while waiting")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if len(args) == 1 {
			if all || failed {
				return fmt.Errorf("give a document ID or --all/--failed, not both")
			}
			if _, err := c.api.ExtractDocument(ctx, args[0]); err != nil {
				return shown(err)
			}
			if noWait {
				return nil
			}
			x, err := c.api.WaitExtraction(ctx, args[0], poll)
			if err != nil {
				return shown(err)
			}
			return c.print(x, func() error {
				fmt.Fprintf(c.stdout, "%s: %s", x.DocumentID, x.Status)
				if x.Reason != "" {
					fmt.Fprintf(c.stdout, " (%s: %s)", x.Reason, x.Error)
				}
				fmt.Fprintf(c.stdout, ", %d pages, %d bytes of text, %d ms\n", x.Pages, x.TextSize, x.DurationMs)
				return nil
			})
		}
		if !all && !failed {
			return fmt.Errorf("give a document ID, --all or --failed")
		}
		res, err := c.api.RerunExtractions(ctx, api.ExtractRequest{All: all, Failed: failed})
		if err != nil {
			return shown(err)
		}
		fmt.Fprintf(c.stderr, "%d extractions queued\n", res.Queued)
		if noWait || res.Pending == 0 {
			return c.print(res, func() error { return nil })
		}
		q, err := waitQueue(ctx, c, res.Pending, poll, !noProgress)
		if err != nil {
			return shown(err)
		}
		return c.print(q, func() error {
			fmt.Fprintf(c.stdout, "queue drained: %d done, %d failed, %d unsupported, %d skipped\n",
				q.ByState[api.ExtractionDone], q.ByState[api.ExtractionFailed], q.ByState[api.ExtractionUnsupported], q.ByState[api.ExtractionSkipped])
			return nil
		})
	}
	return cmd
}

// waitQueue polls the queue until nothing is pending or running, showing
// how much of total is done.
func waitQueue(ctx context.Context, c *userClient, total int64, poll time.Duration, progress bool) (*api.ExtractionQueue, error) {
	var bar *progressbar.ProgressBar
	if progress {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("extracting"), progressbar.OptionSetWriter(c.stderr),
			progressbar.OptionShowCount(), progressbar.OptionSetWidth(20), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(c.stderr, "\n") }))
	}
	for {
		q, err := c.api.ExtractionQueue(ctx)
		if err != nil {
			return nil, err
		}
		left := q.Pending + q.Running
		if bar != nil {
			if left > total { // more arrived meanwhile (new uploads)
				total = left
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(total - left)
		}
		if left == 0 {
			if bar != nil {
				_ = bar.Finish()
			}
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}
