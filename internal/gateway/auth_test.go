package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/internal/auth"
)

// With --auth-at-gateway (Config.Authenticate) a bad or missing credential
// is refused at the edge and never reaches a service; a valid one is
// proxied with its header; health stays open.
func TestTheGatewayVerifiesAtTheEdgeWhenTold(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	ac := auth.DefaultConfig()
	ac.JWTSecret = secret
	a, err := auth.New(t.Context(), ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	cfg.Authenticate = func(h http.Handler) http.Handler { return a.Middleware(h) }
	_, gw := startGateway(t, cfg)
	tok, _, err := auth.Mint(ac, auth.TokenRequest{Subject: "alice"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-another-secret-xx"))
	for _, c := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"a token of another key", []string{"Authorization", "Bearer " + bad}, http.StatusUnauthorized},
		{"a valid token", []string{"Authorization", "Bearer " + tok}, http.StatusOK},
	} {
		before := doc.hits.Load()
		resp, body := get(t, gw.Client(), gw.URL+"/documents", c.hdr...)
		if resp.StatusCode != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.status)
		}
		reached := doc.hits.Load() - before
		if c.status == http.StatusUnauthorized && (reached != 0 || resp.Header.Get("WWW-Authenticate") == "") {
			t.Fatalf("%s: refused answer reached the service %d times, challenge %q", c.name, reached, resp.Header.Get("WWW-Authenticate"))
		}
		if c.status == http.StatusOK && reached != 1 {
			t.Fatalf("%s: reached the service %d times", c.name, reached)
		}
	}
	if resp, _ := get(t, gw.Client(), gw.URL+"/health/live"); resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", resp.StatusCode)
	}
}
