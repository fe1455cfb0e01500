package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
)

// The signing routes that change state answer X-Commit-LSN like the
// document routes: a search with it as min_lsn reads the write at once,
// with no polling. A recipient finds the document the request shared with
// them; the POST /signatures shortcut's signed status (applied inline) is
// searchable by status.
func TestSigningRoutesAnswerACommitLSNForReadYourWrites(t *testing.T) {
	d := startDev(t, "--auth-mode", "required")
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	aliceTok := devToken(t, anon, "alice")
	alice, bob := asToken(t, d.gateway, aliceTok), asToken(t, d.gateway, devToken(t, anon, "bob"))
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
	body, _ := json.Marshal(api.CreateSignatureRequest{DocumentID: doc2.ID, SignerName: "Alice"})
	hr, err := http.NewRequest(http.MethodPost, d.gateway+"/signatures", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+aliceTok)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sig api.Signature
	if err := json.NewDecoder(resp.Body).Decode(&sig); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /signatures: %d %v", resp.StatusCode, err)
	}
	lsn, err := strconv.ParseUint(resp.Header.Get(api.CommitLSNHeader), 10, 64)
	if err != nil || lsn < doc2.CommitLSN {
		t.Fatalf("POST /signatures: X-Commit-LSN %q (document's %d)", resp.Header.Get(api.CommitLSNHeader), doc2.CommitLSN)
	}
	if sig.DocumentStatusUpdate == "applied" {
		if n := search(alice, word2, api.StatusSigned, lsn); n != 1 {
			t.Fatalf("alice, reading the signature's write, finds %d signed", n)
		}
	} else {
		t.Logf("the status update was %q, not applied inline: the signed status is not covered", sig.DocumentStatusUpdate)
	}
}
