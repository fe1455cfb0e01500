package webhooks_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

// An endpoint filtered to one document receives that document's events
// only; a replay by time range queues again the events of that range it
// subscribes to (its filter applied), with their webhook-ids; an endpoint
// disabled by PATCH receives nothing more.
func TestTheDocumentFilterTimeReplayAndDisabling(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	all := newReceiver(t, nil)
	allEp := tg.createEndpoint(t, all.URL, []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated})
	a := e.insert(t, "a")
	b := e.insert(t, "b")
	testenv.WaitFor(t, "both creations", func() bool { return len(all.accepted()) == 2 })
	one := newReceiver(t, nil)
	var created api.CreatedWebhook
	if resp := testenv.Do(t, "POST", tg.api+"/webhooks", api.CreateWebhookRequest{URL: one.URL,
		Events: []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated}, DocumentID: a}, &created); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	since := time.Now() // the creations were committed before it
	e.Exec(t, `UPDATE documents.documents SET title = 'a2', version = version + 1 WHERE id = $1`, a)
	e.Exec(t, `UPDATE documents.documents SET title = 'b2', version = version + 1 WHERE id = $1`, b)
	testenv.WaitFor(t, "both updates at the unfiltered endpoint", func() bool { return len(all.accepted()) == 4 })
	testenv.WaitFor(t, "a's update at the filtered endpoint", func() bool { return len(one.accepted()) >= 1 })
	if got := docIDs(one.accepted()); !slices.Equal(got, []string{a}) {
		t.Fatalf("the filtered endpoint got %v, want only %s's update", got, a)
	}
	// Replay since just before the updates: the filtered endpoint gets
	// a's update again (not b's, not the creations before the range).
	until := time.Now().Add(time.Minute)
	var q api.Queued
	if resp := testenv.Do(t, "POST", tg.api+"/webhooks/"+created.ID+"/replay", api.ReplayRequest{Since: &since, Until: &until}, &q); resp.StatusCode != http.StatusAccepted || q.Queued != 1 {
		t.Fatalf("replay by time: %d %+v", resp.StatusCode, q)
	}
	testenv.WaitFor(t, "the replayed update", func() bool { return len(one.accepted()) == 2 })
	if h := one.accepted(); h[1].ID != h[0].ID || h[1].Payload.Type != api.WebhookDocumentUpdated {
		t.Fatalf("replayed %s %s, want %s again", h[1].ID, h[1].Payload.Type, h[0].ID)
	}
	// Disabled by its owner: nothing more, the reason says so.
	off := false
	var w api.Webhook
	testenv.Do(t, "PATCH", tg.api+"/webhooks/"+allEp.ID, api.UpdateWebhookRequest{Enabled: &off}, &w)
	if w.Enabled || w.DisabledReason == "" {
		t.Fatalf("disabled endpoint %+v", w)
	}
	e.insert(t, "c")
	testenv.WaitFor(t, "c fanned out (the filtered endpoint's queue is the witness)", func() bool {
		var n int
		_ = e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM webhooks.events WHERE type = 'document.created'`).Scan(&n)
		return n == 3
	})
	// Give a worker the chance it would need (several poll periods).
	time.Sleep(500 * time.Millisecond)
	if n := len(all.all()); n != 4 {
		t.Fatalf("the disabled endpoint got %d requests, want the 4 from before", n)
	}
}
