package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
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

// testIdP is an identity provider's JWKS endpoint on a loopback port: the
// public halves of the keys it publishes, replaced at will (rotation), and
// a count of fetches.
type testIdP struct {
	url     string
	fetches atomic.Int64
	mu      sync.Mutex
	raw     []byte
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	idp := &testIdP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.fetches.Add(1)
		idp.mu.Lock()
		raw := idp.raw
		idp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(srv.Close)
	idp.url = srv.URL + "/.well-known/jwks.json"
	return idp
}

// publish replaces the published keys.
func (idp *testIdP) publish(t *testing.T, keys map[string]*rsa.PrivateKey) {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.raw = raw
	idp.mu.Unlock()
}

// counter sums a Prometheus counter's samples whose labels include all of
// labels, from a /metrics page.
func counter(t *testing.T, metricsURL, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestRequiredModeWithAJWKSProviderAndTheGatewayVerifying runs `docstream
// dev --auth-mode=required` against a real local JWKS endpoint (RS256,
// issuer and audience checked) with --auth-at-gateway, and attacks it
// through the gateway and directly: RS256 tokens of the provider work and
// B still cannot see A's document; expired, wrong issuer, wrong audience,
// a key the provider does not publish, an unknown kid, alg none and HS/RS
// confusion are 401 on REST and the WebSocket handshake, and through the
// gateway they never reach a service (the gateway refused them). Then the
// provider rotates its key: a token of the new kid is accepted at once (the
// unknown kid refetches the set) and a new token of the retired kid is
// refused. The gateway's admin API is for admins in required mode. No
// token reaches a log.
func TestRequiredModeWithAJWKSProviderAndTheGatewayVerifying(t *testing.T) {
	const issuer, audience = "https://idp.docstream.test", "docstream"
	k1, k2, stranger := rsaKey(t), rsaKey(t), rsaKey(t)
	idp := newTestIdP(t)
	idp.publish(t, map[string]*rsa.PrivateKey{"k1": k1})
	d := startDev(t, "--auth-mode", "required", "--auth-at-gateway", "--log-level", "debug",
		"--auth-jwks-url", idp.url, "--auth-jwt-issuer", issuer, "--auth-jwt-audience", audience,
		"--auth-jwks-unknown-kid-interval", "1s")
	ctx := context.Background()
	var issued []string
	mint := func(m jwt.SigningMethod, kid string, key any, sub string, mutate func(jwt.MapClaims)) string {
		now := time.Now()
		c := jwt.MapClaims{"sub": sub, "email": sub + "@example.com", "email_verified": true, "name": strings.ToUpper(sub[:1]) + sub[1:],
			"iss": issuer, "aud": audience, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": strconv.FormatInt(now.UnixNano(), 36)}
		if mutate != nil {
			mutate(c)
		}
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, s)
		return s
	}
	rs := func(kid string, key *rsa.PrivateKey, sub string, mutate func(jwt.MapClaims)) string {
		return mint(jwt.SigningMethodRS256, kid, key, sub, mutate)
	}
	alice, bob := rs("k1", k1, "alice", nil), rs("k1", k1, "bob", nil)
	root := rs("k1", k1, "root", func(c jwt.MapClaims) { c["roles"] = []string{"admin"} })

	doc, err := asToken(t, d.gateway, alice).CreateDocument(ctx, api.CreateDocumentRequest{Title: "RS256 private", Content: "x"})
	if err != nil {
		t.Fatalf("alice's RS256 token through the verifying gateway: %v", err)
	}
	if doc.Owner != "user:alice" || doc.CreatedBy != "alice@example.com" {
		t.Fatalf("the principal of an RS256 token: owner %q created_by %q", doc.Owner, doc.CreatedBy)
	}
	type target struct{ name, docs, search, realtime string }
	targets := []target{
		{"gateway", d.gateway, d.gateway, d.gateway},
		{"direct", d.document, "http://" + d.addrs["search-addr"], "http://" + d.addrs["realtime-addr"]},
	}
	for _, tg := range targets {
		if _, err := asToken(t, tg.docs, alice).GetDocument(ctx, doc.ID); err != nil {
			t.Fatalf("%s: alice reads her document: %v", tg.name, err)
		}
		if _, err := asToken(t, tg.docs, bob).GetDocument(ctx, doc.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("%s: bob reads alice's document: %v, want 404", tg.name, err)
		}
		if res, err := asToken(t, tg.search, bob).Search(ctx, api.SearchRequest{Query: "RS256", MinLSN: doc.CommitLSN}); err != nil || res.Total != 0 {
			t.Fatalf("%s: bob searches: %+v %v, want nothing", tg.name, res, err)
		}
		if w, err := asToken(t, tg.realtime, bob).Watch(ctx, doc.ID, client.WatchOptions{}); err == nil || client.StatusCode(err) != http.StatusNotFound {
			if err == nil {
				w.Close()
			}
			t.Fatalf("%s: bob watches alice's document: %v, want 404", tg.name, err)
		}
		w, err := asToken(t, tg.realtime, alice).Watch(ctx, doc.ID, client.WatchOptions{})
		if err != nil {
			t.Fatalf("%s: alice watches her document: %v", tg.name, err)
		}
		w.Close()
	}

	public, _ := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public})
	bad := []struct{ name, tok string }{
		{"expired", rs("k1", k1, "alice", func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		})},
		{"wrong issuer", rs("k1", k1, "alice", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })},
		{"wrong audience", rs("k1", k1, "alice", func(c jwt.MapClaims) { c["aud"] = "another-app" })},
		{"a key the provider does not publish", rs("k1", stranger, "alice", nil)},
		{"an unknown kid", rs("k-made-up", stranger, "alice", nil)},
		{"alg none", mint(jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, "alice", nil)},
		{"HS256 keyed with the provider's public key", mint(jwt.SigningMethodHS256, "k1", pemKey, "alice", nil)},
	}
	// gRPC (direct: the gateway carries none) verifies the same way.
	conn, err := grpc.NewClient(d.addrs["document-grpc-addr"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g := documentpb.NewDocumentServiceClient(conn)
	type grpcCase struct {
		name, tok string
		want      codes.Code
	}
	grpcCases := []grpcCase{{"alice", alice, codes.OK}, {"bob", bob, codes.NotFound}}
	for _, b := range bad {
		grpcCases = append(grpcCases, grpcCase{b.name, b.tok, codes.Unauthenticated})
	}
	for _, c := range grpcCases {
		_, err := g.GetDocument(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.tok), &documentpb.GetDocumentRequest{DocumentId: doc.ID})
		if status.Code(err) != c.want {
			t.Fatalf("grpc as %s: %v, want %v", c.name, err, c.want)
		}
	}

	metrics := d.document + "/metrics"
	refusedByDocument := func() float64 {
		return counter(t, metrics, "docstream_http_requests_total", `service="document"`, `code="401"`)
	}
	for _, tg := range targets {
		before := refusedByDocument()
		for _, b := range bad {
			for _, u := range []string{tg.docs + "/documents", tg.docs + "/documents/" + doc.ID, tg.search + "/search?q=RS256"} {
				req, _ := http.NewRequest("GET", u, nil)
				req.Header.Set("Authorization", "Bearer "+b.tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Fatalf("%s: %s on %s: %d %q, want 401 with the challenge", tg.name, b.name, u, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			}
			if w, err := asToken(t, tg.realtime, b.tok).Watch(ctx, doc.ID, client.WatchOptions{}); err == nil || client.StatusCode(err) != http.StatusUnauthorized {
				if err == nil {
					w.Close()
				}
				t.Fatalf("%s: %s on the WebSocket: %v, want 401", tg.name, b.name, err)
			}
		}
		after := refusedByDocument()
		switch tg.name {
		case "gateway":
			// --auth-at-gateway: refused before proxying.
			if after != before {
				t.Fatalf("the document service refused %v requests the verifying gateway should have refused", after-before)
			}
		case "direct":
			if after-before < float64(2*len(bad)) {
				t.Fatalf("the document service counted %v refusals of %d bad tokens", after-before, 2*len(bad))
			}
		}
	}

	// The gateway's admin API: for admins in required mode; its health
	// and metrics stay open.
	adminURL := "http://" + d.addrs["gateway-admin-addr"]
	for _, c := range []struct {
		who, tok, path string
		want           int
	}{
		{"no token", "", "/status", http.StatusUnauthorized},
		{"no token", "", "/upstreams", http.StatusUnauthorized},
		{"bob", bob, "/routes", http.StatusForbidden},
		{"a forged token", bad[3].tok, "/status", http.StatusUnauthorized},
		{"root (admin role)", root, "/status", http.StatusOK},
		{"root (admin role)", root, "/upstreams", http.StatusOK},
		{"no token", "", "/health/live", http.StatusOK},
		{"no token", "", "/metrics", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", adminURL+c.path, nil)
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("admin API %s as %s: %d, want %d", c.path, c.who, resp.StatusCode, c.want)
		}
	}

	// Rotation: the provider retires k1 for k2. A token of k2 works at
	// once (its unknown kid refetches the set); a new token of k1 is
	// refused once the set is refetched.
	idp.publish(t, map[string]*rsa.PrivateKey{"k2": k2})
	for _, tg := range targets {
		if _, err := asToken(t, tg.docs, rs("k2", k2, "alice", nil)).GetDocument(ctx, doc.ID); err != nil {
			t.Fatalf("%s: a token of the new key k2: %v", tg.name, err)
		}
		if _, err := asToken(t, tg.docs, rs("k1", k1, "alice", nil)).GetDocument(ctx, doc.ID); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("%s: a new token of the retired key k1: %v, want 401", tg.name, err)
		}
	}

	logs := d.output.String()
	if !strings.Contains(logs, `"principal":"user:alice"`) {
		t.Fatal("the request log does not name the principal")
	}
	for _, tok := range issued {
		if strings.Contains(logs, tok) {
			t.Fatalf("a token reached the log: %.16s…", tok)
		}
	}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
