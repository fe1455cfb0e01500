package main

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
)

// TestSharesReachSearchAndTheWebSocket runs `docstream dev
// --auth-mode=required` and follows one share of A's private document
// through the gateway: before it B neither finds nor watches the document;
// a search with the share's commit LSN as min_lsn finds it at once, and B
// may watch it; a group share lets a member find it; the revocation, by
// its commit LSN, takes it out of B's search, and ends B's watch with 1008
// while B is watching. A sees no message for either change of access.
func TestSharesReachSearchAndTheWebSocket(t *testing.T) {
	d := startDev(t, "--auth-mode", "required")
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	as := func(user string, groups ...string) *client.Client {
		return asToken(t, d.gateway, devToken(t, anon, user, groups...))
	}
	alice, bob, carol := as("alice"), as("bob"), as("carol", "legal")
	word := "quokka" + hex.EncodeToString(randBytes(4))
	doc, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Merger " + word, Content: "private terms " + word, CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	found := func(c *client.Client, lsn uint64) int64 {
		t.Helper()
		res, err := c.Search(ctx, api.SearchRequest{Query: word, MinLSN: lsn})
		if err != nil || res.Stale {
			t.Fatalf("search: %+v %v", res, err)
		}
		return res.Total
	}
	if n := found(alice, doc.CommitLSN); n != 1 {
		t.Fatalf("alice finds %d of her own", n)
	}
	if n := found(bob, doc.CommitLSN); n != 0 {
		t.Fatalf("bob finds %d before the share", n)
	}
	if _, err := bob.Watch(ctx, doc.ID, client.WatchOptions{}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("bob's watch before the share: %v, want 404", err)
	}
	aw, err := alice.Watch(ctx, doc.ID, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer aw.Close()

	_, lsn, err := alice.ShareDocument(ctx, doc.ID, api.ShareRequest{Grantee: "user:bob", Level: "view"})
	if err != nil || lsn == 0 {
		t.Fatalf("share: lsn %d, %v", lsn, err)
	}
	if n := found(bob, lsn); n != 1 {
		t.Fatalf("bob finds %d with the share's LSN", n)
	}
	bw, err := bob.Watch(ctx, doc.ID, client.WatchOptions{})
	if err != nil {
		t.Fatalf("bob's watch after the share: %v", err)
	}
	defer bw.Close()
	_, glsn, err := alice.ShareDocument(ctx, doc.ID, api.ShareRequest{Grantee: "group:legal", Level: "view"})
	if err != nil {
		t.Fatal(err)
	}
	if n := found(carol, glsn); n != 1 {
		t.Fatalf("a legal member finds %d with the group share's LSN", n)
	}
	if _, err := alice.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "Merger v2 " + word}); err != nil {
		t.Fatal(err)
	}
	next := func(w *client.Watch) (api.Message, error) {
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return w.Next(nctx)
	}
	for _, w := range []*client.Watch{aw, bw} {
		if m, err := next(w); err != nil || m.Type != api.TypeDocumentUpdated {
			t.Fatalf("the title change: %+v %v", m, err)
		}
	}

	rlsn, err := alice.UnshareDocument(ctx, doc.ID, "user:bob")
	if err != nil || rlsn <= lsn {
		t.Fatalf("unshare: lsn %d, %v", rlsn, err)
	}
	if n := found(bob, rlsn); n != 0 {
		t.Fatalf("bob finds %d after the revocation", n)
	}
	m, err := next(bw)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !strings.Contains(err.Error(), "access revoked") {
		t.Fatalf("bob's watch after the revocation: %+v %v, want closed 1008 access revoked", m, err)
	}
	if _, err := alice.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "Merger v3 " + word}); err != nil {
		t.Fatal(err)
	}
	// Neither share nor revocation was a message to alice.
	if m, err := next(aw); err != nil || m.Type != api.TypeDocumentUpdated || !strings.HasPrefix(m.Data.(api.UpdatedData).Title, "Merger v3") {
		t.Fatalf("alice's next message: %+v %v", m, err)
	}
	if n := found(carol, rlsn); n != 1 {
		t.Fatalf("the group share went with bob's: carol finds %d", n)
	}
}
