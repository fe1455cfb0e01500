package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/config"
)

// newRequestCmd is `docstream request create|status|cancel`: signing
// requests with several recipients (README "Signing requests").
func newRequestCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "request", Short: "Signing requests: ask several recipients to sign, approve or view a document"}
	cmd.AddCommand(newRequestCreateCmd(e), newRequestStatusCmd(e), newRequestCancelCmd(e))
	return cmd
}

// recipientFlag parses EMAIL[:ORDER] (order 1 when left out).
func recipientFlag(role api.Role, vals []string) ([]api.RecipientInput, error) {
	var out []api.RecipientInput
	for _, v := range vals {
		email, order := v, 1
		if i := strings.LastIndexByte(v, ':'); i > 0 {
			n, err := strconv.Atoi(v[i+1:])
			if err != nil {
				return nil, fmt.Errorf("--%s %q: the order after ':' must be a number", role, v)
			}
			email, order = v[:i], n
		}
		out = append(out, api.RecipientInput{Email: email, Role: role, Order: order})
	}
	return out, nil
}

// requestCommand finishes cmd as a `request` subcommand: the client flags,
// and a run that calls call with the client and prints the signing request
// it answers (a table, or JSON with -o json); an API error is shown with
// its status.
func requestCommand(e *env, cmd *cobra.Command, call func(cmd *cobra.Command, c *client.Client, args []string) (*api.SigningRequest, error)) *cobra.Command {
	cf := bindClientFlags(cmd)
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		r, err := call(cmd, c.api, args)
		if err != nil {
			return shown(err)
		}
		return c.print(r, func() error { return printRequest(c.stdout, r) })
	}
	return cmd
}

func newRequestCreateCmd(e *env) *cobra.Command {
	var signers, approvers, viewers, ccs []string
	var message string
	var expires, remind time.Duration
	var draft bool
	cmd := &cobra.Command{
		Use:   "create DOCUMENT_ID",
		Short: "Create (and send) a signing request; recipients as EMAIL[:ORDER], same order = in parallel",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().StringArrayVar(&signers, "signer", nil, "a signer, EMAIL[:ORDER] (repeatable)")
	cmd.Flags().StringArrayVar(&approvers, "approver", nil, "an approver, EMAIL[:ORDER] (repeatable)")
	cmd.Flags().StringArrayVar(&viewers, "viewer", nil, "a recipient who must view, EMAIL[:ORDER] (repeatable)")
	cmd.Flags().StringArrayVar(&ccs, "cc", nil, "a recipient who gets a copy, EMAIL[:ORDER] (repeatable)")
	cmd.Flags().StringVar(&message, "message", "", "message to the recipients")
	cmd.Flags().DurationVar(&expires, "expires", 0, "the request expires after this long (0: never)")
	cmd.Flags().DurationVar(&remind, "remind", 0, "remind waiting recipients this often (0: never)")
	cmd.Flags().BoolVar(&draft, "draft", false, "create without sending")
	return requestCommand(e, cmd, func(cmd *cobra.Command, c *client.Client, args []string) (*api.SigningRequest, error) {
		req := api.CreateSigningRequest{Message: message, Draft: draft}
		for _, g := range []struct {
			role api.Role
			vals []string
		}{{api.RoleSigner, signers}, {api.RoleApprover, approvers}, {api.RoleViewer, viewers}, {api.RoleCC, ccs}} {
			rs, err := recipientFlag(g.role, g.vals)
			if err != nil {
				return nil, err
			}
			req.Recipients = append(req.Recipients, rs...)
		}
		if expires > 0 {
			t := time.Now().Add(expires).UTC()
			req.ExpiresAt = &t
		}
		if remind > 0 {
			req.ReminderInterval = remind.String()
		}
		w, err := c.CreateSigningRequest(cmd.Context(), args[0], req)
		if err != nil {
			return nil, err
		}
		return &w.SigningRequest, nil
	})
}

func newRequestStatusCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "status REQUEST_ID", Short: "Show a signing request and its recipients", Args: cobra.ExactArgs(1)}
	return requestCommand(e, cmd, func(cmd *cobra.Command, c *client.Client, args []string) (*api.SigningRequest, error) {
		return c.GetSigningRequest(cmd.Context(), args[0])
	})
}

func newRequestCancelCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "cancel REQUEST_ID", Short: "Cancel an open signing request", Args: cobra.ExactArgs(1)}
	return requestCommand(e, cmd, func(cmd *cobra.Command, c *client.Client, args []string) (*api.SigningRequest, error) {
		w, err := c.CancelSigningRequest(cmd.Context(), args[0])
		if err != nil {
			return nil, err
		}
		return &w.SigningRequest, nil
	})
}

func printRequest(out interface{ Write([]byte) (int, error) }, r *api.SigningRequest) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "request\t%s\ndocument\t%s\nstate\t%s\ncontent sha256\t%s\n", r.ID, r.DocumentID, r.State, r.ContentSHA256)
	if r.Outcome != nil {
		fmt.Fprintf(w, "outcome\t%s\n", *r.Outcome)
	}
	if r.CertificateSHA256 != nil {
		fmt.Fprintf(w, "certificate sha256\t%s\n", *r.CertificateSHA256)
	}
	fmt.Fprintln(w, "\nORDER\tROLE\tEMAIL\tSTATE")
	for _, rc := range r.Recipients {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", rc.Order, rc.Role, rc.Email, rc.State)
	}
	return w.Flush()
}
