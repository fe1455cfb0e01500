package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/localstack/localoidc"
	"github.com/docstream/docstream/internal/testenv"
)

// A person signs in to the web application in Chromium with the
// authorization code flow and PKCE against a real local OpenID provider
// (zitadel/oidc): the app sends the browser to the provider with an S256
// challenge, the person types a username and password on the provider's
// own page, the app redeems the code with its verifier (a cross-origin
// fetch its Content-Security-Policy allows) and then uses the API in
// required mode as that person: their list, their documents, live.
func TestBrowserSignsInWithOIDCCodeAndPKCE(t *testing.T) {
	mallory := localoidc.OIDCUser{Subject: "mallory", Username: "mallory", Password: "mallory-password", Email: "mallory@example.com", Name: "Mallory"}
	idp, err := localoidc.Start(localoidc.OIDCConfig{Users: []localoidc.OIDCUser{localoidc.OIDCTestUser, mallory}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })

	base, _ := startDevSystemWith(t, func(c *Config) {
		c.Shared.Dev = false // no dev token issuer: the provider is the only way in
		c.Search.MaxWait = browserWait
		c.Auth.Mode = "required"
		c.Auth.JWKSURL, c.Auth.Issuer, c.Auth.Audience = idp.JWKSURL(), idp.Issuer, idp.ClientID
		c.WebApp.OIDCIssuer, c.WebApp.OIDCClientID = idp.Issuer, idp.ClientID
	})
	// The provider answers a loopback redirect on any port (RFC 8252), so
	// the app must be reached at 127.0.0.1, as the gateway listens.
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("the gateway is at %s, not a 127.0.0.1 address the provider redirects to", base)
	}

	// Someone else's document, which alice must never see (mallory signs
	// in at the same provider over plain HTTP).
	redirect := base + "/app/callback"
	code, verifier := signIn(t, idp, redirect, mallory)
	_, tok := redeem(t, idp, code, redirect, verifier)
	other := tok.AccessToken
	var hidden api.Document
	if resp := testenv.Do(t, "POST", base+"/documents", map[string]string{"title": "Mallory's private notes", "content": "x"}, &hidden,
		"Authorization", "Bearer "+other); resp.StatusCode != 201 {
		t.Fatalf("mallory's create: %d", resp.StatusCode)
	}

	b := newBrowser(t, base)
	a := b.first
	b.open(a, "/app/signin")
	b.waitJS(a, "the provider's sign-in button", `document.querySelector('#oidc-signin')`)
	if eval[bool](b, a, `!!document.querySelector('button[data-user]')`) {
		t.Errorf("the sign-in page offers dev users outside dev")
	}
	b.run(a, click(`#oidc-signin`))

	// The provider's own login page, on its own origin, reached with a
	// PKCE challenge.
	b.waitJS(a, "the provider's login page", fmt.Sprintf(`location.origin === %q && document.querySelector('input[name=username]')`, idp.Issuer))
	// The authorize request was redirected to the login page; the request
	// the browser sent first is in the navigation's redirect chain only,
	// so the challenge is checked at the provider: redeeming below works
	// only with the verifier (TestOIDCCodeWithPKCEAgainstALocalProviderThenTheAPI
	// shows a wrong verifier refused).
	u := localoidc.OIDCTestUser
	b.run(a, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		document.querySelector('input[name=username]').value = %q;
		document.querySelector('input[name=password]').value = %q;
		document.querySelector('input[name=username]').form.submit();
	})()`, u.Username, u.Password)))

	// Back in the app, signed in as the provider's user.
	b.waitJS(a, "the app again, signed in", fmt.Sprintf(`location.origin === %q && document.querySelector('[data-testid=signed-in-as]')`, base))
	if who := eval[string](b, a, `document.querySelector('[data-testid=signed-in-as]').textContent`); !strings.Contains(who, u.Name) {
		t.Errorf("the page says %q, want alice's name %q", who, u.Name)
	}
	sess := eval[struct {
		Kind, Token, Email string
	}](b, a, `JSON.parse(localStorage.getItem('docstream.session') || '{}')`)
	if sess.Kind != "oidc" || sess.Email != u.Email || strings.Count(sess.Token, ".") != 2 {
		t.Fatalf("the stored session: kind %q email %q, token a JWT: %v", sess.Kind, sess.Email, strings.Count(sess.Token, ".") == 2)
	}
	if strings.Contains(eval[string](b, a, `location.href`), "code=") {
		t.Errorf("the authorization code stays in the address bar")
	}

	// The app uses the API as alice: a document alice creates with her
	// token appears in her live list; mallory's never does.
	b.waitJS(a, "the list feed live", `document.querySelector('#live-state')?.dataset.state === 'live'`)
	var mine api.Document
	if resp := testenv.Do(t, "POST", base+"/documents", map[string]string{"title": "Alice's OIDC document", "content": "y"}, &mine,
		"Authorization", "Bearer "+sess.Token); resp.StatusCode != 201 {
		t.Fatalf("create with the browser's token: %d", resp.StatusCode)
	}
	if mine.Owner != "user:"+u.Subject {
		t.Errorf("owner %q, want user:%s", mine.Owner, u.Subject)
	}
	b.waitJS(a, "alice's document live in her list", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q]')`, mine.ID))
	b.open(a, "/")
	b.waitJS(a, "alice's list read again", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q]')`, mine.ID))
	if eval[bool](b, a, fmt.Sprintf(`!!document.querySelector('#doc-rows tr[data-id=%q]')`, hidden.ID)) {
		t.Errorf("alice's list shows mallory's private document")
	}
	b.checkClean(a, "after the OIDC sign-in")
	b.screenshot(a, "oidc-signed-in")

	// Signing out forgets the token.
	b.run(a, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#who button')].find(x => /sign out/i.test(x.textContent)).click()`))
	b.waitJS(a, "the session gone", `!localStorage.getItem('docstream.session') || !JSON.parse(localStorage.getItem('docstream.session')).token`)
}
