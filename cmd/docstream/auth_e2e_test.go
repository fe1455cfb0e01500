package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/proto/documentpb"
)

// TestRequiredModeAttackTable runs `docstream dev --auth-mode=required` and
// attacks user A's private document as user B and without a valid token,
// through the gateway and directly on each service's port (REST and the
// document gRPC API): every attempt is refused, 401 for a bad or missing
// credential, 404 for a document B may not see (watching included), 403
// for signing as A on a document B may sign; a share revoked while B
// watches ends B's stream before the next change. Over gRPC B may not
// read, sign or cancel it, nor learn that it exists (the gateway carries
// no gRPC: the document gRPC port is the only way in). An API key works
// over REST, the WebSocket's "bearer" subprotocol and gRPC metadata for
// what it is shared and scoped for; without the read scope it reads
// nothing (403); revoked, it is 401 (Unauthenticated) everywhere. Then no
// token or key issued appears in any log line. The attacks run after the
// caches are warm: A has read every resource B attacks first. Every route
// outside the README's open list is 401 without a credential, directly
// and through the gateway; invitation links (mailed through a real SMTP
// sink) and webhook secrets are issued and used, and are in no log line
// either.
func TestRequiredModeAttackTable(t *testing.T) {
	mp := startMailpit(t)
	d := startDev(t, "--auth-mode", "required", "--log-level", "debug", "--signing-smtp-url", mp.SMTPURL())
	ctx := context.Background()
	anon := newClient(t, d.gateway)
	issue := func(user, email string) string {
		tk, err := anon.DevToken(ctx, user, email)
		if err != nil {
			t.Fatalf("dev token for %s: %v", user, err)
		}
		return tk.AccessToken
	}
	alice, bob := issue("alice", "alice@example.com"), issue("bob", "bob@example.com")
	// Tokens no deployment key signed: another secret, alg none, expired
	// by the dev issuer's own claims but another key.
	forged := func(claims jwt.MapClaims, m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	wrongKey := forged(jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}, jwt.SigningMethodHS256, []byte("not-the-deployment-secret-at-all"))
	none := forged(jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)
	issued := []string{alice, bob, wrongKey, none}

	word := "zanzibar" + hex.EncodeToString(randBytes(4))
	doc, err := asToken(t, d.gateway, alice).CreateDocument(ctx, api.CreateDocumentRequest{Title: "Merger " + word, Content: "private terms " + word, CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	privateDoc, err := asToken(t, d.gateway, alice).CreateDocument(ctx, api.CreateDocumentRequest{Title: "Private " + word, Content: "x", CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// A's own search sees it (the index has it) before B is refused it.
	if res, err := asToken(t, d.gateway, alice).Search(ctx, api.SearchRequest{Query: word, MinLSN: privateDoc.CommitLSN}); err != nil || res.Total != 2 {
		t.Fatalf("alice's own search: %+v %v", res, err)
	}

	type target struct{ name, docs, sigs, search, realtime string }
	targets := []target{
		{"gateway", d.gateway, d.gateway, d.gateway, d.gateway},
		{"direct", d.document, d.sig, "http://" + d.addrs["search-addr"], "http://" + d.addrs["realtime-addr"]},
	}
	// The caches are warm before B attacks: A has read everything B will
	// try, through every target, so the document (and its readers) is in
	// Redis and each service's verified-token cache holds A's token; B's
	// token is verified (and cached) by B's first attempt.
	for _, tg := range targets {
		a := asToken(t, tg.docs, alice)
		if _, err := a.GetDocument(ctx, doc.ID); err != nil {
			t.Fatalf("%s: warming: %v", tg.name, err)
		}
		if c, err := a.DocumentContent(ctx, doc.ID); err != nil {
			t.Fatalf("%s: warming: %v", tg.name, err)
		} else {
			c.Close()
		}
		if _, err := a.DocumentStats(ctx, doc.ID); err != nil {
			t.Fatalf("%s: warming: %v", tg.name, err)
		}
		if _, err := a.ListDocuments(ctx, api.ListOptions{}); err != nil {
			t.Fatalf("%s: warming: %v", tg.name, err)
		}
		if _, err := asToken(t, tg.sigs, alice).DocumentSignatures(ctx, doc.ID); err != nil {
			t.Fatalf("%s: warming: %v", tg.name, err)
		}
		if res, err := asToken(t, tg.search, alice).Search(ctx, api.SearchRequest{Query: word, MinLSN: privateDoc.CommitLSN}); err != nil || res.Total != 2 {
			t.Fatalf("%s: warming search: %+v %v", tg.name, res, err)
		}
	}
	for _, tg := range targets {
		// No or bad credentials: 401 with the challenge, on every service.
		for _, cred := range []struct{ name, header string }{
			{"no token", ""}, {"a token of another key", "Bearer " + wrongKey}, {"alg none", "Bearer " + none},
			{"not a bearer", "Basic YWxpY2U6YWxpY2U="}, {"a revoked or unknown API key", "Bearer dsk_unknown_key"},
		} {
			for _, u := range []string{tg.docs + "/documents", tg.docs + "/documents/" + doc.ID, tg.sigs + "/documents/" + doc.ID + "/signatures",
				tg.search + "/search?q=" + word, tg.realtime + "/ws/" + doc.ID} {
				t.Run(tg.name+"/"+cred.name+"/"+strings.SplitN(strings.TrimPrefix(u, "http://"), "/", 2)[1], func(t *testing.T) {
					req, _ := http.NewRequest("GET", u, nil)
					if cred.header != "" {
						req.Header.Set("Authorization", cred.header)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
						t.Fatalf("%d %q, want 401 with the challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					}
				})
			}
		}

		// A forged token in a handshake's query: 401, and (checked below)
		// the query string is in no log line.
		t.Run(tg.name+"/a forged query token on a handshake", func(t *testing.T) {
			req, _ := http.NewRequest("GET", tg.realtime+"/ws/"+doc.ID+"?token="+wrongKey, nil)
			for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%d, want 401", resp.StatusCode)
			}
		})

		// B against A's private document.
		docsB, sigsB, searchB := asToken(t, tg.docs, bob), asToken(t, tg.sigs, bob), asToken(t, tg.search, bob)
		notFound := func(err error) bool { return apperr.CodeOf(err) == apperr.NotFound }
		cases := []struct {
			name    string
			attempt func() error
			refused func(error) bool
		}{
			{"read", func() error { _, err := docsB.GetDocument(ctx, doc.ID); return err }, notFound},
			{"download", func() error { _, err := docsB.DocumentContent(ctx, doc.ID); return err }, notFound},
			{"stats", func() error { _, err := docsB.DocumentStats(ctx, doc.ID); return err }, notFound},
			{"list", func() error {
				list, err := docsB.ListDocuments(ctx, api.ListOptions{})
				if err != nil {
					return err
				}
				if slices.ContainsFunc(list, func(x api.Document) bool { return x.ID == doc.ID }) {
					return nil // listed: not refused
				}
				return apperr.E(apperr.NotFound, "not listed")
			}, notFound},
			{"search", func() error {
				res, err := searchB.Search(ctx, api.SearchRequest{Query: word, MinLSN: doc.CommitLSN})
				if err != nil {
					return err
				}
				if res.Total != 0 || len(res.Documents) != 0 {
					return nil
				}
				return apperr.E(apperr.NotFound, "no hit")
			}, notFound},
			{"suggest", func() error {
				res, err := searchB.Suggest(ctx, api.SuggestRequest{Query: "Merger " + word[:6], MinLSN: doc.CommitLSN})
				if err != nil {
					return err
				}
				if len(res.Suggestions) != 0 {
					return nil
				}
				return apperr.E(apperr.NotFound, "no suggestion")
			}, notFound},
			{"aggregations", func() error {
				res, err := searchB.Aggregate(ctx, api.AggregationRequest{Field: api.AggregateStatus, Query: word, MinLSN: doc.CommitLSN})
				if err != nil {
					return err
				}
				if len(res.Values) != 0 {
					return nil
				}
				return apperr.E(apperr.NotFound, "no bucket")
			}, notFound},
			{"signatures of the document", func() error { _, err := sigsB.DocumentSignatures(ctx, doc.ID); return err }, notFound},
			{"edit", func() error {
				_, err := docsB.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "pwned"})
				return err
			}, notFound},
			{"delete", func() error { return docsB.DeleteDocument(ctx, doc.ID) }, notFound},
			{"sign", func() error {
				_, err := sigsB.CreateSignature(ctx, api.CreateSignatureRequest{DocumentID: doc.ID, SignerEmail: "bob@example.com", SignerName: "Bob", SignatureData: "data:image/png;base64,AAAA"})
				return err
			}, notFound},
		}
		for _, tc := range cases {
			t.Run(tg.name+"/B may not "+tc.name, func(t *testing.T) {
				if err := tc.attempt(); err == nil || !tc.refused(err) {
					t.Fatalf("not refused as expected: %v", err)
				}
			})
		}
	}

	// gRPC, directly on the document service: no credential 401, B's 404.
	conn, err := grpc.NewClient(d.addrs["document-grpc-addr"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g := documentpb.NewDocumentServiceClient(conn)
	for _, tc := range []struct {
		name string
		tok  string
		want codes.Code
	}{{"no token", "", codes.Unauthenticated}, {"a token of another key", wrongKey, codes.Unauthenticated}, {"B", bob, codes.NotFound}, {"A", alice, codes.OK}} {
		t.Run("grpc/"+tc.name, func(t *testing.T) {
			cctx := ctx
			if tc.tok != "" {
				cctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.tok)
			}
			_, err := g.GetDocument(cctx, &documentpb.GetDocumentRequest{DocumentId: doc.ID})
			if status.Code(err) != tc.want {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if tc.tok != "" && tc.want != codes.OK {
				// Editing over gRPC: signing it and cancelling it (the
				// gRPC API has no delete) are refused as REST refuses them.
				for _, st := range []string{"signed", "cancelled"} {
					_, err := g.UpdateDocumentStatus(cctx, &documentpb.UpdateDocumentStatusRequest{DocumentId: doc.ID, Status: st})
					if status.Code(err) != tc.want {
						t.Fatalf("status update to %s: %v, want %v", st, err, tc.want)
					}
				}
			}
			ex, err := g.DocumentExists(cctx, &documentpb.DocumentExistsRequest{DocumentId: doc.ID})
			switch {
			case tc.want == codes.Unauthenticated:
				if status.Code(err) != tc.want {
					t.Fatalf("exists: %v, want %v", err, tc.want)
				}
			case tc.want == codes.NotFound:
				// Not an error, but the answer of a document that does
				// not exist: existence, status and levels are not revealed.
				if err != nil || ex.Exists || ex.Status != "" || len(ex.Levels) != 0 {
					t.Fatalf("exists: %v %v, want exists=false and nothing else", ex, err)
				}
			default:
				if err != nil || !ex.Exists {
					t.Fatalf("exists: %v %v", ex, err)
				}
			}
		})
	}

	// Signing as A: A lets B sign; B's signature naming A's email is 403,
	// B's own goes through.
	if _, _, err := asToken(t, d.gateway, alice).ShareDocument(ctx, doc.ID, api.ShareRequest{Grantee: "user:bob", Level: "sign"}); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		_, err := asToken(t, tg.sigs, bob).CreateSignature(ctx, api.CreateSignatureRequest{DocumentID: doc.ID, SignerEmail: "alice@example.com", SignerName: "Alice", SignatureData: "data:image/png;base64,AAAA"})
		if apperr.CodeOf(err) != apperr.Forbidden {
			t.Fatalf("%s: B signing as A: %v, want 403", tg.name, err)
		}
	}
	sig, err := asToken(t, d.gateway, bob).CreateSignature(ctx, api.CreateSignatureRequest{DocumentID: doc.ID, SignerEmail: "bob@example.com", SignerName: "Bob", SignatureData: "data:image/png;base64,AAAA"})
	if err != nil || sig.SignerEmail != "bob@example.com" {
		t.Fatalf("B signing as B once shared: %+v %v", sig, err)
	}
	// A share to sign does not let B edit or delete.
	if _, err := asToken(t, d.document, bob).UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "pwned"}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("B editing with a sign share: %v, want 403", err)
	}

	// Watching: B may not subscribe to A's document while it is private
	// (checked before the sign share below is revoked); with the share B
	// may, and revoking it while B watches ends B's stream before the next
	// change reaches it.
	for _, tg := range targets {
		w, err := asToken(t, tg.realtime, bob).Watch(ctx, privateDoc.ID, client.WatchOptions{})
		if err == nil {
			w.Close()
			t.Fatalf("%s: B watching A's private document was accepted", tg.name)
		}
		if client.StatusCode(err) != http.StatusNotFound {
			t.Fatalf("%s: B watching A's private document: %v, want 404", tg.name, err)
		}
	}
	w, err := asToken(t, d.gateway, bob).Watch(ctx, doc.ID, client.WatchOptions{})
	if err != nil {
		t.Fatalf("B watching a document shared with B: %v", err)
	}
	defer w.Close()
	time.Sleep(500 * time.Millisecond) // the subscription is registered
	if _, err := asToken(t, d.gateway, alice).UnshareDocument(ctx, doc.ID, "user:bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := asToken(t, d.gateway, alice).UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "after the revoke " + word}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		m, err := w.Next(wctx)
		if err != nil {
			if wctx.Err() != nil {
				t.Fatal("B's watch still open 30 s after the share was revoked")
			}
			break // closed: access revoked
		}
		if m.Type == api.TypeDocumentUpdated {
			t.Fatalf("B received %s after the share was revoked", m.Type)
		}
	}

	// A revoked API key: it worked, then it is 401 everywhere.
	tk, err := anon.DevTokenWith(ctx, "root", "root@example.com", client.DevTokenOptions{Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	admin := tk.AccessToken
	key, err := asToken(t, d.gateway, admin).CreateAPIKey(ctx, api.CreateAPIKeyRequest{Name: "e2e", Scopes: []string{"read"}})
	if err != nil {
		t.Fatalf("admin creating an API key: %v", err)
	}
	noRead, err := asToken(t, d.gateway, admin).CreateAPIKey(ctx, api.CreateAPIKeyRequest{Name: "e2e-write-only", Scopes: []string{"write"}})
	if err != nil {
		t.Fatalf("admin creating an API key: %v", err)
	}
	issued = append(issued, admin, key.Key, noRead.Key)
	if _, err := asToken(t, d.gateway, key.Key).ListDocuments(ctx, api.ListOptions{}); err != nil {
		t.Fatalf("the API key before its revoke: %v", err)
	}
	// A shares the document with both keys, so that the key without the
	// read scope is refused for its scope, not for want of a share.
	for _, k := range []string{key.ID, noRead.ID} {
		if _, _, err := asToken(t, d.gateway, alice).ShareDocument(ctx, doc.ID, api.ShareRequest{Grantee: "apikey:" + k, Level: "view"}); err != nil {
			t.Fatal(err)
		}
	}
	// An API key over the WebSocket's "bearer" subprotocol: the read key
	// subscribes (the handshake selects "bearer", never the key) and
	// receives A's next change; the key without the read scope is refused
	// at the handshake.
	wsDial := func(base, docID, cred string) (*websocket.Conn, *http.Response, error) {
		return websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/"+docID, &websocket.DialOptions{Subprotocols: []string{"bearer", cred}})
	}
	var keyConns []*websocket.Conn
	for _, tg := range targets {
		c, _, err := wsDial(tg.realtime, doc.ID, key.Key)
		if err != nil {
			t.Fatalf("%s: a read API key over the bearer subprotocol: %v", tg.name, err)
		}
		defer c.CloseNow()
		if c.Subprotocol() != "bearer" {
			t.Fatalf("%s: the handshake selected %q, want bearer", tg.name, c.Subprotocol())
		}
		keyConns = append(keyConns, c)
		c, resp, err := wsDial(tg.realtime, doc.ID, noRead.Key)
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: an API key without the read scope subscribed", tg.name)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: an API key without the read scope over the bearer subprotocol: %v, want 403", tg.name, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the subscriptions are registered
	if _, err := asToken(t, d.gateway, alice).UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "seen by the key " + word}); err != nil {
		t.Fatal(err)
	}
	for i, c := range keyConns {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		for {
			var m api.Message
			if err := wsjson.Read(rctx, c, &m); err != nil {
				t.Fatalf("%s: the read API key's stream: %v before A's change", targets[i].name, err)
			}
			if m.Type == api.TypeDocumentUpdated {
				break
			}
		}
		cancel()
		c.Close(websocket.StatusNormalClosure, "")
	}
	// An API key in gRPC metadata: the read key reads the document shared
	// with it but may not change it; the key without the read scope may
	// not read it.
	keyMD := func(k string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k)
	}
	if _, err := g.GetDocument(keyMD(key.Key), &documentpb.GetDocumentRequest{DocumentId: doc.ID}); err != nil {
		t.Fatalf("grpc: a read API key reading a document shared with it: %v", err)
	}
	if _, err := g.UpdateDocumentStatus(keyMD(key.Key), &documentpb.UpdateDocumentStatusRequest{DocumentId: doc.ID, Status: "cancelled"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("grpc: a read API key cancelling: %v, want PermissionDenied", err)
	}
	if _, err := g.GetDocument(keyMD(noRead.Key), &documentpb.GetDocumentRequest{DocumentId: doc.ID}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("grpc: an API key without the read scope reading: %v, want PermissionDenied", err)
	}
	if err := asToken(t, d.gateway, admin).RevokeAPIKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if _, err := asToken(t, tg.docs, key.Key).ListDocuments(ctx, api.ListOptions{}); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("%s: a revoked API key: %v, want 401", tg.name, err)
		}
		if _, err := asToken(t, tg.search, key.Key).Search(ctx, api.SearchRequest{Query: word}); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("%s: a revoked API key on search: %v, want 401", tg.name, err)
		}
		if c, resp, err := wsDial(tg.realtime, doc.ID, key.Key); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			if err == nil {
				c.CloseNow()
			}
			t.Fatalf("%s: a revoked API key over the bearer subprotocol: %v, want 401", tg.name, err)
		}
	}

	if _, err := g.GetDocument(keyMD(key.Key), &documentpb.GetDocumentRequest{DocumentId: doc.ID}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("grpc: a revoked API key: %v, want Unauthenticated", err)
	}

	// Only the routes the README lists answer without a credential.
	t.Run("only the listed routes are open", func(t *testing.T) { checkOpenRoutes(t, d) })

	// Invitation links and webhook secrets are credentials too.
	issued = append(issued, issueInvitationAndWebhookSecrets(t, d, mp, asToken(t, d.gateway, alice), asToken(t, d.gateway, admin), privateDoc.ID, doc.ID)...)

	// No credential issued in this test (tokens, API keys, invitation
	// tokens, webhook secrets) reached a log line (query strings
	// included): the request log names principals, never tokens.
	logs := d.output.String()
	if !strings.Contains(logs, `"principal":"user:bob"`) {
		t.Fatal("the request log does not name the principal")
	}
	for _, tok := range issued {
		if strings.Contains(logs, tok) {
			t.Fatalf("a token reached the log: %.16s…", tok)
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
