package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/config"
)

func init() {
	commands = append(commands, newSignCmd, newSearchCmd)
}

type signatureOut struct {
	ID            string `json:"id"`
	DocumentID    string `json:"document_id"`
	SignerEmail   string `json:"signer_email"`
	SignerName    string `json:"signer_name"`
	SignedAt      string `json:"signed_at"`
	SignatureData string `json:"signature_data"`
	IPAddress     string `json:"ip_address"`
}

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
		in := map[string]string{"document_id": args[0], "signer_email": email, "signer_name": name}
		for k, v := range map[string]string{"signature_data": data, "document_status": status, "ip_address": ip} {
			if v != "" {
				in[k] = v
			}
		}
		var s signatureOut
		raw, err := c.call(cmd.Context(), http.MethodPost, "/signatures", nil, in, &s)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "signature\t%s\ndocument\t%s\nsigner\t%s <%s>\nsigned at\t%s\n", s.ID, s.DocumentID, s.SignerName, s.SignerEmail, s.SignedAt)
		return w.Flush()
	}
	return cmd
}

type searchHit struct {
	docOut
	Score      float64             `json:"score"`
	Highlights map[string][]string `json:"highlights"`
}

type searchResult struct {
	Total     int64       `json:"total"`
	Documents []searchHit `json:"documents"`
	TookMs    float64     `json:"took_ms"`
	From      int         `json:"from"`
	Size      int         `json:"size"`
}

func newSearchCmd(e *env) *cobra.Command {
	var status, createdBy string
	var from, size int
	cmd := &cobra.Command{
		Use:   "search [QUERY]",
		Short: "Full-text search over documents (title, content), with --status/--created-by filters",
		Args:  cobra.MaximumNArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only documents with this status")
	cmd.Flags().StringVar(&createdBy, "created-by", "", "only documents by this author")
	cmd.Flags().IntVar(&from, "from", 0, "hits to skip")
	cmd.Flags().IntVar(&size, "size", 10, "hits to show")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		q := url.Values{"from": {strconv.Itoa(from)}, "size": {strconv.Itoa(size)}}
		if len(args) == 1 {
			q.Set("q", args[0])
		}
		if status != "" {
			q.Set("status", status)
		}
		if createdBy != "" {
			q.Set("created_by", createdBy)
		}
		var res searchResult
		raw, err := c.call(cmd.Context(), http.MethodGet, "/search", q, nil, &res)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		fmt.Fprintf(c.stdout, "%d found in %g ms\n", res.Total, res.TookMs)
		if len(res.Documents) == 0 {
			return nil
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SCORE\tID\tSTATUS\tTITLE\tMATCH")
		for _, h := range res.Documents {
			fmt.Fprintf(w, "%.2f\t%s\t%s\t%s\t%s\n", h.Score, h.ID, h.Status, oneLine(h.Title, 50), oneLine(firstHighlight(h.Highlights), 60))
		}
		return w.Flush()
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
