package app

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/localstack/localoidc"
	"github.com/docstream/docstream/internal/testenv"
)

// A person signs in at a real local OpenID provider with the authorization
// code flow and PKCE (S256), as the web application does in the browser,
// and calls the API through the gateway in required mode with the access
// token: verified against the provider's JWKS endpoint, issuer and
// audience checked. A token from the same provider for another audience,
// and a code redeemed without its verifier, are refused.
func TestOIDCCodeWithPKCEAgainstALocalProviderThenTheAPI(t *testing.T) {
	idp, err := localoidc.Start(localoidc.OIDCConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })

	c := testConfig(t)
	c.Targets = "document,gateway"
	c.Auth.Mode = "required"
	c.Auth.JWKSURL, c.Auth.Issuer, c.Auth.Audience = idp.JWKSURL(), idp.Issuer, idp.ClientID
	startSystem(t, c)
	gw := "http://" + c.Gateway.Addr

	redirect := "http://127.0.0.1:" + strings.Split(c.Gateway.Addr, ":")[1] + "/app/callback"
	code, verifier := signIn(t, idp, redirect, localoidc.OIDCTestUser)

	// The code without its verifier is refused (PKCE).
	if resp, _ := redeem(t, idp, code, redirect, "not-the-verifier-not-the-verifier-not-the-verifier"); resp.StatusCode == http.StatusOK {
		t.Fatal("a code was redeemed with the wrong verifier")
	}
	// The code was burnt by the failed attempt on some providers; sign in
	// again for a fresh one.
	code, verifier = signIn(t, idp, redirect, localoidc.OIDCTestUser)
	resp, tok := redeem(t, idp, code, redirect, verifier)
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("token: %d %+v", resp.StatusCode, tok)
	}

	auth := []string{"Authorization", "Bearer " + tok.AccessToken}
	if resp := testenv.Do(t, http.MethodGet, gw+"/documents", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	var d api.Document
	if resp := testenv.Do(t, http.MethodPost, gw+"/documents", map[string]string{"title": "Signed in with OIDC", "content": "x"}, &d, auth...); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with the access token: %d", resp.StatusCode)
	}
	if d.Owner != "user:"+localoidc.OIDCTestUser.Subject || d.CreatedBy != localoidc.OIDCTestUser.Email {
		t.Fatalf("owner %q created_by %q, want the provider's subject and email", d.Owner, d.CreatedBy)
	}
	var got api.Document
	if resp := testenv.Do(t, http.MethodGet, gw+"/documents/"+d.ID, nil, &got, auth...); resp.StatusCode != http.StatusOK || got.ID != d.ID {
		t.Fatalf("get: %d", resp.StatusCode)
	}
	// A tampered token (signature no longer the JWKS key's) is 401.
	parts := strings.Split(tok.AccessToken, ".")
	bad := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	if resp := testenv.Do(t, http.MethodGet, gw+"/documents", nil, nil, "Authorization", "Bearer "+bad); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a tampered token: %d", resp.StatusCode)
	}
}

// signIn runs the browser's part of the code flow over HTTP: the
// authorization request with a PKCE challenge, the provider's login form,
// and the redirect back with the code. It returns the code and verifier.
func signIn(t *testing.T, idp *localoidc.OIDC, redirect string, u localoidc.OIDCUser) (code, verifier string) {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	state := "st-" + verifier[:8]
	jar, _ := cookiejar.New(nil)
	var final *url.URL
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			final = req.URL
			return http.ErrUseLastResponse // the app's page: not served here
		}
		return nil
	}}
	q := url.Values{"client_id": {idp.ClientID}, "response_type": {"code"}, "scope": {"openid email profile"},
		"redirect_uri": {redirect}, "state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	resp, err := browser.Get(idp.Issuer + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The login page is at /login/username?authRequestID=<id>.
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("authorize: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err = browser.PostForm(idp.Issuer+"/login/username", url.Values{"username": {u.Username}, "password": {u.Password}, "id": {id}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if final == nil || final.Query().Get("state") != state || final.Query().Get("code") == "" {
		t.Fatalf("login: %d, redirected to %v", resp.StatusCode, final)
	}
	return final.Query().Get("code"), verifier
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
}

// redeem exchanges the code at the token endpoint as a public client.
func redeem(t *testing.T, idp *localoidc.OIDC, code, redirect, verifier string) (*http.Response, tokenResponse) {
	t.Helper()
	var tok tokenResponse
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {idp.ClientID}, "code_verifier": {verifier}}
	resp := testenv.Do(t, http.MethodPost, idp.Issuer+"/oauth/token", form.Encode(), &tok, "Content-Type", "application/x-www-form-urlencoded")
	return resp, tok
}
