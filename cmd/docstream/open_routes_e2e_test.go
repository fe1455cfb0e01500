package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/client/webhook"
	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/ops"
	"github.com/docstream/docstream/internal/realtime"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webhooks"
)

// openRoutes are the routes that answer without a credential in required
// mode (README, "Identity and access"): health and metrics, realtime's
// counts, the audit public keys, invitation links (their token is their
// credential) and the dev token issuer (docstream dev only). The web
// application's pages and assets are the gateway's (openAppPaths).
var openRoutes = map[string]bool{
	"GET /health/live":                      true,
	"GET /health/ready":                     true,
	"GET /metrics":                          true,
	"GET /stats":                            true,
	"GET /auth/token":                       true,
	"GET /.well-known/docstream-audit-keys": true,
	"GET /invitations/{token}":              true,
	"GET /invitations/{token}/content":      true,
	"POST /invitations/{token}/{action}":    true,
}

// openAppPaths are the web application's pages (its sign-in page
// included) and assets, served by the gateway without a credential: the
// browser signs in from them.
var openAppPaths = []string{"/", "/app/signin", "/app/callback", "/app/config.json", "/app/app.css", "/app/icon.svg"}

var wildcardRE = regexp.MustCompile(`\{[a-z_.]+\}`)

// samplePath fills a route pattern's wildcards with plausible values.
func samplePath(pattern string) string {
	named := map[string]string{"{token}": "tok" + strings.Repeat("A", 40), "{action}": "sign", "{field}": "status",
		"{grantee}": "user:x", "{delivery}": "1"}
	return wildcardRE.ReplaceAllStringFunc(pattern, func(w string) string {
		if v, ok := named[w]; ok {
			return v
		}
		return "0194c3a0-0000-7000-8000-000000000001"
	})
}

// checkOpenRoutes sends every route each service registers (its Routes
// list, from which its mux is built, plus health and metrics) without a
// credential, directly to the service's port and through the gateway:
// the routes of openRoutes answer, every other one is 401 with the
// challenge; the web application's pages and assets answer at the
// gateway.
func checkOpenRoutes(t *testing.T, d *devSystem) {
	health := []string{"GET /health/live", "GET /health/ready", "GET /metrics"}
	services := map[string][]string{
		"document-addr":  append(document.Routes(), apikey.Routes()...),
		"signature-addr": signature.Routes(),
		"search-addr":    search.Routes(),
		"realtime-addr":  realtime.Routes(),
		"webhooks-addr":  webhooks.Routes(),
		"extractor-addr": extractor.Routes(),
	}
	send := func(method, u string) *http.Response {
		req, _ := http.NewRequest(method, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	checked := 0
	for flag, routes := range services {
		if d.addrs[flag] == "" {
			t.Fatalf("dev has no --%s", flag)
		}
		for _, route := range append(routes, health...) {
			method, pattern, _ := strings.Cut(route, " ")
			path := samplePath(pattern)
			bases := []string{"http://" + d.addrs[flag]}
			if !strings.HasPrefix(path, "/health/") && path != "/metrics" && path != "/stats" {
				bases = append(bases, d.gateway) // the gateway's own health answers for it
			}
			for _, base := range bases {
				resp := send(method, base+path)
				unauthorized := resp.StatusCode == http.StatusUnauthorized
				switch {
				case openRoutes[route] && unauthorized:
					t.Errorf("%s%s (%s): 401, but it is listed as open", base, path, route)
				case !openRoutes[route] && (!unauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"`):
					t.Errorf("%s%s (%s): %d without a credential, want 401 with the challenge (or list it as open in the README and here)", base, path, route, resp.StatusCode)
				}
				checked++
			}
		}
	}
	// The gateway's own: the operations view needs a credential, the web
	// application does not.
	if resp := send("GET", d.gateway+samplePath(ops.Routes()[0][len("GET "):])); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ops without a credential: %d, want 401", resp.StatusCode)
	}
	for _, p := range openAppPaths {
		if resp := send("GET", d.gateway+p); resp.StatusCode != http.StatusOK {
			t.Errorf("the web application's %s without a credential: %d, want 200", p, resp.StatusCode)
		}
	}
	t.Logf("%d route × port pairs checked without a credential", checked)
}

// startMailpit starts a real SMTP sink, so that invitation links travel
// by mail as in production (dev's log notifier would print them).
func startMailpit(t *testing.T) *localstack.Mailpit {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	mp, err := localstack.StartMailpit(context.Background(), t.TempDir(), filepath.Join(filepath.Dir(file), "..", "..", ".tools", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mp.Stop)
	return mp
}

var invitationRE = regexp.MustCompile(`/invitations/([A-Za-z0-9_-]{43})`)

// invitationToken waits for the invitation mailed to addr and returns the
// token of its link.
func invitationToken(t *testing.T, mp *localstack.Mailpit, addr string) string {
	t.Helper()
	var tok string
	testenv.WaitFor(t, "an invitation mail to "+addr, func() bool {
		ms, err := mp.Messages(context.Background(), "to:"+addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			full, err := mp.Message(context.Background(), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if sm := invitationRE.FindStringSubmatch(full.Text); sm != nil {
				tok = sm[1]
				return true
			}
		}
		return false
	})
	return tok
}

// issueInvitationAndWebhookSecrets makes the other secrets a deployment
// hands out and uses each: A sends a signing request whose invitation
// link (read from the mail) is opened without a credential through the
// gateway and directly (signDoc is then out for signature); the admin
// creates a webhook endpoint (its secret), rotates it (a second one), and
// A's next change of changeDoc is delivered signed by both. It returns the tokens and secrets, which no log line
// may contain.
func issueInvitationAndWebhookSecrets(t *testing.T, d *devSystem, mp *localstack.Mailpit, alice, admin *client.Client, signDoc, changeDoc string) []string {
	ctx := context.Background()
	req, err := alice.CreateSigningRequest(ctx, signDoc, api.CreateSigningRequest{Recipients: []api.RecipientInput{
		{Email: "carol@example.com", Name: "Carol", Role: api.RoleSigner, Order: 1}}})
	if err != nil {
		t.Fatalf("A's signing request: %v", err)
	}
	tok := invitationToken(t, mp, "carol@example.com")
	for _, base := range []string{d.gateway, d.sig} {
		inv, err := newClient(t, base).ViewInvitation(ctx, tok)
		if err != nil || inv.DocumentTitle == "" {
			t.Fatalf("%s: opening the invitation of request %s without a credential: %+v %v", base, req.ID, inv, err)
		}
	}

	var mu sync.Mutex
	var got []http.Header
	var bodies [][]byte
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		mu.Lock()
		got, bodies = append(got, r.Header.Clone()), append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	wh, err := admin.CreateWebhook(ctx, api.CreateWebhookRequest{URL: rc.URL + "/hook", Events: []string{api.WebhookDocumentUpdated}})
	if err != nil {
		t.Fatalf("admin creating a webhook: %v", err)
	}
	rot, err := admin.RotateWebhookSecret(ctx, wh.ID, "1h")
	if err != nil {
		t.Fatalf("rotating the webhook's secret: %v", err)
	}
	if _, err := alice.UpdateDocument(ctx, changeDoc, api.UpdateDocumentRequest{Title: "delivered to the webhook"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the webhook delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 1 })
	mu.Lock()
	h, body := got[0], bodies[0]
	mu.Unlock()
	for _, s := range []string{wh.Secret, rot.Secret} {
		if err := webhook.Verify(s, h, body); err != nil {
			t.Fatalf("the delivery does not verify with a secret of the overlap: %v", err)
		}
	}
	return []string{tok, wh.Secret, rot.Secret}
}
