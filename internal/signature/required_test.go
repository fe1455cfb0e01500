package signature

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/testenv"
)

// TestSignedInRecipientsActAndOthersAreRefused runs a signing request in
// --auth-mode=required. Sending it shares the document with each recipient
// by email (sign for the signer, view for the viewer and the cc), so it is
// in their document list; a recipient signed in with that verified email
// views and acts on the request without a token. A stranger reads every
// route of the request as missing (404); the owner's email unverified, a
// key without the sign scope, or a recipient without own trying to cancel
// are refused (403); a viewer cannot sign (409).
func TestSignedInRecipientsActAndOthersAreRefused(t *testing.T) {
	e, _ := newRequiredEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: io.Discard}, required: true})
	dan := auth.Principal{Kind: auth.KindUser, Subject: "dan", Email: "dan@company.com", EmailVerified: true}
	erin := auth.Principal{Kind: auth.KindUser, Subject: "erin", Email: "erin@company.com", EmailVerified: true}
	mallory := auth.Principal{Kind: auth.KindUser, Subject: "mallory", Email: "mallory@company.com", EmailVerified: true}
	d := e.docAs(t, alice, "Alice's lease")
	docURL := e.doc.http.URL + "/documents/" + d.ID

	if code, _ := as(t, bob, "GET", docURL, nil); code != http.StatusNotFound {
		t.Fatalf("bob reads the document before the request: %d, want 404", code)
	}
	if code, _ := as(t, bob, "POST", in.url+"/documents/"+d.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{{Email: "bob@company.com", Role: api.RoleSigner}}}); code != http.StatusNotFound {
		t.Fatalf("bob opens a request on alice's document: %d, want 404", code)
	}
	code, b := as(t, alice, "POST", in.url+"/documents/"+d.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{
			{Email: "Bob@Company.com", Role: api.RoleSigner},
			{Email: "dan@company.com", Role: api.RoleViewer},
			{Email: "erin@company.com", Role: api.RoleCC},
		}})
	if code != http.StatusCreated {
		t.Fatalf("alice creates the request: %d %s", code, b)
	}
	var req api.SigningRequest
	_ = json.Unmarshal(b, &req)
	rid := in.url + "/signing-requests/" + req.ID

	// The implicit shares: what the owner sees, and what each recipient
	// may now do with the document.
	var shares []api.Share
	testenv.Do(t, "GET", docURL+"/shares", nil, &shares, testPrincipal, principalJSON(alice))
	levels := map[string]string{}
	for _, s := range shares {
		levels[s.Grantee] = s.Level
	}
	want := map[string]string{"email:bob@company.com": "sign", "email:dan@company.com": "view", "email:erin@company.com": "view"}
	for g, l := range want {
		if levels[g] != l {
			t.Errorf("share of %s: %q, want %q (all: %v)", g, levels[g], l, levels)
		}
	}
	for _, p := range []auth.Principal{bob, dan, erin} {
		if code, _ := as(t, p, "GET", docURL, nil); code != http.StatusOK {
			t.Errorf("%s reads the document: %d, want 200", p.Email, code)
		}
		if code, b := as(t, p, "GET", e.doc.http.URL+"/documents", nil); code != http.StatusOK || !strings.Contains(string(b), d.ID) {
			t.Errorf("%s's document list: %d, lacks the document: %s", p.Email, code, b)
		}
	}
	if code, b := as(t, mallory, "GET", e.doc.http.URL+"/documents", nil); code != http.StatusOK || strings.Contains(string(b), d.ID) {
		t.Errorf("a stranger's document list: %d %s", code, b)
	}

	refused := []struct {
		name   string
		who    auth.Principal
		method string
		url    string
		body   any
		want   int
	}{
		{"a stranger reads the request", mallory, "GET", rid, nil, 404},
		{"a stranger opens it as a recipient", mallory, "GET", rid + "/invitation", nil, 404},
		{"a stranger signs it", mallory, "POST", rid + "/sign", api.InvitationAction{Consent: true}, 404},
		{"a stranger declines it", mallory, "POST", rid + "/decline", api.InvitationAction{}, 404},
		{"a stranger cancels it", mallory, "POST", rid + "/cancel", nil, 404},
		{"a stranger lists the document's requests", mallory, "GET", in.url + "/documents/" + d.ID + "/signing-requests", nil, 404},
		{"the signer's email, unverified, signs", auth.Principal{Kind: auth.KindUser, Subject: "m2", Email: "bob@company.com"}, "POST", rid + "/sign", api.InvitationAction{Consent: true}, 403},
		{"a key of the signer without the sign scope signs", auth.Principal{Kind: auth.KindAPIKey, Subject: "k", Email: "bob@company.com", EmailVerified: true, Scopes: []auth.Scope{auth.ScopeRead}}, "POST", rid + "/sign", api.InvitationAction{Consent: true}, 403},
		{"the signer cancels", bob, "POST", rid + "/cancel", nil, 403},
		{"the signer resends", bob, "POST", rid + "/resend", nil, 403},
		{"the viewer signs", dan, "POST", rid + "/sign", api.InvitationAction{Consent: true}, 409},
		{"the signer signs by the shortcut", bob, "POST", in.url + "/signatures", map[string]any{"document_id": d.ID, "signer_name": "Bob"}, 409},
	}
	for _, c := range refused {
		if code, b := as(t, c.who, c.method, c.url, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, b, c.want)
		}
	}

	// The recipients act, signed in.
	if code, b := as(t, bob, "GET", rid, nil); code != http.StatusOK {
		t.Fatalf("the signer reads the request: %d %s", code, b)
	}
	var inv api.Invitation
	code, b = as(t, bob, "GET", rid+"/invitation", nil)
	_ = json.Unmarshal(b, &inv)
	if code != http.StatusOK || !inv.CanAct || inv.Recipient.Email != "Bob@Company.com" {
		t.Fatalf("the signer opens the request: %d %s", code, b)
	}
	code, b = as(t, bob, "POST", rid+"/sign", api.InvitationAction{Consent: true, SignatureData: "Bob"})
	_ = json.Unmarshal(b, &inv)
	if code != http.StatusOK || inv.State != api.RecipientSigned {
		t.Fatalf("the signer signs: %d %s", code, b)
	}
	if code, _ := as(t, bob, "POST", rid+"/sign", api.InvitationAction{Consent: true}); code != http.StatusConflict {
		t.Fatalf("the signer signs twice: %d, want 409", code)
	}
	// The viewer must view before the request completes; the cc never blocks.
	if r := in.requestAs(t, alice, req.ID); r.State != api.RequestInProgress {
		t.Fatalf("before the viewer viewed: %s", r.State)
	}
	if code, b := as(t, dan, "GET", rid+"/invitation", nil); code != http.StatusOK {
		t.Fatalf("the viewer views: %d %s", code, b)
	}
	testenv.WaitFor(t, "the request to complete", func() bool { return in.requestAs(t, alice, req.ID).State == api.RequestCompleted })
	var sigs []api.Signature
	testenv.Do(t, "GET", in.url+"/documents/"+d.ID+"/signatures", nil, &sigs, testPrincipal, principalJSON(bob))
	if len(sigs) != 1 || !strings.EqualFold(sigs[0].SignerEmail, "bob@company.com") {
		t.Fatalf("signatures: %+v", sigs)
	}
}

func (in *wfInstance) requestAs(t *testing.T, p auth.Principal, rid string) api.SigningRequest {
	t.Helper()
	var r api.SigningRequest
	if code := in.do(t, "GET", "/signing-requests/"+rid, nil, &r, testPrincipal, principalJSON(p)); code != http.StatusOK {
		t.Fatalf("get request as %s: %d", p.Email, code)
	}
	return r
}
