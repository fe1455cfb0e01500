package webhooks_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/testenv"
)

func requiredAuth(t *testing.T) (*auth.Authenticator, map[string]string) {
	t.Helper()
	acfg := auth.DefaultConfig()
	acfg.Mode = string(auth.ModeRequired)
	acfg.JWTSecret = strings.Repeat("0123456789", 4)
	authn, err := auth.New(context.Background(), acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{}
	for _, u := range []struct {
		sub   string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		raw, _, err := auth.Mint(acfg, auth.TokenRequest{Subject: u.sub, Email: u.sub + "@company.com", EmailVerified: true, Admin: u.admin, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok[u.sub] = "Bearer " + raw
	}
	return authn, tok
}

// In required mode a user's endpoint receives only the events of
// documents the user may view at delivery time; an admin's receives
// every one. Users see and manage their own endpoints only (another's is
// not found), and anonymous callers are refused.
func TestANonAdminEndpointReceivesOnlyWhatItsOwnerMayView(t *testing.T) {
	e := newEnv(t, nil)
	authn, tok := requiredAuth(t)
	tg := e.start(t, authn)
	alice, root := newReceiver(t, nil), newReceiver(t, nil)
	aep := tg.createEndpoint(t, alice.URL, []string{api.WebhookDocumentCreated, api.WebhookDocumentDeleted}, "Authorization", tok["alice"])
	tg.createEndpoint(t, root.URL, []string{api.WebhookDocumentCreated, api.WebhookDocumentDeleted}, "Authorization", tok["root"])

	hers := e.insert(t, "alice's", "user:alice")
	bobs := e.insert(t, "bob's", "user:bob")
	shared := e.insert(t, "shared by email", "user:bob", "email:alice@company.com")
	e.Exec(t, `DELETE FROM documents.documents WHERE id = $1`, bobs)
	e.Exec(t, `DELETE FROM documents.documents WHERE id = $1`, hers)
	last := e.insert(t, "last", "user:alice")

	testenv.WaitFor(t, "the admin's 6 events", func() bool { return len(root.accepted()) == 6 })
	testenv.WaitFor(t, "alice's last event", func() bool { return slices.Contains(docIDs(alice.accepted()), last) })
	if got, want := docIDs(alice.accepted()), []string{hers, shared, hers, last}; !slices.Equal(got, want) {
		t.Fatalf("alice's endpoint got %v, want %v (bob's document never)", got, want)
	}
	var ds api.Deliveries
	testenv.Do(t, "GET", tg.api+"/webhooks/"+aep.ID+"/deliveries?status=skipped", nil, &ds, "Authorization", tok["alice"])
	if len(ds.Deliveries) != 2 {
		t.Errorf("skipped deliveries %+v: want bob's create and delete", ds.Deliveries)
	}

	for _, c := range []struct {
		who, method, path string
		want              int
	}{
		{"bob", "GET", "/webhooks/" + aep.ID, http.StatusNotFound},
		{"bob", "DELETE", "/webhooks/" + aep.ID, http.StatusNotFound},
		{"bob", "GET", "/webhooks/" + aep.ID + "/deliveries", http.StatusNotFound},
		{"root", "GET", "/webhooks/" + aep.ID, http.StatusOK},
		{"", "GET", "/webhooks", http.StatusUnauthorized},
	} {
		var h []string
		if c.who != "" {
			h = []string{"Authorization", tok[c.who]}
		}
		if resp := testenv.Do(t, c.method, tg.api+c.path, nil, nil, h...); resp.StatusCode != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.who, c.method, c.path, resp.StatusCode, c.want)
		}
	}
	var list api.Webhooks
	testenv.Do(t, "GET", tg.api+"/webhooks", nil, &list, "Authorization", tok["bob"])
	if len(list.Webhooks) != 0 {
		t.Errorf("bob lists %d endpoints, want none", len(list.Webhooks))
	}
	testenv.Do(t, "GET", tg.api+"/webhooks", nil, &list, "Authorization", tok["root"])
	if len(list.Webhooks) != 2 {
		t.Errorf("the admin lists %d endpoints, want 2", len(list.Webhooks))
	}
}

// Bad input is 400 (malformed), 422 naming the field, 404 (unknown id),
// never 500.
func TestBadRequestsAreRefusedWithTheRightStatus(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	ep := tg.createEndpoint(t, "http://127.0.0.1:9/hook", []string{api.WebhookDocumentCreated})
	for _, c := range []struct {
		name, method, path string
		body               any
		want               int
		field              string
	}{
		{"malformed JSON", "POST", "/webhooks", `{"url":`, 400, ""},
		{"unknown field", "POST", "/webhooks", `{"url":"http://a.example/","events":["document.created"],"x":1}`, 422, ""},
		{"no events", "POST", "/webhooks", api.CreateWebhookRequest{URL: "http://a.example/"}, 422, "events"},
		{"unknown event", "POST", "/webhooks", api.CreateWebhookRequest{URL: "http://a.example/", Events: []string{"document.viewed"}}, 422, "events"},
		{"not a URL", "POST", "/webhooks", api.CreateWebhookRequest{URL: "ftp://a.example/", Events: []string{"document.created"}}, 422, "url"},
		{"decimal IP", "POST", "/webhooks", api.CreateWebhookRequest{URL: "http://2130706433/", Events: []string{"document.created"}}, 422, "url"},
		{"bad document id", "POST", "/webhooks", map[string]any{"url": "http://a.example/", "events": []string{"document.created"}, "document_id": "x"}, 422, "document_id"},
		{"unknown id", "GET", "/webhooks/0194c3a0-0000-7000-8000-000000000001", nil, 404, ""},
		{"malformed id", "GET", "/webhooks/nope", nil, 400, ""},
		{"bad overlap", "POST", "/webhooks/" + ep.ID + "/rotate", `{"overlap":"forever"}`, 422, "overlap"},
		{"empty replay", "POST", "/webhooks/" + ep.ID + "/replay", `{}`, 422, "from_lsn"},
		{"bad status filter", "GET", "/webhooks/" + ep.ID + "/deliveries?status=lost", nil, 422, "status"},
		{"unknown delivery", "POST", "/webhooks/" + ep.ID + "/deliveries/999999/redeliver", nil, 404, ""},
		{"too large", "POST", "/webhooks", `{"url":"` + strings.Repeat("a", 20000) + `"}`, 413, ""},
	} {
		resp := testenv.Do(t, c.method, tg.api+c.path, c.body, nil)
		body := readBody(resp)
		if resp.StatusCode != c.want || c.field != "" && !strings.Contains(body, `"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, resp.StatusCode, body, c.want, c.field)
		}
	}
}
