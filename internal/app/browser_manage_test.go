package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webapp"
	"github.com/docstream/docstream/internal/webhooks"
)

// xssName is put where a user's text is shown (a title, a recipient's
// name, a key's name): it must render as text, never run.
const xssName = `<img src=x onerror="window.__xss=1;alert(1)">`

// managed is a docstream dev-shaped system in required mode (the dev
// token issuer signs users in, an invitation's recipient has no account)
// whose signing mails go to a real SMTP sink and whose links start with
// the gateway's own URL.
type managed struct {
	base string
	c    *Config
	mail *localstack.Mailpit
}

func startManagedSystem(t *testing.T) *managed {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	mp, err := localstack.StartMailpit(context.Background(), t.TempDir(), filepath.Join(filepath.Dir(file), "..", "..", ".tools", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mp.Stop)
	c := testConfig(t)
	c.Shared.Dev = true
	c.Auth.Mode = string(auth.ModeRequired) // testConfig's --realtime-jwt-secret verifies
	c.Webhooks.AllowPrivate = true          // the test's receiver is on loopback
	c.Signature.Signing.SMTPURL = mp.SMTPURL()
	c.Signature.Signing.PublicURL = "http://" + c.Gateway.Addr
	c.Signature.Signing.MailPerMinute = 1000
	c.Signature.Signing.Scheduler.Interval = 200 * time.Millisecond
	startSystem(t, c)
	return &managed{base: "http://" + c.Gateway.Addr, c: c, mail: mp}
}

// token issues a user's token as the dev sign-in picker does.
func (m *managed) token(t *testing.T, sub, email string, admin bool) string {
	t.Helper()
	a, err := auth.New(context.Background(), m.c.Auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.IssueToken(auth.TokenRequest{Subject: sub, Email: email, EmailVerified: email != "", Admin: admin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// upload creates a document through the gateway with a bearer token.
func (m *managed) upload(t *testing.T, tok, title, contentType string, content []byte) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", title)
	w.WriteField("created_by", "owner@example.com")
	part, err := w.CreatePart(map[string][]string{
		"Content-Disposition": {`form-data; name="file"; filename="doc.txt"`},
		"Content-Type":        {contentType},
	})
	if err != nil {
		t.Fatal(err)
	}
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, m.base+"/documents", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %q: %d %v", title, resp.StatusCode, err)
	}
	return doc.ID
}

// link waits until addr holds more than seen mails whose subject starts
// with prefix and returns the invitation link of the newest. The link
// must be the gateway's invitation page.
func (m *managed) link(t *testing.T, addr, prefix string, seen int) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(m.base+webapp.InvitationPage) + `[A-Za-z0-9_-]{43}`)
	var link string
	testenv.WaitForWithin(t, browserWait, fmt.Sprintf("mail %d to %s", seen+1, addr), func() bool {
		ms, err := m.mail.Messages(context.Background(), "to:"+addr)
		if err != nil {
			t.Fatal(err)
		}
		var mine []localstack.MailSummary // newest first
		for _, s := range ms {
			for _, to := range s.To {
				if strings.EqualFold(to.Address, addr) && strings.HasPrefix(s.Subject, prefix) {
					mine = append(mine, s)
					break
				}
			}
		}
		if len(mine) <= seen {
			return false
		}
		full, err := m.mail.Message(context.Background(), mine[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		link = re.FindString(full.Text)
		if link == "" {
			t.Fatalf("the mail to %s has no invitation link to %s:\n%s", addr, m.base+webapp.InvitationPage, full.Text)
		}
		return true
	})
	return link
}

func (m *managed) mailCount(t *testing.T, addr string) int {
	t.Helper()
	ms, err := m.mail.Messages(context.Background(), "to:"+addr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range ms {
		for _, to := range s.To {
			if strings.EqualFold(to.Address, addr) {
				n++
			}
		}
	}
	return n
}

// recipient opens a tab in a fresh browser context: no localStorage, so
// no session, as a recipient without an account.
func (b *browser) recipient(name string) context.Context {
	ctx, cancel := chromedp.NewContext(b.first, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	b.watch(ctx, name)
	return ctx
}

// signIn uses the dev picker.
func (b *browser) signIn(ctx context.Context, user string) {
	b.t.Helper()
	b.open(ctx, "/app/signin")
	b.run(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-user=%q]`, user))))
	b.waitJS(ctx, user+" to be signed in", `location.pathname === '/' && document.querySelector('[data-testid=signed-in-as]')`)
}

// inert fails if a payload ran or became markup in the tab.
func (b *browser) inert(ctx context.Context, where string) {
	b.t.Helper()
	type leak struct {
		XSS    any  `json:"xss"`
		Images bool `json:"images"`
	}
	got := eval[leak](b, ctx, `({xss: window.__xss || null, images: !!document.querySelector('main img[src=x], main script')})`)
	if got.XSS != nil || got.Images {
		b.t.Fatalf("%s: a payload ran or became markup: %+v", where, got)
	}
}

func jsq(s string) string { return strconv.Quote(s) }

// TestBrowserManagement drives the screens of signing requests,
// invitations, API keys and webhooks in headless Chromium against one
// docstream dev-shaped system in required mode.
func TestBrowserManagement(t *testing.T) {
	m := startManagedSystem(t)
	alice := m.token(t, "alice", "alice@example.com", false)

	// The owner creates a request on the document page for two signers in
	// order (Bob, whose name carries a payload, then Carol), with an
	// expiry; resends Bob's invitation; Bob (drawing) and Carol (typing)
	// sign from the links mailed to them, in browsers without a session;
	// the owner's page follows each recipient live and downloads the
	// certificate of completion; Bob's used link then says so.
	t.Run("two signers in order through mailed links, then the certificate", func(t *testing.T) {
		b := newBrowser(t, m.base)
		a := b.first
		title := xssName + " Lease"
		doc := m.upload(t, alice, title, "text/plain", []byte("Lease terms: the rent is 1000 a month.\n"))
		b.signIn(a, "alice")
		b.open(a, "/app/documents/"+doc)
		b.waitJS(a, "the signing requests section", `document.querySelector('#requests') && !document.querySelector('#requests').textContent.includes('Loading')`)
		b.run(a, chromedp.Click(chromedp.CSS(`#request-create-box summary`)))
		bobName := xssName + "Bob"
		b.run(a,
			chromedp.SendKeys(chromedp.CSS(`#recipient-rows li:nth-child(1) input[name=email]`), "bob@example.com"),
			chromedp.SendKeys(chromedp.CSS(`#recipient-rows li:nth-child(1) input[name=name]`), bobName),
			chromedp.Click(chromedp.CSS(`#add-recipient`)),
			chromedp.SendKeys(chromedp.CSS(`#recipient-rows li:nth-child(2) input[name=email]`), "carol@example.com"),
			chromedp.SendKeys(chromedp.CSS(`#recipient-rows li:nth-child(2) input[name=name]`), "Carol"),
			chromedp.SetValue(chromedp.CSS(`#recipient-rows li:nth-child(2) input[name=order]`), "2"),
			chromedp.SetValue(chromedp.CSS(`#request-expires`), time.Now().Add(72*time.Hour).Format("2006-01-02T15:04")),
			chromedp.SendKeys(chromedp.CSS(`#request-message`), "Please sign the lease"),
		)
		b.screenshot(a, "signing-request-create")
		b.run(a, chromedp.Click(chromedp.CSS(`#request-create`)))
		b.waitJS(a, "the request to be listed as sent, Bob notified", `document.querySelector('#requests article.request[data-state=sent] tr[data-email="bob@example.com"][data-state=notified]')`)
		if got := eval[string](b, a, `document.querySelector('#requests .rc-name')?.textContent || ''`); got != bobName {
			t.Fatalf("the recipient's name shows as %q, want the text %q", got, bobName)
		}
		if !eval[bool](b, a, `!!document.querySelector('#requests article.request').textContent.includes('Expires')`) {
			t.Errorf("the request does not show its expiry")
		}
		first := m.link(t, "bob@example.com", "Please sign", 0)
		if n := m.mailCount(t, "carol@example.com"); n != 0 {
			t.Fatalf("Carol (order 2) was mailed %d times before Bob signed", n)
		}
		// Resend: Bob gets a second mail with a fresh link.
		b.run(a, chromedp.Click(chromedp.CSS(`#requests [data-op=resend]`)))
		b.waitJS(a, "the resend to be confirmed", `document.querySelector('#requests-msg .ok')`)
		bobLink := m.link(t, "bob@example.com", "Please sign", 1)
		if bobLink == first {
			t.Errorf("the resent mail carries the same link")
		}

		// Bob, no account: the pinned text, the payload title as text.
		bob := b.recipient("bob")
		b.run(bob, chromedp.Navigate(bobLink))
		b.waitJS(bob, "Bob's invitation", `document.querySelector('#invite-sign-form')`)
		if got := eval[string](b, bob, `document.querySelector('#invite-doc-title').textContent`); got != title {
			t.Fatalf("the invitation shows the title %q, want %q as text", got, title)
		}
		b.waitJS(bob, "the pinned content", `document.querySelector('#invite-text')?.textContent.includes('the rent is 1000')`)
		b.waitJS(a, "the owner's page to show Bob viewed, live", `document.querySelector('#requests tr[data-email="bob@example.com"][data-state=viewed]')`)
		b.stroke(bob, "#sign-canvas", input.DispatchMouseEventPointerTypeMouse, [2]float64{0.1, 0.6}, [2]float64{0.5, 0.3})
		b.stroke(bob, "#sign-canvas", input.DispatchMouseEventPointerTypePen, [2]float64{0.5, 0.3}, [2]float64{0.9, 0.7})
		// Without consent the API refuses, and the page says why.
		b.run(bob, chromedp.Click(chromedp.CSS(`#invite-sign`)))
		b.waitJS(bob, "the API's consent error", `document.querySelector('#invite-msg .error')?.textContent.includes('consent')`)
		b.screenshot(bob, "invitation")
		b.axe(bob, "the invitation page")
		b.run(bob, chromedp.Click(chromedp.CSS(`#invite-consent`)), chromedp.Click(chromedp.CSS(`#invite-sign`)))
		b.waitJS(bob, "Bob's outcome", `document.querySelector('#invite-outcome [data-state=signed]')`)
		b.waitJS(a, "the owner's page to show Bob signed, live", `document.querySelector('#requests tr[data-email="bob@example.com"][data-state=signed]')`)

		// Carol, next in order, types her signature.
		carol := b.recipient("carol")
		b.run(carol, chromedp.Navigate(m.link(t, "carol@example.com", "Please sign", 0)))
		b.waitJS(carol, "Carol's invitation", `document.querySelector('#invite-sign-form')`)
		b.run(carol, chromedp.Click(chromedp.CSS(`#invite-mode-type`)))
		b.waitJS(carol, "the typed mode", `!document.querySelector('#invite-typed').closest('.typed').hidden`)
		b.run(carol, chromedp.SendKeys(chromedp.CSS(`#invite-typed`), "Carol Typed"),
			chromedp.Click(chromedp.CSS(`#invite-consent`)), chromedp.Click(chromedp.CSS(`#invite-sign`)))
		b.waitJS(carol, "Carol's outcome", `document.querySelector('#invite-outcome [data-state=signed]')`)

		// The owner sees the request complete and downloads the certificate.
		b.waitJS(a, "the request completed with its certificate, live", `document.querySelector('#requests article.request[data-state=completed] [data-op=certificate]')`)
		b.screenshot(a, "signing-requests")
		b.axe(a, "the document page with its signing requests")
		dir := t.TempDir()
		if _, err := chromedp.Call(a, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir}); err != nil {
			t.Fatal(err)
		}
		b.run(a, chromedp.Click(chromedp.CSS(`#requests [data-op=certificate]`)))
		b.waitJS(a, "the certificate's hash checked by the page", `document.querySelector('#certificate-msg[data-match=true]')`)
		testenv.WaitForWithin(t, browserWait, "the certificate PDF in the download directory", func() bool {
			files, _ := os.ReadDir(dir)
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(dir, f.Name()))
				if err == nil && bytes.HasPrefix(b, []byte("%PDF")) {
					return true
				}
			}
			return false
		})

		// A used link says so.
		b.run(bob, chromedp.Navigate(bobLink))
		b.waitJS(bob, "the used link's message", `document.querySelector('#invite-unusable')?.textContent.includes('already used')`)
		b.inert(a, "the owner's tab")
		b.inert(bob, "Bob's tab")
		b.checkClean(a, "the owner's tab")
		b.checkClean(bob, "Bob's tab")
		b.checkClean(carol, "Carol's tab")
	})

	// A signer declines from the link: the owner's page shows the request
	// declined with the reason; the other recipient's link, an unknown
	// link and an expired one each say why they cannot be used; the owner
	// cancels another request from the page.
	t.Run("a declined invitation, then unusable links", func(t *testing.T) {
		b := newBrowser(t, m.base)
		a := b.first
		create := func(doc string, body api.CreateSigningRequest) api.SigningRequest {
			t.Helper()
			var r api.SigningRequest
			if resp := testenv.Do(t, http.MethodPost, m.base+"/documents/"+doc+"/signing-requests", body, &r, "Authorization", "Bearer "+alice); resp.StatusCode != http.StatusCreated {
				t.Fatalf("create request: %d", resp.StatusCode)
			}
			return r
		}
		doc := m.upload(t, alice, "Quote to decline", "text/plain", []byte("A quote.\n"))
		create(doc, api.CreateSigningRequest{Recipients: []api.RecipientInput{
			{Email: "dave@example.com", Name: "Dave", Role: api.RoleSigner, Order: 1},
			{Email: "erin@example.com", Name: "Erin", Role: api.RoleApprover, Order: 1}}})
		b.signIn(a, "alice")
		b.open(a, "/app/documents/"+doc)
		b.waitJS(a, "the open request", `document.querySelector('#requests article.request[data-state=sent]')`)

		dave := b.recipient("dave")
		b.run(dave, chromedp.Navigate(m.link(t, "dave@example.com", "Please sign", 0)))
		b.waitJS(dave, "Dave's invitation", `document.querySelector('#invite-decline-form')`)
		b.run(dave, chromedp.Click(chromedp.CSS(`details.decline summary`)),
			chromedp.SendKeys(chromedp.CSS(`#invite-reason`), "The amount is wrong"),
			chromedp.Click(chromedp.CSS(`#invite-decline`)))
		b.waitJS(dave, "Dave's outcome", `document.querySelector('#invite-outcome [data-state=declined]')`)
		b.waitJS(a, "the owner's page to show the request declined with the reason, live",
			`document.querySelector('#requests article.request[data-state=declined] tr[data-email="dave@example.com"][data-state=declined]')?.textContent.includes('The amount is wrong')`)

		erin := b.recipient("erin")
		b.run(erin, chromedp.Navigate(m.link(t, "erin@example.com", "Please approve", 0)))
		b.waitJS(erin, "Erin's link to say the request ended", `document.querySelector('#invite-unusable')?.textContent.includes('declined')`)
		b.run(erin, chromedp.Navigate(m.base+webapp.InvitationPage+strings.Repeat("A", 43)))
		b.waitJS(erin, "an unknown link to say so", `document.querySelector('#invite-unusable')?.textContent.includes('not valid')`)

		// An expired invitation.
		short := m.upload(t, alice, "Offer that expires", "text/plain", []byte("An offer.\n"))
		// Long enough for the invitation to be mailed first (a request that
		// expired before its mail went out sends none).
		until := time.Now().Add(20 * time.Second)
		create(short, api.CreateSigningRequest{ExpiresAt: &until, Recipients: []api.RecipientInput{{Email: "frank@example.com", Role: api.RoleSigner, Order: 1}}})
		frankLink := m.link(t, "frank@example.com", "Please sign", 0)
		time.Sleep(time.Until(until) + 500*time.Millisecond) // the expiry is the behaviour under test
		b.run(erin, chromedp.Navigate(frankLink))
		b.waitJS(erin, "the expired link to say so", `document.querySelector('#invite-unusable')?.textContent.includes('expired')`)
		b.screenshot(erin, "invitation-expired")

		// The owner cancels an open request from the page; its link then
		// says it cannot be used.
		third := m.upload(t, alice, "Contract to cancel", "text/plain", []byte("A contract.\n"))
		create(third, api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "gina@example.com", Role: api.RoleSigner, Order: 1}}})
		// Mailed before the cancel (a cancelled request mails nobody).
		ginaLink := m.link(t, "gina@example.com", "Please sign", 0)
		b.open(a, "/app/documents/"+third)
		b.waitJS(a, "the request to cancel", `document.querySelector('#requests [data-op=cancel]')`)
		b.run(a, chromedp.Click(chromedp.CSS(`#requests [data-op=cancel]`)))
		b.waitJS(a, "the request cancelled", `document.querySelector('#requests article.request[data-state=cancelled]')`)
		b.run(erin, chromedp.Navigate(ginaLink))
		b.waitJS(erin, "the cancelled request's link to say so", `document.querySelector('#invite-unusable')?.textContent.includes('cancelled')`)
		b.checkClean(a, "the owner's tab")
		b.checkClean(dave, "Dave's tab")
		b.checkClean(erin, "the tab of unusable links")
	})

	// A user who is not an admin sees the API's refusal; an admin creates
	// a read key (shown once), the key works against the API and its last
	// use shows, the admin revokes it and the key is refused.
	t.Run("an admin creates, uses and revokes an API key", func(t *testing.T) {
		b := newBrowser(t, m.base)
		a := b.first
		b.signIn(a, "bob")
		b.open(a, "/app/admin/keys")
		b.waitJS(a, "the API's refusal for a non-admin", `document.querySelector('#keys-msg .error')?.textContent.includes('admin')`)
		b.signIn(a, "admin")
		b.open(a, "/app/admin/keys")
		keyName := "ci reader " + xssName
		b.run(a, chromedp.SendKeys(chromedp.CSS(`#key-name`), keyName), chromedp.Click(chromedp.CSS(`#key-create`)))
		b.waitJS(a, "the new key, shown once", `document.querySelector('#new-key')?.textContent.startsWith('dsk_')`)
		key := eval[string](b, a, `document.querySelector('#new-key').textContent`)
		b.waitJS(a, "the key listed by its name, as text", fmt.Sprintf(`[...document.querySelectorAll('#key-rows .key-name')].some(td => td.textContent === %s)`, jsq(keyName)))
		b.screenshot(a, "api-keys")
		b.axe(a, "the API keys page")

		bearer := []string{"Authorization", "Bearer " + key}
		if resp := testenv.Do(t, http.MethodGet, m.base+"/documents", nil, nil, bearer...); resp.StatusCode != http.StatusOK {
			t.Fatalf("the new read key lists documents: %d", resp.StatusCode)
		}
		if resp := testenv.Do(t, http.MethodPost, m.base+"/apikeys", api.CreateAPIKeyRequest{Name: "x", Scopes: []string{"read"}}, nil, bearer...); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a read key creates a key: %d, want 403", resp.StatusCode)
		}
		testenv.WaitForWithin(t, browserWait, "the key's last use to show", func() bool {
			b.open(a, "/app/admin/keys")
			b.waitJS(a, "the key list", `document.querySelector('#key-rows tr[data-id]')`)
			return eval[bool](b, a, fmt.Sprintf(`[...document.querySelectorAll('#key-rows tr')].some(tr => tr.querySelector('.key-name')?.textContent === %s && tr.querySelector('.last-used').textContent !== 'never')`, jsq(keyName)))
		})
		row := `[...document.querySelectorAll('#key-rows tr')].find(tr => tr.querySelector('.key-name')?.textContent === ` + jsq(keyName) + `)`
		b.run(a, chromedp.Evaluate[chromedp.Void](row+`.querySelector('[data-revoke]').click()`))
		b.waitJS(a, "the revoke button to ask for confirmation", row+`.querySelector('[data-revoke]').textContent.startsWith('Confirm')`)
		b.run(a, chromedp.Evaluate[chromedp.Void](row+`.querySelector('[data-revoke]').click()`))
		b.waitJS(a, "the key listed as revoked", row+`?.dataset.revoked === 'true'`)
		testenv.WaitForWithin(t, browserWait, "the revoked key to be refused", func() bool {
			return testenv.Do(t, http.MethodGet, m.base+"/documents", nil, nil, bearer...).StatusCode == http.StatusUnauthorized
		})
		b.inert(a, "the API keys page")
		b.checkClean(a, "the API keys tab")
	})

	// An endpoint created on the page receives a test event and a
	// document's creation, signed with the secret the page showed once;
	// both deliveries are listed; the endpoint is deleted.
	t.Run("a webhook endpoint, its test event and deliveries", func(t *testing.T) {
		type received struct {
			id, ts, sig string
			body        []byte
		}
		var mu sync.Mutex
		var got []received
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, received{r.Header.Get(webhooks.HeaderID), r.Header.Get(webhooks.HeaderTimestamp), r.Header.Get(webhooks.HeaderSignature), body})
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(recv.Close)

		b := newBrowser(t, m.base)
		a := b.first
		b.signIn(a, "admin")
		b.open(a, "/app/admin/webhooks")
		// A bad URL: the API's field error is shown.
		b.run(a, chromedp.SetValue(chromedp.CSS(`#hook-url`), "ftp://example.com/x"), chromedp.Click(chromedp.CSS(`#hook-create`)))
		b.waitJS(a, "the API's error for a bad URL", `document.querySelector('#hook-create-msg .error')`)
		b.run(a, chromedp.SetValue(chromedp.CSS(`#hook-url`), recv.URL+"/hook"),
			chromedp.SendKeys(chromedp.CSS(`#hook-desc`), "archive "+xssName),
			chromedp.Click(chromedp.CSS(`#hook-create`)))
		b.waitJS(a, "the secret, shown once", `document.querySelector('#new-hook-secret')?.textContent.startsWith('whsec_')`)
		secret := eval[string](b, a, `document.querySelector('#new-hook-secret').textContent`)
		b.waitJS(a, "the endpoint listed", fmt.Sprintf(`document.querySelector('#hooks article.hook .hook-url')?.textContent === %s`, jsq(recv.URL+"/hook")))
		hook := `document.querySelector('#hooks article.hook')`
		b.run(a, chromedp.Evaluate[chromedp.Void](hook+`.querySelector('[data-op=test]').click()`))
		b.waitJS(a, "the test event delivered and listed", hook+`.querySelector('tr[data-type="webhook.test"][data-status=delivered]')`)

		admin := m.token(t, "admin", "admin@example.com", true)
		m.upload(t, admin, "Invoice for the hook", "text/plain", []byte("An invoice.\n"))
		testenv.WaitForWithin(t, browserWait, "the document.created delivery listed", func() bool {
			b.run(a, chromedp.Evaluate[chromedp.Void](hook+`.querySelector('[data-op=refresh-deliveries]').click()`))
			time.Sleep(200 * time.Millisecond) // the list reloads
			return eval[bool](b, a, hook+`.querySelector('tr[data-type="document.created"][data-status=delivered]') !== null`)
		})
		b.screenshot(a, "webhooks")
		b.axe(a, "the webhooks page")

		mu.Lock()
		deliveries := append([]received(nil), got...)
		mu.Unlock()
		types := map[string]bool{}
		for _, d := range deliveries {
			var p api.WebhookPayload
			if err := json.Unmarshal(d.body, &p); err != nil {
				t.Fatalf("a delivery's body: %v", err)
			}
			ts, _ := strconv.ParseInt(d.ts, 10, 64)
			want, err := webhooks.Sign(secret, d.id, ts, d.body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(" "+d.sig+" ", " "+want+" ") {
				t.Errorf("%s is not signed with the secret the page showed: %q", p.Type, d.sig)
			}
			types[p.Type] = true
		}
		if !types[api.WebhookTest] || !types[api.WebhookDocumentCreated] {
			t.Fatalf("the receiver got %v, want the test event and document.created", types)
		}

		b.run(a, chromedp.Evaluate[chromedp.Void](hook+`.querySelector('[data-op=delete]').click()`))
		b.waitJS(a, "the delete button to ask for confirmation", hook+`.querySelector('[data-op=delete]').textContent.startsWith('Confirm')`)
		b.run(a, chromedp.Evaluate[chromedp.Void](hook+`.querySelector('[data-op=delete]').click()`))
		b.waitJS(a, "the endpoint gone", `!document.querySelector('#hooks article.hook') && document.querySelector('#hooks').textContent.includes('No endpoints')`)
		b.inert(a, "the webhooks page")
		b.checkClean(a, "the webhooks tab")
	})
}
