package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/testenv"
)

var (
	devMailRE = regexp.MustCompile(`(?s)--- mail to [^\n]*\n.*?--- end of mail \(\d+ attachments\)\n`)
	devLinkRE = regexp.MustCompile(`/invitations/([A-Za-z0-9_-]{43})`)
)

// TestRequestCommandsAgainstDevInRequiredMode runs `docstream dev
// --auth-mode=required` and drives signing requests through the gateway
// with the CLI as a user would: `docstream request create` (as the owner)
// sends the request; the recipients, signed in, find the document in their
// search and list (their implicit shares); `request status` shows it to
// the owner and to a recipient; a recipient cannot `request cancel` it
// (exit status non-zero, 403); the signer signs signed in and the owner's
// `request status` shows it completed with its certificate; a second
// request is cancelled with `request cancel`. Without SMTP the dev log
// notifier prints each mail with its link, and no other line of the
// system's output holds a link's token.
func TestRequestCommandsAgainstDevInRequiredMode(t *testing.T) {
	d := startDev(t, "--auth-mode", "required")
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	aliceTok, bobTok, carolTok, malloryTok := devToken(t, anon, "alice"), devToken(t, anon, "bob"), devToken(t, anon, "carol"), devToken(t, anon, "mallory")
	alice, bob, carol, mallory := asToken(t, d.gateway, aliceTok), asToken(t, d.gateway, bobTok), asToken(t, d.gateway, carolTok), asToken(t, d.gateway, malloryTok)
	word := "wombat" + hex.EncodeToString(randBytes(4))
	doc, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Lease " + word, Content: "terms " + word, CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	found := func(c *client.Client) int64 {
		t.Helper()
		res, err := c.Search(ctx, api.SearchRequest{Query: word, MinLSN: doc.CommitLSN})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		return res.Total
	}
	if n := found(bob); n != 0 {
		t.Fatalf("bob finds %d before the request", n)
	}

	requestCmd := func(tok string, args ...string) (api.SigningRequest, string, error) {
		t.Helper()
		out, stderr, err := cli(t, d.gateway, append(append([]string{"request"}, args...), "--token", tok, "-o", "json")...)
		var r api.SigningRequest
		if err == nil {
			if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
				t.Fatalf("request %v: %v: %s", args, jerr, out)
			}
		}
		return r, stderr, err
	}
	req, stderr, err := requestCmd(aliceTok, "create", doc.ID, "--signer", "bob@example.com", "--cc", "carol@example.com", "--message", "Please sign the lease")
	if err != nil || req.State != api.RequestSent || len(req.Recipients) != 2 || req.ContentSHA256 != doc.ContentSHA256 {
		t.Fatalf("request create: %+v %v %s", req, err, stderr)
	}
	testenv.WaitFor(t, "the dev log notifier to print bob's invitation", func() bool {
		return strings.Contains(d.output.String(), "--- mail to bob@example.com: Please sign: Lease "+word)
	})
	if _, stderr, err := requestCmd(malloryTok, "create", doc.ID, "--signer", "mallory@example.com"); err == nil {
		t.Fatalf("a stranger's request create succeeded: %s", stderr)
	}

	// The recipients' implicit shares: bob (sign) and carol (cc: view)
	// find the document in search and in their list; mallory does not.
	for name, c := range map[string]*client.Client{"bob": bob, "carol": carol} {
		testenv.WaitFor(t, name+" to find the document in search", func() bool { return found(c) == 1 })
		page, err := c.ListDocumentsPage(ctx, api.ListDocumentsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !containsDoc(page.Documents, doc.ID) {
			t.Fatalf("%s's document list lacks the document", name)
		}
	}
	if n := found(mallory); n != 0 {
		t.Fatalf("a stranger finds %d", n)
	}

	// request status, text, for the owner and for a recipient; a stranger is told it is not found.
	for _, tok := range []string{aliceTok, bobTok} {
		out, stderr, err := cli(t, d.gateway, "request", "status", req.ID, "--token", tok)
		if err != nil || !strings.Contains(out, req.ID) || !strings.Contains(out, "bob@example.com") || !strings.Contains(out, "carol@example.com") || !strings.Contains(out, "sent") {
			t.Fatalf("request status: %v %s\n%s", err, stderr, out)
		}
	}
	// A failing command's error (run's result: exit status 1) names the answer.
	if _, stderr, err := requestCmd(malloryTok, "status", req.ID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a stranger's request status: %v %s", err, stderr)
	}
	// Only the owner cancels.
	if _, stderr, err := requestCmd(bobTok, "cancel", req.ID); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("the signer's request cancel: %v %s", err, stderr)
	}

	// bob signs, signed in; the request completes with its certificate.
	if _, err := bob.ActOnSigningRequest(ctx, req.ID, "sign", api.InvitationAction{Consent: true, SignatureData: "Bob"}); err != nil {
		t.Fatalf("bob signs: %v", err)
	}
	testenv.WaitFor(t, "request status to show the request completed with its certificate", func() bool {
		r, _, err := requestCmd(aliceTok, "status", req.ID)
		return err == nil && r.State == api.RequestCompleted && r.CertificateSHA256 != nil
	})

	// A second request, cancelled by its owner.
	doc2, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Quote " + word, Content: "price", CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	req2, stderr, err := requestCmd(aliceTok, "create", doc2.ID, "--signer", "bob@example.com:1", "--approver", "carol@example.com:2")
	if err != nil || req2.State != api.RequestSent {
		t.Fatalf("second request create: %+v %v %s", req2, err, stderr)
	}
	if r, stderr, err := requestCmd(aliceTok, "cancel", req2.ID); err != nil || r.State != api.RequestCancelled {
		t.Fatalf("request cancel: %+v %v %s", r, err, stderr)
	}
	if out, stderr, err := cli(t, d.gateway, "request", "status", req2.ID, "--token", aliceTok); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("status of the cancelled request: %v %s\n%s", err, stderr, out)
	}

	// The dev log notifier printed bob's invitations with their links;
	// outside those mails, no line of the output holds a token.
	output := d.output.String()
	var tokens []string
	for _, m := range devMailRE.FindAllString(output, -1) {
		if strings.HasPrefix(m, "--- mail to bob@example.com: Please sign: ") {
			for _, l := range devLinkRE.FindAllStringSubmatch(m, -1) {
				tokens = append(tokens, l[1])
			}
		}
	}
	if len(tokens) == 0 {
		t.Fatalf("the log notifier printed no link to bob:\n%s", output)
	}
	rest := devMailRE.ReplaceAllString(output, "")
	for _, tok := range tokens {
		if strings.Contains(rest, tok) {
			t.Errorf("a line outside the mails holds the token %s…", tok[:8])
		}
	}
}

func containsDoc(docs []api.Document, id string) bool {
	for _, d := range docs {
		if d.ID == id {
			return true
		}
	}
	return false
}
