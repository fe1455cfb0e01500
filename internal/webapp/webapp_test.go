package webapp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Pages answer index.html, assets their own type, anything else under
// /app/ the JSON 404; every answer carries the strict CSP.
func TestPagesAssetsAndNotFound(t *testing.T) {
	h := Handler(Config{Enabled: true, AuthMode: "open", Dev: true})
	for _, p := range []string{"/", "/app/documents/3f1c", "/app/search", "/app/ops", "/app/signin", "/app/callback",
		"/app/invitations/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/app/admin/keys", "/app/admin/webhooks"} {
		resp, body := get(t, h, http.MethodGet, p)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="/app/js/main.js"`) {
			t.Errorf("GET %s: %d %s; want index.html", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for p, ct := range map[string]string{"/app/js/main.js": "javascript", "/app/app.css": "text/css",
		"/app/vendor/pdfjs/pdf.min.mjs": "javascript", "/app/vendor/pdfjs/pdf.worker.min.mjs": "javascript"} {
		resp, _ := get(t, h, http.MethodGet, p)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s: %d %q; want %s (module scripts need a JavaScript type)", p, resp.StatusCode, resp.Header.Get("Content-Type"), ct)
		}
	}
	for _, p := range []string{"/app/nope.js", "/app/", "/app/documents/", "/app/js/", "/app/index.html", "/app/../webapp.go", "/app/static/app.css",
		"/app/invitations/", "/app/invitations/a/b", "/app/admin", "/app/admin/"} {
		resp, body := get(t, h, http.MethodGet, p)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
			t.Errorf("GET %s: %d %s; want the JSON 404", p, resp.StatusCode, body)
		}
	}
	resp, body := get(t, h, http.MethodPost, "/")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(body, "method_not_allowed") {
		t.Errorf("POST /: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("an error answer lacks the CSP or nosniff: %v", resp.Header)
	}
}

func TestTheCSPIsStrictAndAllowsTheIssuer(t *testing.T) {
	csp := CSP("https://id.example.com/realms/x")
	for _, want := range []string{"script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "default-src 'none'",
		"connect-src 'self' https://id.example.com;", "worker-src 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp+";", want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(CSP(""), "unsafe-") {
		t.Errorf("CSP %q allows something unsafe", csp)
	}
	if got := CSP(""); !strings.Contains(got, "connect-src 'self';") {
		t.Errorf("CSP without an issuer: %q", got)
	}
	resp, _ := get(t, Handler(Config{OIDCIssuer: "https://id.example.com", OIDCClientID: "web"}), http.MethodGet, "/")
	if resp.Header.Get("Content-Security-Policy") != CSP("https://id.example.com") {
		t.Errorf("served CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
}

func TestConfigTellsTheBrowserHowToSignIn(t *testing.T) {
	_, body := get(t, Handler(Config{AuthMode: "required", OIDCIssuer: "https://id.example.com", OIDCClientID: "web", OIDCScopes: "openid email"}), http.MethodGet, "/app/config.json")
	var s Settings
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if s.AuthMode != "required" || s.DevTokens || s.OIDC == nil || s.OIDC.Issuer != "https://id.example.com" || s.OIDC.ClientID != "web" ||
		s.OIDC.RedirectPath != "/app/callback" || strings.HasPrefix(s.OIDC.RedirectPath, "/auth") {
		t.Fatalf("settings %+v", s)
	}
	_, body = get(t, Handler(Config{AuthMode: "open", Dev: true}), http.MethodGet, "/app/config.json")
	if body != `{"auth_mode":"open","dev_tokens":true}` {
		t.Fatalf("dev settings %s", body)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{OIDCIssuer: "https://id.example.com", OIDCClientID: "web"}, true},
		{Config{OIDCIssuer: "https://id.example.com"}, false},
		{Config{OIDCIssuer: "id.example.com", OIDCClientID: "web"}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}

// No file of the application sets markup from a string: untrusted text
// must reach the page as text nodes.
func TestNoMarkupFromStrings(t *testing.T) {
	entries, err := static.ReadDir("static/js")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := static.ReadFile("static/js/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", e.Name(), bad)
			}
		}
	}
}
