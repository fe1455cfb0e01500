package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/testenv"
)

// Every outcome of a signing request is searchable (issue 13: every
// transition shows in search): a request driven sent → in_progress →
// completed, one declined, one cancelled and one expired by the scheduler
// are each found by signing_status with the X-Commit-LSN of the transition
// as min_lsn, with no polling; the document's GET (min_lsn) carries the
// state at a new version, and the document's WebSocket shows each state as
// a document.updated naming signing_status.
func TestEverySigningRequestStateIsSearchable(t *testing.T) {
	d := startDev(t, "--auth-mode", "required")
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	aliceTok := devToken(t, anon, "alice")
	alice, bob := asToken(t, d.gateway, aliceTok), asToken(t, d.gateway, devToken(t, anon, "bob"))

	newDoc := func(what string) (*client.Written, string) {
		t.Helper()
		word := what + hex.EncodeToString(randBytes(4))
		doc, err := alice.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Lease " + word, Content: "terms " + word, CreatedBy: "alice@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return doc, word
	}
	// found asserts that a search for word with signing_status=state, reading
	// the write at lsn, finds exactly doc, carrying the state.
	found := func(word, docID string, state api.RequestState, lsn uint64) {
		t.Helper()
		res, err := alice.Search(ctx, api.SearchRequest{Query: word, SigningStatus: state, MinLSN: lsn})
		if err != nil {
			t.Fatalf("search signing_status=%s: %v", state, err)
		}
		if res.Stale || len(res.Documents) != 1 || res.Documents[0].ID != docID || res.Documents[0].SigningStatus != state {
			t.Fatalf("search signing_status=%s at lsn %d: %+v", state, lsn, res)
		}
		for _, other := range api.RequestStates {
			if other == state {
				continue
			}
			res, err := alice.Search(ctx, api.SearchRequest{Query: word, SigningStatus: other})
			if err != nil || res.Total != 0 {
				t.Fatalf("search signing_status=%s finds %+v (%v) while the request is %s", other, res, err, state)
			}
		}
	}
	getDoc := func(id string, lsn uint64) api.Document {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, d.gateway+"/documents/"+id+"?min_lsn="+strconv.FormatUint(lsn, 10), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+aliceTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc api.Document
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /documents/%s: %d %v", id, resp.StatusCode, err)
		}
		return doc
	}
	toBob := api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "bob@example.com", Role: api.RoleSigner}}}

	// sent → in_progress → completed, watched live.
	doc, word := newDoc("wombat")
	if got := getDoc(doc.ID, doc.CommitLSN); got.SigningStatus != "" {
		t.Fatalf("a document without a request reads signing_status %q", got.SigningStatus)
	}
	w, err := alice.Watch(ctx, doc.ID, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	req, err := alice.CreateSigningRequest(ctx, doc.ID, toBob)
	if err != nil {
		t.Fatal(err)
	}
	found(word, doc.ID, api.RequestSent, req.CommitLSN)
	sent := getDoc(doc.ID, req.CommitLSN)
	if sent.SigningStatus != api.RequestSent || sent.Version <= doc.Version {
		t.Fatalf("after the request: signing_status %q at version %d (created at %d)", sent.SigningStatus, sent.Version, doc.Version)
	}
	viewed, err := bob.SigningInvitation(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	found(word, doc.ID, api.RequestInProgress, viewed.CommitLSN)
	signed, err := bob.ActOnSigningRequest(ctx, req.ID, "sign", api.InvitationAction{Consent: true, SignatureData: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	found(word, doc.ID, api.RequestCompleted, signed.CommitLSN)
	if got := getDoc(doc.ID, signed.CommitLSN); got.SigningStatus != api.RequestCompleted || got.Version <= sent.Version {
		t.Fatalf("after the signature: signing_status %q at version %d (sent at %d)", got.SigningStatus, got.Version, sent.Version)
	}
	var live []string
	for !slices.Contains(live, string(api.RequestCompleted)) {
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := w.Next(nctx)
		cancel()
		if err != nil {
			t.Fatalf("websocket, after %v: %v", live, err)
		}
		if u, ok := m.Data.(api.UpdatedData); ok && m.Type == api.TypeDocumentUpdated && slices.Contains(u.Changed, "signing_status") {
			live = append(live, u.SigningStatus)
		}
	}
	if want := []string{"draft", "sent", "in_progress", "completed"}; !slices.Equal(live, want) {
		t.Fatalf("the WebSocket showed signing_status %v, want %v", live, want)
	}

	// Declined by the signer.
	doc, word = newDoc("quoll")
	req, err = alice.CreateSigningRequest(ctx, doc.ID, toBob)
	if err != nil {
		t.Fatal(err)
	}
	declined, err := bob.ActOnSigningRequest(ctx, req.ID, "decline", api.InvitationAction{Reason: "not now"})
	if err != nil {
		t.Fatal(err)
	}
	found(word, doc.ID, api.RequestDeclined, declined.CommitLSN)

	// Cancelled by the owner.
	doc, word = newDoc("bilby")
	req, err = alice.CreateSigningRequest(ctx, doc.ID, toBob)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := alice.CancelSigningRequest(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	found(word, doc.ID, api.RequestCancelled, cancelled.CommitLSN)

	// Expired by the scheduler: no route answers its commit, so a write
	// made after the request reads expired stands for it.
	doc, word = newDoc("dunnart")
	expires := time.Now().Add(3 * time.Second)
	expiring := toBob
	expiring.ExpiresAt = &expires
	req, err = alice.CreateSigningRequest(ctx, doc.ID, expiring)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the request to expire", func() bool {
		r, err := alice.GetSigningRequest(ctx, req.ID)
		return err == nil && r.State == api.RequestExpired
	})
	after, _ := newDoc("marker")
	found(word, doc.ID, api.RequestExpired, after.CommitLSN)
}
