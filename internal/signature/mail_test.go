package signature

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// TestInvitationMailsAreRateLimitedPerPrincipalAndAddress: with
// --signing-mail-per-minute 3, the mails a create or a resend would cause
// are charged to the caller (its principal, else its address); past the
// limit the call answers 429 rate_limited with a Retry-After of at most
// the window, and does nothing (no request is opened, nothing is queued).
// Another principal, and an anonymous caller, have counts of their own.
func TestInvitationMailsAreRateLimitedPerPrincipalAndAddress(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 3})
	two := api.CreateSigningRequest{Recipients: []api.RecipientInput{
		{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleSigner}}}
	create := func(p *auth.Principal, docID string) *http.Response {
		var h []string
		if p != nil {
			h = []string{testPrincipal, principalJSON(*p)}
		}
		return testenv.Do(t, "POST", in.url+"/documents/"+docID+"/signing-requests", two, nil, h...)
	}
	d1, d2, d3, d4 := e.createDocument(t, "One", "1"), e.createDocument(t, "Two", "2"), e.createDocument(t, "Three", "3"), e.createDocument(t, "Four", "4")

	resp := create(&alice, d1.ID)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("alice's first request (2 mails): %d", resp.StatusCode)
	}
	var req api.SigningRequest
	_ = json.NewDecoder(resp.Body).Decode(&req)
	mustLimited(t, "alice's second request (4 mails)", create(&alice, d2.ID))
	mustLimited(t, "alice's resend (4 mails)", testenv.Do(t, "POST", in.url+"/signing-requests/"+req.ID+"/resend", nil, nil, testPrincipal, principalJSON(alice)))
	// The refused create opened nothing: bob, counted apart, opens one on
	// the same document.
	if resp := create(&bob, d2.ID); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bob's request on the document alice was refused: %d", resp.StatusCode)
	}
	// Anonymous callers are counted by address.
	if resp := create(nil, d3.ID); resp.StatusCode != http.StatusCreated {
		t.Fatalf("an anonymous request: %d", resp.StatusCode)
	}
	mustLimited(t, "a second anonymous request from the same address", create(nil, d4.ID))
	// The refused resend queued no mail: only the first invitations were sent.
	testenv.WaitFor(t, "the scheduler to drain", func() bool {
		var n int
		if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM signing.due WHERE kind = 'notify'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	var invites int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM signing.invitations WHERE request_id = $1`, req.ID).Scan(&invites); err != nil {
		t.Fatal(err)
	}
	if invites != 2 {
		t.Fatalf("alice's request: %d invitations, want 2 (the refused resend sent none)", invites)
	}
}

// TestTheLogNotifierPrintsTheLinksAndNoLogLineHoldsAToken: without SMTP
// (docstream dev) each mail, its invitation link included, is written out
// by the log notifier, and the link works. The service's own log, at
// debug level, through every route a token travels (view, content, act,
// a forged token, resend), never holds a token.
func TestTheLogNotifierPrintsTheLinksAndNoLogLineHoldsAToken(t *testing.T) {
	e := newEnv(t)
	mails, logs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: mails}, log: logging.New(logs, "debug")})
	doc := e.createDocument(t, "Logged", "terms")
	var req api.SigningRequest
	if code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleSigner, Order: 2}}}, &req); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	testenv.WaitFor(t, "the log notifier to print an invitation to a@example.com", func() bool {
		return strings.Contains(mails.String(), "--- mail to a@example.com: Please sign: Logged") && linkRE.MatchString(mails.String())
	})
	tok := linkRE.FindStringSubmatch(mails.String())[1]
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/resend", nil, nil); code != http.StatusOK {
		t.Fatalf("resend: %d", code)
	}
	testenv.WaitFor(t, "the resent invitation", func() bool { return len(linkRE.FindAllString(mails.String(), -1)) == 2 })
	for _, c := range []struct{ method, path string }{
		{"GET", "/invitations/" + tok},
		{"GET", "/invitations/" + tok + "/content"},
		{"GET", "/invitations/" + tok[:42] + "A/content"},
		{"POST", "/invitations/" + tok + "/approve"}, // a signer cannot approve: 409
		{"POST", "/invitations/" + tok + "/sign"},
	} {
		resp := testenv.Do(t, c.method, in.url+c.path, api.InvitationAction{Consent: true}, nil)
		resp.Body.Close()
	}
	if got := in.request(t, req.ID); got.Recipients[0].State != api.RecipientSigned {
		t.Fatalf("the printed link did not sign: %+v", got.Recipients[0])
	}
	testenv.WaitFor(t, "the invitation to the second signer", func() bool { return len(linkRE.FindAllString(mails.String(), -1)) == 3 })

	if !strings.Contains(logs.String(), "/invitations/REDACTED") {
		t.Fatalf("the log holds no request line of an invitation route (the check below would be vacuous):\n%s", logs.String())
	}
	for _, m := range linkRE.FindAllStringSubmatch(mails.String(), -1) {
		if strings.Contains(logs.String(), m[1]) || strings.Contains(logs.String(), m[1][:20]) {
			t.Errorf("a log line holds the token %s…:\n%s", m[1][:8], logs.String())
		}
	}
}

// A create that fails (the document is not there, or already has an open
// request) mails nobody, so it spends none of the caller's mail quota: the
// next create within the minute still has all of it.
func TestAFailedCreateDoesNotSpendTheMailQuota(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 4})
	two := api.CreateSigningRequest{Recipients: []api.RecipientInput{
		{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleSigner}}}
	create := func(docID string) int {
		resp := testenv.Do(t, "POST", in.url+"/documents/"+docID+"/signing-requests", two, nil, testPrincipal, principalJSON(alice))
		return resp.StatusCode
	}
	d1, d2, d3 := e.createDocument(t, "One", "1"), e.createDocument(t, "Two", "2"), e.createDocument(t, "Three", "3")
	for _, c := range []struct {
		what  string
		docID string
		want  int
	}{
		{"a request on a document that does not exist", "0190c5d4-0000-7000-8000-0000000000ff", http.StatusNotFound},
		{"the first request (2 mails of 4)", d1.ID, http.StatusCreated},
		{"a second request on the same document", d1.ID, http.StatusConflict},
		{"a request on another document (4 mails of 4)", d2.ID, http.StatusCreated},
		{"one more (6 mails of 4)", d3.ID, http.StatusTooManyRequests},
	} {
		if got := create(c.docID); got != c.want {
			t.Fatalf("%s: %d, want %d", c.what, got, c.want)
		}
	}
}

// mustLimited asserts a 429 rate_limited answer with a Retry-After of
// 1..60 s.
func mustLimited(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || body.Error.Code != "rate_limited" || err != nil || after < 1 || after > 60 {
		t.Fatalf("%s: %d %q Retry-After %q, want 429 rate_limited with 1..60 s", what, resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"))
	}
}

// asAlice is a call by alice to instance in.
func asAlice(t *testing.T, in *wfInstance, method, path string, body any) *http.Response {
	t.Helper()
	return testenv.Do(t, method, in.url+path, body, nil, testPrincipal, principalJSON(alice))
}

var twoSigners = api.CreateSigningRequest{Recipients: []api.RecipientInput{
	{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleSigner}}}

// The mail count is kept in Redis: two instances sharing one Redis charge
// one count per principal, and an instance started later (a restart) does
// not hand out a fresh allowance. With --signing-mail-per-minute 3, two
// mails through instance A and two more through instance B are refused
// with 429 and Retry-After, as is the same through a third instance.
func TestTwoInstancesShareOneMailCount(t *testing.T) {
	e := newEnv(t)
	o := wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 3}
	a, b := e.startWorkflowWith(t, o), e.startWorkflowWith(t, o)
	d1, d2 := e.createDocument(t, "One", "1"), e.createDocument(t, "Two", "2")
	if resp := asAlice(t, a, "POST", "/documents/"+d1.ID+"/signing-requests", twoSigners); resp.StatusCode != http.StatusCreated {
		t.Fatalf("2 mails through instance A: %d", resp.StatusCode)
	}
	mustLimited(t, "2 more mails through instance B (4 of 3)", asAlice(t, b, "POST", "/documents/"+d2.ID+"/signing-requests", twoSigners))
	a.stop()
	c := e.startWorkflowWith(t, o)
	mustLimited(t, "2 more mails through an instance started since (4 of 3)", asAlice(t, c, "POST", "/documents/"+d2.ID+"/signing-requests", twoSigners))
	var open int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM signing.signing_requests WHERE document_id = $1`, d2.ID).Scan(&open); err != nil || open != 0 {
		t.Fatalf("requests on the refused document: %d %v, want 0", open, err)
	}
}

// When Redis is down the limiter fails closed (see mailLimiter): a call
// that would mail answers 503 and opens nothing; one that mails nobody (a
// draft) goes through.
func TestTheMailLimiterFailsClosedWithoutRedis(t *testing.T) {
	e := newEnv(t)
	r, err := localstack.StartRedis(t.Context(), testenv.TempDir(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, redisURL: r.URL()})
	d1, d2 := e.createDocument(t, "One", "1"), e.createDocument(t, "Two", "2")
	if resp := asAlice(t, in, "POST", "/documents/"+d1.ID+"/signing-requests", twoSigners); resp.StatusCode != http.StatusCreated {
		t.Fatalf("with Redis up: %d", resp.StatusCode)
	}
	r.Stop()
	if resp := asAlice(t, in, "POST", "/documents/"+d2.ID+"/signing-requests", twoSigners); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d, want 503", resp.StatusCode)
	}
	draft := twoSigners
	draft.Draft = true
	var req api.SigningRequest
	if code := testenv.Do(t, "POST", in.url+"/documents/"+d2.ID+"/signing-requests", draft, &req, testPrincipal, principalJSON(alice)).StatusCode; code != http.StatusCreated {
		t.Fatalf("a draft with Redis down: %d", code)
	}
	if resp := asAlice(t, in, "POST", "/signing-requests/"+req.ID+"/send", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("sending it with Redis down: %d, want 503", resp.StatusCode)
	}
	if got := in.request(t, req.ID); got.State != api.RequestDraft {
		t.Fatalf("the refused send: request %s, want draft", got.State)
	}
}

// A draft mails nobody: creating one charges nothing, sending it charges
// its recipients once.
func TestADraftIsChargedWhenSentNotWhenCreated(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 2})
	draft := twoSigners
	draft.Draft = true
	var ids []string
	for _, title := range []string{"One", "Two"} {
		d := e.createDocument(t, title, title)
		var req api.SigningRequest
		if code := testenv.Do(t, "POST", in.url+"/documents/"+d.ID+"/signing-requests", draft, &req, testPrincipal, principalJSON(alice)).StatusCode; code != http.StatusCreated {
			t.Fatalf("draft %s (2 recipients, limit 2): %d", title, code)
		}
		ids = append(ids, req.ID)
	}
	if resp := asAlice(t, in, "POST", "/signing-requests/"+ids[0]+"/send", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("sending the first draft (2 mails of 2): %d", resp.StatusCode)
	}
	mustLimited(t, "sending the second draft (4 mails of 2)", asAlice(t, in, "POST", "/signing-requests/"+ids[1]+"/send", nil))
}

// A request with more recipients than --signing-mail-per-minute could
// never be sent (the limit allows the minute's mails at once, no more): it
// is 422 naming recipients, not a 429 to retry. Nothing is written (no
// request row) and no quota is spent (the next request gets the whole
// minute's). A draft that large is created (it mails nobody) but its send
// is the same 422 and leaves it a draft. The answer does not depend on
// Redis: with it down the request is still 422, not 503.
func TestMoreRecipientsThanTheMinutesMailsIs422(t *testing.T) {
	e := newEnv(t)
	r, err := localstack.StartRedis(t.Context(), testenv.TempDir(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 2, redisURL: r.URL()})
	three := api.CreateSigningRequest{Recipients: []api.RecipientInput{
		{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleApprover, Order: 2},
		{Email: "c@example.com", Role: api.RoleCC}}}
	tooMany := func(what string, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		var er apperr.Body
		_ = json.NewDecoder(resp.Body).Decode(&er)
		if resp.StatusCode != http.StatusUnprocessableEntity || er.Error.Code != "validation" ||
			len(er.Error.Details) != 1 || er.Error.Details[0].Field != "recipients" || !strings.Contains(er.Error.Message, "--signing-mail-per-minute") {
			t.Fatalf("%s: %d %+v, want 422 validation naming recipients and --signing-mail-per-minute", what, resp.StatusCode, er.Error)
		}
	}
	requests := func(docID string) int {
		var n int
		if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM signing.signing_requests WHERE document_id = $1`, docID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	d1, d2, d3, d4, d5 := e.createDocument(t, "One", "1"), e.createDocument(t, "Two", "2"), e.createDocument(t, "Three", "3"),
		e.createDocument(t, "Four", "4"), e.createDocument(t, "Five", "5")

	tooMany("3 recipients, 2 mails a minute", asAlice(t, in, "POST", "/documents/"+d1.ID+"/signing-requests", three))
	if n := requests(d1.ID); n != 0 {
		t.Fatalf("the refused request left %d request rows", n)
	}
	draft := three
	draft.Draft = true
	var req api.SigningRequest
	if code := testenv.Do(t, "POST", in.url+"/documents/"+d2.ID+"/signing-requests", draft, &req, testPrincipal, principalJSON(alice)).StatusCode; code != http.StatusCreated {
		t.Fatalf("a draft for 3 (mails nobody): %d", code)
	}
	tooMany("sending the draft for 3", asAlice(t, in, "POST", "/signing-requests/"+req.ID+"/send", nil))
	if got := in.request(t, req.ID); got.State != api.RequestDraft {
		t.Fatalf("the refused send: request %s, want draft", got.State)
	}
	// Neither refusal spent any of alice's 2: a request for 2 goes
	// through, and then the limit is reached (so the 201 is not vacuous).
	if resp := asAlice(t, in, "POST", "/documents/"+d3.ID+"/signing-requests", twoSigners); resp.StatusCode != http.StatusCreated {
		t.Fatalf("a request for 2 after the refusals (2 mails of 2): %d", resp.StatusCode)
	}
	mustLimited(t, "one more request (4 mails of 2)", asAlice(t, in, "POST", "/documents/"+d4.ID+"/signing-requests", twoSigners))

	r.Stop()
	tooMany("3 recipients with Redis down", asAlice(t, in, "POST", "/documents/"+d5.ID+"/signing-requests", three))
	if n := requests(d5.ID); n != 0 {
		t.Fatalf("the refused request left %d request rows", n)
	}
}

// failWrites makes every insert into table whose column col equals val
// fail, as a database fault after the mail quota was charged would; the
// returned function lifts it.
func failWrites(t *testing.T, e *env, table, col, val string) func() {
	t.Helper()
	fn := "fail_" + strings.ReplaceAll(table, ".", "_")
	if _, err := e.pool.Exec(t.Context(), `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.`+col+` = '`+val+`' THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER injected_fault BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION `+fn+`()`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := e.pool.Exec(t.Context(), `DROP TRIGGER injected_fault ON `+table+`; DROP FUNCTION `+fn+`()`); err != nil {
			t.Fatal(err)
		}
	}
}

// A send or resend whose transaction fails mails nobody, so it gives the
// quota it charged back: with a limit of 2, two failed sends of a draft
// for 2 (4 mails were they kept) leave the whole quota to the send that
// works; two failed resends for 1 leave room for two resends that work.
func TestAFailedSendOrResendDoesNotSpendTheMailQuota(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: &testenv.SyncBuffer{}}, mailPerMinute: 2})
	failed := func(what string, resp *http.Response) {
		t.Helper()
		resp.Body.Close()
		if resp.StatusCode < 500 {
			t.Fatalf("%s: %d, want the injected fault's 5xx (a 429 means an earlier failure kept its charge)", what, resp.StatusCode)
		}
	}

	t.Run("send", func(t *testing.T) {
		d := e.createDocument(t, "Draft", "draft")
		draft := twoSigners
		draft.Draft = true
		var req api.SigningRequest
		if code := testenv.Do(t, "POST", in.url+"/documents/"+d.ID+"/signing-requests", draft, &req, testPrincipal, principalJSON(alice)).StatusCode; code != http.StatusCreated {
			t.Fatalf("draft: %d", code)
		}
		lift := failWrites(t, e, "signing.due", "kind", "doc_status")
		failed("a send that fails", asAlice(t, in, "POST", "/signing-requests/"+req.ID+"/send", nil))
		failed("a second send that fails", asAlice(t, in, "POST", "/signing-requests/"+req.ID+"/send", nil))
		lift()
		if resp := asAlice(t, in, "POST", "/signing-requests/"+req.ID+"/send", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("the send that works (2 mails of 2): %d", resp.StatusCode)
		}
	})

	t.Run("resend", func(t *testing.T) {
		// bob's own count: alice's is spent by the send above.
		asBob := func(method, path string, body any, out any) *http.Response {
			return testenv.Do(t, method, in.url+path, body, out, testPrincipal, principalJSON(bob))
		}
		d := e.createDocument(t, "Resent", "resent")
		var req api.SigningRequest
		if resp := asBob("POST", "/documents/"+d.ID+"/signing-requests",
			api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "c@example.com", Role: api.RoleSigner}}}, &req); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create (1 mail of 2): %d", resp.StatusCode)
		}
		lift := failWrites(t, e, "audit.entries", "type", "signing_request.resent")
		failed("a resend that fails", asBob("POST", "/signing-requests/"+req.ID+"/resend", nil, nil))
		failed("a second resend that fails", asBob("POST", "/signing-requests/"+req.ID+"/resend", nil, nil))
		lift()
		if resp := asBob("POST", "/signing-requests/"+req.ID+"/resend", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("the resend that works (2 mails of 2): %d", resp.StatusCode)
		}
		mustLimited(t, "one more resend (3 mails of 2)", asBob("POST", "/signing-requests/"+req.ID+"/resend", nil, nil))
	})
}
