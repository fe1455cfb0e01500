package signature

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/testenv"
)

// Until the authenticator's middleware and gRPC credential are wired, the
// principal travels in a test-only header (HTTP) and metadata key (gRPC)
// as JSON: the client side forwards auth.FromContext, as the real
// credential will (the caller's own, or the service's for Service.asService).
const testPrincipal = "x-test-principal"

func principalJSON(p auth.Principal) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func withTestPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(testPrincipal); v != "" {
			var p auth.Principal
			if err := json.Unmarshal([]byte(v), &p); err != nil {
				panic(err)
			}
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	})
}

func forwardTestPrincipal(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if p := auth.FromContext(ctx); !p.IsAnonymous() {
		ctx = metadata.AppendToOutgoingContext(ctx, testPrincipal, principalJSON(p))
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func receiveTestPrincipal(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(testPrincipal); len(v) == 1 {
		var p auth.Principal
		if err := json.Unmarshal([]byte(v[0]), &p); err != nil {
			return nil, err
		}
		ctx = auth.WithPrincipal(ctx, p)
	}
	return h(ctx, req)
}

var (
	alice = auth.Principal{Kind: auth.KindUser, Subject: "alice", Email: "alice@company.com", EmailVerified: true}
	bob   = auth.Principal{Kind: auth.KindUser, Subject: "bob", Email: "bob@company.com", EmailVerified: true}
	root  = auth.Principal{Kind: auth.KindUser, Subject: "root", Email: "root@company.com", EmailVerified: true, Admin: true}
)

// newRequiredEnv is the document and signature services in required mode.
func newRequiredEnv(t *testing.T) (*env, *sigService) {
	t.Helper()
	e := newEnv(t)
	e.doc.svc.SetMode(auth.ModeRequired)
	e.doc.http.Close()
	e.doc.http = httptest.NewServer(withTestPrincipal(document.NewServer(e.doc.svc, docConfig(), testLog())))
	t.Cleanup(e.doc.http.Close)
	e.doc.stopGRPC()
	e.doc.opts = []grpc.ServerOption{grpc.ChainUnaryInterceptor(receiveTestPrincipal)}
	e.doc.startGRPC(t)
	return e, e.startSignature(t, testOptions{required: true, noRecon: true})
}

func as(t *testing.T, p auth.Principal, method, url string, body any) (int, []byte) {
	t.Helper()
	resp := testenv.Do(t, method, url, body, nil, testPrincipal, principalJSON(p))
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) docAs(t *testing.T, p auth.Principal, title string) api.Document {
	t.Helper()
	code, b := as(t, p, "POST", e.doc.http.URL+"/documents", map[string]any{"title": title, "content": "terms"})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var d api.Document
	_ = json.Unmarshal(b, &d)
	return d
}

func (e *env) shareDoc(t *testing.T, id, grantee, level string) {
	t.Helper()
	if code, b := as(t, alice, "POST", e.doc.http.URL+"/documents/"+id+"/shares", api.ShareRequest{Grantee: grantee, Level: level}); code != http.StatusOK {
		t.Fatalf("share: %d %s", code, b)
	}
}

// The signature half of the attack table: B cannot sign, list or read
// the signatures of A's private document, nor sign as A; with view B reads
// them and still cannot sign; with sign B signs as B, and the document
// becomes signed although B may not edit it (the status update goes as
// the service).
func TestSigningNeedsSignAndTheSignerIsTheCaller(t *testing.T) {
	e, sig := newRequiredEnv(t)
	d := e.docAs(t, alice, "Alice's contract")
	code, b := as(t, alice, "POST", sig.url+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Alice"})
	if code != http.StatusCreated {
		t.Fatalf("owner signs: %d %s", code, b)
	}
	var mine api.Signature
	_ = json.Unmarshal(b, &mine)
	if mine.SignerEmail != "alice@company.com" || mine.DocumentStatusUpdate != UpdateApplied {
		t.Fatalf("owner's signature: %+v", mine)
	}

	refused := []struct {
		name   string
		who    auth.Principal
		method string
		url    string
		body   any
		want   int
	}{
		{"B signs A's document", bob, "POST", sig.url + "/signatures", map[string]any{"document_id": d.ID, "signer_name": "Bob"}, 404},
		{"B signs as A", bob, "POST", sig.url + "/signatures", map[string]any{"document_id": d.ID, "signer_email": "alice@company.com", "signer_name": "Alice"}, 403},
		{"B lists the document's signatures", bob, "GET", sig.url + "/documents/" + d.ID + "/signatures", nil, 404},
		{"B reads A's signature", bob, "GET", sig.url + "/signatures/" + mine.ID, nil, 404},
		{"an unverified email signs", auth.Principal{Kind: auth.KindUser, Subject: "m", Email: "alice@company.com"}, "POST", sig.url + "/signatures", map[string]any{"document_id": d.ID, "signer_name": "M"}, 403},
		{"the service credential signs", Principal, "POST", sig.url + "/signatures", map[string]any{"document_id": d.ID, "signer_email": "alice@company.com", "signer_name": "S"}, 403},
		{"a key without the sign scope signs", auth.Principal{Kind: auth.KindAPIKey, Subject: "k", Email: "alice@company.com", EmailVerified: true, Scopes: []auth.Scope{auth.ScopeRead}}, "POST", sig.url + "/signatures", map[string]any{"document_id": d.ID, "signer_name": "K"}, 403},
		{"B lists signatures of an unknown document", bob, "GET", sig.url + "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813/signatures", nil, 404},
	}
	for _, c := range refused {
		if code, b := as(t, c.who, c.method, c.url, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, b, c.want)
		}
	}
	if code, b := as(t, bob, "POST", sig.url+"/signatures", map[string]any{"document_id": d.ID, "signer_email": "Alice@Company.com", "signer_name": "A"}); code != http.StatusForbidden || !strings.Contains(string(b), "cannot sign as someone else") {
		t.Fatalf("sign as someone else: %d %s", code, b)
	}
	var all []api.Signature
	testenv.Do(t, "GET", sig.url+"/signatures", nil, &all, testPrincipal, principalJSON(bob))
	if len(all) != 0 {
		t.Fatalf("B lists %d signatures", len(all))
	}
	testenv.Do(t, "GET", sig.url+"/signatures", nil, &all, testPrincipal, principalJSON(root))
	if len(all) != 1 {
		t.Fatalf("admin lists %d signatures", len(all))
	}

	e.shareDoc(t, d.ID, "user:bob", "view")
	if code, _ := as(t, bob, "GET", sig.url+"/documents/"+d.ID+"/signatures", nil); code != http.StatusOK {
		t.Fatalf("view: list signatures %d", code)
	}
	if code, _ := as(t, bob, "GET", sig.url+"/signatures/"+mine.ID, nil); code != http.StatusOK {
		t.Fatalf("view: read a signature %d", code)
	}
	if code, b := as(t, bob, "POST", sig.url+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Bob"}); code != http.StatusForbidden {
		t.Fatalf("view: sign %d %s, want 403", code, b)
	}

	d2 := e.docAs(t, alice, "For Bob to sign")
	e.shareDoc(t, d2.ID, "user:bob", "sign")
	code, b = as(t, bob, "POST", sig.url+"/signatures", map[string]any{"document_id": d2.ID, "signer_name": "Bob"})
	if code != http.StatusCreated {
		t.Fatalf("sign: %d %s", code, b)
	}
	var bobs api.Signature
	_ = json.Unmarshal(b, &bobs)
	if bobs.SignerEmail != "bob@company.com" || bobs.DocumentStatusUpdate != UpdateApplied {
		t.Fatalf("bob's signature: %+v", bobs)
	}
	if code, _ := as(t, bob, "PATCH", e.doc.http.URL+"/documents/"+d2.ID, map[string]any{"status": "cancelled"}); code != http.StatusForbidden {
		t.Fatalf("sign share edits: %d", code)
	}
	var got api.Document
	testenv.Do(t, "GET", e.doc.http.URL+"/documents/"+d2.ID, nil, &got, testPrincipal, principalJSON(bob))
	if got.Status != api.StatusSigned {
		t.Fatalf("document %s after bob signed", got.Status)
	}
}

// The outbox's retry runs after the signer's request ended (its token may
// have expired): it applies the update with the service credential. While
// the document service is down, the sign check is made from the database
// with the same rule.
func TestTheOutboxRetriesAsTheService(t *testing.T) {
	e, sig := newRequiredEnv(t)
	d := e.docAs(t, alice, "Signed while the document service is down")
	e.shareDoc(t, d.ID, "email:bob@company.com", "sign")
	e.doc.stopGRPC()

	if code, b := as(t, auth.Principal{Kind: auth.KindUser, Subject: "carol", Email: "carol@company.com", EmailVerified: true},
		"POST", sig.url+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Carol"}); code != http.StatusNotFound {
		t.Fatalf("fallback: a stranger signs: %d %s", code, b)
	}
	code, b := as(t, bob, "POST", sig.url+"/signatures", map[string]any{"document_id": d.ID, "signer_name": "Bob"})
	if code != http.StatusCreated {
		t.Fatalf("fallback: bob signs: %d %s", code, b)
	}
	var s api.Signature
	_ = json.Unmarshal(b, &s)
	if s.DocumentStatusUpdate != UpdatePending {
		t.Fatalf("update %s, want pending", s.DocumentStatusUpdate)
	}

	e.doc.startGRPC(t)
	rec := NewReconciler(sig.svc, ReconcilerOptions{Interval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitForWithin(t, 20*time.Second, "the reconciler to apply the update", func() bool {
		var got api.Document
		testenv.Do(t, "GET", e.doc.http.URL+"/documents/"+d.ID, nil, &got, testPrincipal, principalJSON(alice))
		return got.Status == api.StatusSigned
	})
	var sigs []api.Signature
	testenv.Do(t, "GET", sig.url+"/documents/"+d.ID+"/signatures", nil, &sigs, testPrincipal, principalJSON(bob))
	if len(sigs) != 1 || sigs[0].DocumentStatusUpdate != UpdateApplied || !slices.ContainsFunc(sigs, func(s api.Signature) bool { return s.SignerEmail == "bob@company.com" }) {
		t.Fatalf("signatures: %+v", sigs)
	}
}
