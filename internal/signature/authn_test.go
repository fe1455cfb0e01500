package signature

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/proto/documentpb"
)

// The same rules through the real authenticator, as `docstream serve`
// wires them: HS256 user tokens on REST, the caller's token forwarded on
// gRPC by auth.ClientCredentials, and the service credential on the
// outbox's calls (which carry no caller).
func TestSigningThroughTheAuthenticator(t *testing.T) {
	ctx := context.Background()
	var logs testenv.SyncBuffer
	log := logging.New(&logs, "debug")
	cfg := auth.DefaultConfig()
	cfg.Mode = string(auth.ModeRequired)
	cfg.JWTSecret = strings.Repeat("s3cr3t-", 6)
	authn, err := auth.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(sub string) string {
		raw, _, err := auth.Mint(cfg, auth.TokenRequest{Subject: sub, Email: sub + "@company.com", EmailVerified: true, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	aliceTok, bobTok, carolTok := token("alice"), token("bob"), token("carol")

	e := newEnv(t)
	e.doc.svc.SetMode(auth.ModeRequired)
	dcfg := docConfig()
	dcfg.Auth = authn
	e.doc.http.Close()
	e.doc.http = httptest.NewServer(document.NewServer(e.doc.svc, dcfg, log))
	t.Cleanup(e.doc.http.Close)
	e.doc.stopGRPC()
	e.doc.authn = authn
	e.doc.startGRPC(t)

	conn, err := Dial(e.doc.addr, grpc.WithPerRPCCredentials(authn.ClientCredentials("signature")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	svc := NewService(NewStore(e.pool), documentpb.NewDocumentServiceClient(conn), e.sigs,
		Options{CallTimeout: time.Second, Retries: 2, RetryBackoff: 20 * time.Millisecond}, log)
	svc.SetMode(auth.ModeRequired)
	scfg := DefaultConfig()
	scfg.Auth = authn
	sig := httptest.NewServer(NewServer(svc, scfg, log))
	t.Cleanup(sig.Close)

	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	var d api.Document
	if r := testenv.Do(t, "POST", e.doc.http.URL+"/documents", map[string]any{"title": "Through the authenticator", "content": "x"}, &d, bearer(aliceTok)...); r.StatusCode != http.StatusCreated || d.Owner != "user:alice" {
		t.Fatalf("create: %d %+v", r.StatusCode, d)
	}
	if r := testenv.Do(t, "POST", e.doc.http.URL+"/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:bob", Level: "sign"}, nil, bearer(aliceTok)...); r.StatusCode != http.StatusOK {
		t.Fatalf("share: %d", r.StatusCode)
	}
	sign := func(tok string, body map[string]any) int {
		return testenv.Do(t, "POST", sig.URL+"/signatures", body, nil, bearer(tok)...).StatusCode
	}
	if code := sign(carolTok, map[string]any{"document_id": d.ID, "signer_name": "Carol"}); code != http.StatusNotFound {
		t.Fatalf("carol signs: %d", code)
	}
	if code := sign(bobTok, map[string]any{"document_id": d.ID, "signer_email": "alice@company.com", "signer_name": "Alice"}); code != http.StatusForbidden {
		t.Fatalf("bob signs as alice: %d", code)
	}
	if code := testenv.Do(t, "POST", sig.URL+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Nobody"}, nil).StatusCode; code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}

	// The signer's name is bound to the token's name claim: a token with
	// a name fills signer_name and refuses another; the signature records
	// the signer's principal (signer_subject), returned and read back.
	daveTok, _, err := auth.Mint(cfg, auth.TokenRequest{Subject: "dave", Email: "dave@company.com", EmailVerified: true, Name: "Dave Lister", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := testenv.Do(t, "POST", e.doc.http.URL+"/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:dave", Level: "sign"}, nil, bearer(aliceTok)...); r.StatusCode != http.StatusOK {
		t.Fatalf("share: %d", r.StatusCode)
	}
	if code := sign(daveTok, map[string]any{"document_id": d.ID, "signer_name": "Alice Smith"}); code != http.StatusForbidden {
		t.Fatalf("dave signs under another name: %d, want 403", code)
	}
	for _, name := range []any{nil, "dave  LISTER"} {
		body := map[string]any{"document_id": d.ID}
		if name != nil {
			body["signer_name"] = name
		}
		var ds, back api.Signature
		if r := testenv.Do(t, "POST", sig.URL+"/signatures", body, &ds, bearer(daveTok)...); r.StatusCode != http.StatusCreated ||
			ds.SignerEmail != "dave@company.com" || ds.SignerSubject == nil || *ds.SignerSubject != "user:dave" {
			t.Fatalf("dave signs with signer_name %v: %d %+v", name, r.StatusCode, ds)
		}
		if name == nil && ds.SignerName != "Dave Lister" {
			t.Fatalf("signer_name %q, want the token's name", ds.SignerName)
		}
		if r := testenv.Do(t, "GET", sig.URL+"/signatures/"+ds.ID, nil, &back, bearer(aliceTok)...); r.StatusCode != http.StatusOK || back.SignerSubject == nil || *back.SignerSubject != "user:dave" {
			t.Fatalf("read back: %d %+v", r.StatusCode, back)
		}
	}

	// Bob signs while the document service is down: the check is made in
	// the database, and the outbox's retry, long after bob's request, goes
	// with the service credential (bob may not edit: his own credential
	// would be refused).
	e.doc.stopGRPC()
	var s api.Signature
	if r := testenv.Do(t, "POST", sig.URL+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Bob"}, &s, bearer(bobTok)...); r.StatusCode != http.StatusCreated || s.SignerEmail != "bob@company.com" ||
		s.SignerSubject == nil || *s.SignerSubject != "user:bob" || s.DocumentStatusUpdate != UpdatePending {
		t.Fatalf("bob signs: %d %+v", r.StatusCode, s)
	}
	e.doc.startGRPC(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = NewReconciler(svc, ReconcilerOptions{Interval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}).Run(rctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitForWithin(t, 20*time.Second, "the outbox to apply the update as the service", func() bool {
		var got api.Document
		testenv.Do(t, "GET", e.doc.http.URL+"/documents/"+d.ID, nil, &got, bearer(aliceTok)...)
		return got.Status == api.StatusSigned
	})
	if code := testenv.Do(t, "PATCH", e.doc.http.URL+"/documents/"+d.ID, map[string]any{"status": "completed"}, nil, bearer(bobTok)...).StatusCode; code != http.StatusForbidden {
		t.Fatalf("bob edits: %d", code)
	}
	for _, tok := range []string{aliceTok, bobTok, carolTok, daveTok} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a token reached the log")
		}
	}
}

// Open mode needs no secret at all: the status update (inline, and the
// outbox's retry) goes as an anonymous caller, which open mode allows,
// instead of asking for a service credential there is no key to sign.
func TestOpenModeAppliesSignaturesWithoutAnyAuthSecret(t *testing.T) {
	ctx := context.Background()
	cfg := auth.DefaultConfig()
	cfg.Mode = string(auth.ModeOpen)
	authn, err := auth.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.doc.stopGRPC()
	e.doc.authn = authn
	e.doc.startGRPC(t)
	conn, err := Dial(e.doc.addr, grpc.WithPerRPCCredentials(authn.ClientCredentials("signature")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	svc := NewService(NewStore(e.pool), documentpb.NewDocumentServiceClient(conn), e.sigs,
		Options{CallTimeout: time.Second, Retries: 1, RetryBackoff: 20 * time.Millisecond}, testLog())
	svc.SetMode(auth.ModeOpen)
	scfg := DefaultConfig()
	scfg.Auth = authn
	sig := httptest.NewServer(NewServer(svc, scfg, testLog()))
	t.Cleanup(sig.Close)

	d := e.createDocument(t, "Open", "x")
	var s api.Signature
	if r := testenv.Do(t, "POST", sig.URL+"/signatures", map[string]any{"document_id": d.ID, "signer_email": "a@b.co", "signer_name": "A"}, &s); r.StatusCode != http.StatusCreated || s.DocumentStatusUpdate != UpdateApplied {
		t.Fatalf("inline: %d %+v", r.StatusCode, s)
	}
	d2 := e.createDocument(t, "Open, retried", "x")
	e.doc.stopGRPC()
	if r := testenv.Do(t, "POST", sig.URL+"/signatures", map[string]any{"document_id": d2.ID, "signer_email": "a@b.co", "signer_name": "A"}, &s); r.StatusCode != http.StatusCreated || s.DocumentStatusUpdate != UpdatePending {
		t.Fatalf("while down: %d %+v", r.StatusCode, s)
	}
	e.doc.startGRPC(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = NewReconciler(svc, ReconcilerOptions{Interval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}).Run(rctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	e.waitStatus(t, d2.ID, "signed", 20*time.Second)
}
