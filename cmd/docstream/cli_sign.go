package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/config"
)

func newSignCmd(e *env) *cobra.Command {
	var email, name, data, status, ip string
	cmd := &cobra.Command{
		Use:   "sign DOCUMENT_ID",
		Short: "Sign a document (the document then reads signed)",
		Args:  cobra.ExactArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&email, "email", "", "signer's email")
	cmd.Flags().StringVar(&name, "name", "", "signer's name")
	cmd.Flags().StringVar(&data, "data", "", "signature data (e.g. a base64 image)")
	cmd.Flags().StringVar(&status, "document-status", "", "status the document is expected to move through (the reference sends pending)")
	cmd.Flags().StringVar(&ip, "ip", "", "signer's IP address (default: as seen by the server)")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		sig, err := c.api.CreateSignature(cmd.Context(), api.CreateSignatureRequest{
			DocumentID: args[0], SignerEmail: email, SignerName: name,
			SignatureData: data, DocumentStatus: api.Status(status), IPAddress: ip,
		})
		if err != nil {
			return shown(err)
		}
		return c.print(sig, func() error {
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "signature\t%s\ndocument\t%s\nsigner\t%s <%s>\nsigned at\t%s\n", sig.ID, sig.DocumentID, sig.SignerName, sig.SignerEmail, sig.SignedAt.Format(time.RFC3339Nano))
			return w.Flush()
		})
	}
	return cmd
}

func newSearchCmd(e *env) *cobra.Command {
	var status, createdBy, signing string
	var from, size int
	cmd := &cobra.Command{
		Use:   "search [QUERY]",
		Short: "Full-text search over documents (title, content), with --status/--created-by/--signing-status filters",
		Args:  cobra.MaximumNArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only documents with this status")
	cmd.Flags().StringVar(&createdBy, "created-by", "", "only documents by this author")
	cmd.Flags().StringVar(&signing, "signing-status", "", "only documents whose newest signing request is in this state (draft, sent, in_progress, completed, declined, expired, cancelled)")
	cmd.Flags().IntVar(&from, "from", 0, "hits to skip")
	cmd.Flags().IntVar(&size, "size", 10, "hits to show")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		q := api.SearchRequest{From: from, Size: size, Status: api.Status(status), CreatedBy: createdBy, SigningStatus: api.RequestState(signing)}
		if len(args) == 1 {
			q.Query = args[0]
		}
		res, err := c.api.Search(cmd.Context(), q)
		if err != nil {
			return shown(err)
		}
		return c.print(res, func() error {
			more := ""
			if res.TotalRelation == api.TotalAtLeast {
				more = "+"
			}
			fmt.Fprintf(c.stdout, "%d%s found in %d ms\n", res.Total, more, res.TookMs)
			if len(res.Documents) == 0 {
				return nil
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SCORE\tID\tSTATUS\tTITLE\tMATCH")
			for _, h := range res.Documents {
				fmt.Fprintf(w, "%.2f\t%s\t%s\t%s\t%s\n", h.Score, h.ID, h.Status, oneLine(h.Title, 50), oneLine(firstHighlight(h.Highlights), 60))
			}
			return w.Flush()
		})
	}
	return cmd
}

func firstHighlight(h map[string][]string) string {
	for _, field := range []string{"title", "content"} {
		if len(h[field]) > 0 {
			return strings.TrimSpace(h[field][0])
		}
	}
	for _, v := range h {
		if len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
