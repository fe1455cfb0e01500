package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/auth"
)

// The web application (Config.App) answers / and /app/… only, before
// authentication (its pages are public even with --auth-at-gateway); every
// other path, GET /documents included, is still the API's, and an unknown
// path is still the JSON 404.
func TestTheAppAnswersItsPathsOnlyAndBeforeAuth(t *testing.T) {
	ac := auth.DefaultConfig()
	ac.JWTSecret = "0123456789abcdef0123456789abcdef"
	ac.Mode = string(auth.ModeRequired)
	a, err := auth.New(t.Context(), ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	cfg.Authenticate = func(h http.Handler) http.Handler { return a.Middleware(h) }
	cfg.App = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.Write([]byte("app " + r.URL.Path))
	})
	_, gw := startGateway(t, cfg)
	for _, p := range []string{"/", "/app", "/app/", "/app/documents/x", "/app/js/main.js"} {
		resp, body := get(t, gw.Client(), gw.URL+p)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-App") != "yes" || string(body) != "app "+p {
			t.Errorf("GET %s: %d %q, want the app's answer without a token", p, resp.StatusCode, body)
		}
	}
	tok, _, err := auth.Mint(ac, auth.TokenRequest{Subject: "alice"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := doc.hits.Load()
	resp, body := get(t, gw.Client(), gw.URL+"/documents", "Authorization", "Bearer "+tok)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-App") != "" || doc.hits.Load() != before+1 {
		t.Fatalf("GET /documents: %d %s; want the document service's answer", resp.StatusCode, body)
	}
	if resp, body := get(t, gw.Client(), gw.URL+"/documents"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /documents without a token: %d %s; the API stays behind auth", resp.StatusCode, body)
	}
	for _, p := range []string{"/nope", "/application", "/apps/x"} {
		resp, body := get(t, gw.Client(), gw.URL+p, "Authorization", "Bearer "+tok)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error.Code != "not_found" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s; want the JSON 404", p, resp.StatusCode, body)
		}
	}
}
