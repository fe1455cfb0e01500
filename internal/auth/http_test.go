package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

const secret = "0123456789abcdef0123456789abcdef"

func token(t testing.TB, sec string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(sec))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix()}
}

type fakeKeys struct{}

func (fakeKeys) VerifyKey(_ context.Context, raw string) (auth.Principal, error) {
	if raw == "dsk_good_secret" {
		return auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeRead}}, nil
	}
	return auth.Principal{}, apperr.E(apperr.Unauthenticated, "a valid bearer token is required")
}

// service is a service's handler behind the middleware inside httpx.Wrap,
// as every service mounts it; it answers with the principal's key.
func service(t testing.TB, mode auth.Mode, log *testenv.SyncBuffer) http.Handler {
	t.Helper()
	cfg := auth.DefaultConfig()
	cfg.JWTSecret, cfg.Mode = secret, string(mode)
	a, err := auth.New(t.Context(), cfg, fakeKeys{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	who := func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		httpx.Respond(w, http.StatusOK, map[string]string{"principal": p.Key(), "kind": string(p.Kind)})
	}
	mux.HandleFunc("GET /documents", who)
	mux.HandleFunc("GET /ws/{id}", who)
	httpx.Routes(mux)
	return httpx.Wrap("test", logging.New(log, "debug"), a.Middleware(mux))
}

// The attack table at the middleware, in both modes.
func TestMiddlewareAttackTable(t *testing.T) {
	var logs testenv.SyncBuffer
	valid := token(t, secret, claims("alice", time.Hour))
	expired := token(t, secret, claims("alice", -time.Hour))
	wrongKey := token(t, "another-secret-another-secret-xx", claims("alice", time.Hour))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("alice", time.Hour)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	issued := []string{valid, expired, wrongKey, none, "dsk_good_secret", "dsk_revoked_secret"}
	type call struct {
		path   string
		header []string
	}
	cases := []struct {
		name     string
		call     call
		required int    // status in required mode
		open     int    // status in open mode
		who      string // principal key when 200
	}{
		{"no token", call{"/documents", nil}, 401, 200, ""},
		{"a valid token", call{"/documents", []string{"Authorization", "Bearer " + valid}}, 200, 200, "user:alice"},
		{"the scheme in any case", call{"/documents", []string{"Authorization", "bearer " + valid}}, 200, 200, "user:alice"},
		{"an expired token", call{"/documents", []string{"Authorization", "Bearer " + expired}}, 401, 401, ""},
		{"a token of another key", call{"/documents", []string{"Authorization", "Bearer " + wrongKey}}, 401, 401, ""},
		{"alg none", call{"/documents", []string{"Authorization", "Bearer " + none}}, 401, 401, ""},
		{"basic auth is not a credential", call{"/documents", []string{"Authorization", "Basic dTpw"}}, 401, 200, ""},
		{"an API key", call{"/documents", []string{"Authorization", "Bearer dsk_good_secret"}}, 200, 200, "apikey:k1"},
		{"a revoked API key", call{"/documents", []string{"Authorization", "Bearer dsk_revoked_secret"}}, 401, 401, ""},
		// A token in the query counts on WebSocket handshakes only (it
		// would be in every access log otherwise).
		{"a query token on a plain request", call{"/documents?token=" + valid, nil}, 401, 200, ""},
		{"a query token on a handshake", call{"/ws/x?token=" + valid, []string{"Upgrade", "websocket", "Connection", "Upgrade"}}, 200, 200, "user:alice"},
		{"the bearer subprotocol on a handshake", call{"/ws/x", []string{"Upgrade", "websocket", "Sec-WebSocket-Protocol", "bearer, " + valid}}, 200, 200, "user:alice"},
		{"a bad query token on a handshake", call{"/ws/x?token=" + wrongKey, []string{"Upgrade", "websocket"}}, 401, 401, ""},
		{"health needs nothing", call{"/health/live", nil}, 200, 200, ""},
		{"health ignores a bad token", call{"/health/live", []string{"Authorization", "Bearer " + wrongKey}}, 200, 200, ""},
		{"metrics need nothing", call{"/metrics", nil}, 200, 200, ""},
	}
	for _, mode := range []auth.Mode{auth.ModeRequired, auth.ModeOpen} {
		h := service(t, mode, &logs)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		for _, tc := range cases {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				want := tc.required
				if mode == auth.ModeOpen {
					want = tc.open
				}
				var body map[string]any
				var out any = &body
				if tc.call.path == "/metrics" {
					out = nil // not JSON
				}
				resp := testenv.Do(t, "GET", srv.URL+tc.call.path, nil, out, tc.call.header...)
				if resp.StatusCode != want {
					t.Fatalf("status %d, want %d (%v)", resp.StatusCode, want, body)
				}
				switch {
				case want == 401:
					if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
						t.Fatalf("WWW-Authenticate %q", got)
					}
					e, _ := body["error"].(map[string]any)
					if e["code"] != "unauthenticated" || e["message"] != "a valid bearer token is required" {
						t.Fatalf("body %v", body)
					}
				case strings.HasPrefix(tc.call.path, "/documents") || strings.HasPrefix(tc.call.path, "/ws/"):
					if body["principal"] != tc.who {
						t.Fatalf("principal %v, want %q", body["principal"], tc.who)
					}
					if tc.who == "" && body["kind"] != "anonymous" {
						t.Fatalf("kind %v, want anonymous", body["kind"])
					}
				}
			})
		}
	}
	// The request log names the principal, and no credential appears in
	// any log line, query strings included.
	out := logs.String()
	if !strings.Contains(out, `"principal":"user:alice"`) || !strings.Contains(out, `"principal":"apikey:k1"`) {
		t.Fatalf("the request log does not name the principal:\n%s", out)
	}
	for _, tok := range issued {
		if strings.Contains(out, tok) {
			t.Fatalf("a credential reached the log: %.20s…", tok)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("not JSON: %s", line)
		}
	}
}

// A nil Authenticator (services built without one, as in unit tests)
// passes every request as anonymous.
func TestNilAuthenticatorPassesThrough(t *testing.T) {
	var a *auth.Authenticator
	called := false
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = auth.FromContext(r.Context()).IsAnonymous()
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/documents", nil))
	if !called || a.Mode() != auth.ModeOpen {
		t.Fatal("nil authenticator did not pass through as anonymous")
	}
}

type expiringKeys struct {
	fakeKeys
	exp time.Time
}

func (k expiringKeys) VerifyKeyExpiry(ctx context.Context, raw string) (auth.Principal, time.Time, error) {
	p, err := k.VerifyKey(ctx, raw)
	if err != nil {
		return p, time.Time{}, err
	}
	return p, k.exp, nil
}

// An API key's expiry reaches the request's credential when its verifier
// tells it (the realtime service closes a WebSocket then, as for a JWT);
// a verifier that does not tell it leaves it zero (never).
func TestAPIKeyExpiryReachesTheCredential(t *testing.T) {
	exp := time.Now().Add(90 * time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name string
		keys auth.KeyVerifier
		want time.Time
	}{{"expiring", expiringKeys{exp: exp}, exp}, {"without expiry", fakeKeys{}, time.Time{}}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := auth.DefaultConfig()
			cfg.JWTSecret, cfg.Mode = secret, string(auth.ModeRequired)
			a, err := auth.New(t.Context(), cfg, tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			var got time.Time
			var seen bool
			h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, ok := auth.CredentialFrom(r.Context())
				got, seen = c.Expires, ok
			}))
			req := httptest.NewRequest("GET", "/documents", nil)
			req.Header.Set("Authorization", "Bearer dsk_good_secret")
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !seen || !got.Equal(tc.want) {
				t.Fatalf("credential expires %v (seen %v), want %v", got, seen, tc.want)
			}
		})
	}
}

// The credential kept for forwarding never shows in a formatted value.
func TestCredentialIsRedactedWhenFormatted(t *testing.T) {
	c := auth.Credential{Raw: "secret-token"}
	for _, s := range []string{c.String(), strings.TrimSpace(strings.Join([]string{c.String()}, ""))} {
		if strings.Contains(s, "secret-token") {
			t.Fatal(s)
		}
	}
}
