package main

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/testenv"
)

// The signing routes that change state answer X-Commit-LSN like the
// document routes: a search with it as min_lsn reads the write at once,
// with no polling. A recipient finds the document the request shared with
// them; the POST /signatures shortcut's signed status is searchable by
// status (at once when applied inline, once retried when pending).
func TestSigningRoutesAnswerACommitLSNForReadYourWrites(t *testing.T) {
	d := startDev(t, "--auth-mode", "required")
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	alice, bob := asToken(t, d.gateway, devToken(t, anon, "alice")), asToken(t, d.gateway, devToken(t, anon, "bob"))
	search := func(c *client.Client, q string, status api.Status, lsn uint64) int64 {
		t.Helper()
		res, err := c.Search(ctx, api.SearchRequest{Query: q, Status: status, MinLSN: lsn})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		return res.Total
	}

	word := "quokka" + hex.EncodeToString(randBytes(4))
	doc, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Lease " + word, Content: "terms " + word, CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if n := search(bob, word, "", doc.CommitLSN); n != 0 {
		t.Fatalf("bob finds %d before the request", n)
	}
	req, err := alice.CreateSigningRequest(ctx, doc.ID, api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "bob@example.com", Role: api.RoleSigner}}})
	if err != nil {
		t.Fatal(err)
	}
	if req.CommitLSN == 0 || req.CommitLSN < doc.CommitLSN {
		t.Fatalf("request create: X-Commit-LSN %d (document's %d)", req.CommitLSN, doc.CommitLSN)
	}
	if n := search(bob, word, "", req.CommitLSN); n != 1 {
		t.Fatalf("bob, reading the request's write, finds %d", n)
	}
	signed, err := bob.ActOnSigningRequest(ctx, req.ID, "sign", api.InvitationAction{Consent: true, SignatureData: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	if signed.CommitLSN < req.CommitLSN {
		t.Fatalf("sign: X-Commit-LSN %d, before the request's %d", signed.CommitLSN, req.CommitLSN)
	}

	// The one-signer shortcut.
	word2 := "numbat" + hex.EncodeToString(randBytes(4))
	doc2, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Note " + word2, Content: "terms " + word2, CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := alice.CreateSignature(ctx, api.CreateSignatureRequest{DocumentID: doc2.ID, SignerName: "Alice"})
	if err != nil {
		t.Fatalf("POST /signatures: %v", err)
	}
	if sig.CommitLSN == 0 || sig.CommitLSN < doc2.CommitLSN {
		t.Fatalf("POST /signatures: X-Commit-LSN %d (document's %d)", sig.CommitLSN, doc2.CommitLSN)
	}
	switch sig.DocumentStatusUpdate {
	case api.UpdateApplied:
		// Applied before the answer: its commit is covered by the LSN.
		if n := search(alice, word2, api.StatusSigned, sig.CommitLSN); n != 1 {
			t.Fatalf("alice, reading the signature's write, finds %d signed", n)
		}
	case api.UpdatePending:
		// Retried by the signature service after the answer: a later
		// commit, which a search reaches once it is applied.
		testenv.WaitFor(t, "the signed status (pending at the answer) in search", func() bool {
			return search(alice, word2, api.StatusSigned, sig.CommitLSN) == 1
		})
	default:
		t.Fatalf("POST /signatures: document_status_update %q, want applied or pending", sig.DocumentStatusUpdate)
	}
}
