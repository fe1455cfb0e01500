package webhooks_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webhooks"
)

// A target that dies in the middle of a delivery (its database gone, its
// work stopped: no result recorded, its lease on the queue not given
// back) loses nothing: once the lease runs out another instance sends the
// event again with the same webhook-id, then the rest in order.
func TestATargetKilledMidDeliveryLosesNothing(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.Timeout, c.Lease = 5*time.Second, 6*time.Second })
	a := e.start(t, nil)
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, func(n int, _ hit) int {
		if n == 0 {
			once.Do(func() { close(inFlight) })
			<-release // the first request hangs until the target is gone
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	t.Cleanup(func() { closeOnce(release) })
	ep := a.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var want []string
	for i := range 5 {
		want = append(want, e.insert(t, fmt.Sprintf("doc %d", i)))
	}
	<-inFlight
	// Kill: the pool closes first, so the dying target can record nothing
	// and cannot release its lease; then its work stops.
	a.pool.Close()
	a.stop()
	closeOnce(release)
	var leased bool
	_ = e.Pool.QueryRow(context.Background(), `SELECT lease_until > now() FROM webhooks.endpoints WHERE id = $1`, ep.ID).Scan(&leased)
	if !leased {
		t.Fatal("the killed target's lease is not held: the test does not simulate a crash")
	}
	e.start(t, nil)
	testenv.WaitFor(t, "all 5 events through the second target", func() bool { return len(rc.accepted()) >= 5 })
	hs := rc.all()
	if hs[0].ID != rc.accepted()[0].ID {
		t.Errorf("the event in flight at the crash came back as %q, was %q", rc.accepted()[0].ID, hs[0].ID)
	}
	if got := docIDs(rc.accepted()); !slices.Equal(got, want) {
		t.Fatalf("accepted %v\nwant     %v", got, want)
	}
}

// Two targets over one database and bus share the work and deliver each
// event once per endpoint, in commit order.
func TestTwoInstancesDeliverEachEventOncePerEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	a := e.start(t, nil)
	e.start(t, nil)
	var rcs []*receiver
	for range 3 {
		rc := newReceiver(t, nil)
		a.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
		rcs = append(rcs, rc)
	}
	var want []string
	for i := range 30 {
		want = append(want, e.insert(t, fmt.Sprintf("doc %d", i)))
	}
	for i, rc := range rcs {
		testenv.WaitFor(t, fmt.Sprintf("30 events at endpoint %d", i), func() bool { return len(rc.all()) >= 30 })
	}
	// Anything late would have been fanned out by now; compare exactly.
	testenv.WaitFor(t, "every queue empty", func() bool {
		var n int
		_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.deliveries WHERE status = 'pending'`).Scan(&n)
		return n == 0
	})
	for i, rc := range rcs {
		hs := rc.all()
		if got := docIDs(hs); !slices.Equal(got, want) {
			t.Errorf("endpoint %d got %v\nwant %v", i, got, want)
		}
		seen := map[string]bool{}
		for _, h := range hs {
			if seen[h.ID] {
				t.Errorf("endpoint %d got %s twice", i, h.ID)
			}
			seen[h.ID] = true
		}
	}
	var events int
	_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.events`).Scan(&events)
	if events != 30 {
		t.Errorf("%d events stored, want 30 (each fanned out once)", events)
	}
}

// An endpoint that does not answer (it would for 30 s: the timeout is the
// default-like 30 s, and the test never waits for it) delays no other
// endpoint: the fast one gets every event while the slow one's first
// request is still open.
func TestASlowEndpointDoesNotDelayAnother(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.Timeout, c.Lease = 30*time.Second, time.Minute })
	tg := e.start(t, nil)
	release := make(chan struct{})
	slow := newReceiver(t, func(int, hit) int { <-release; return http.StatusOK })
	fast := newReceiver(t, nil)
	// After the receivers' cleanups are registered, so it runs first and
	// the slow receiver's open request can end.
	t.Cleanup(func() { closeOnce(release) })
	tg.createEndpoint(t, slow.URL, []string{api.WebhookDocumentCreated})
	tg.createEndpoint(t, fast.URL, []string{api.WebhookDocumentCreated})
	var want []string
	for i := range 10 {
		want = append(want, e.insert(t, fmt.Sprintf("doc %d", i)))
	}
	testenv.WaitFor(t, "10 events at the fast endpoint", func() bool { return len(fast.accepted()) == 10 })
	if n := len(slow.all()); n != 0 {
		t.Fatalf("the slow endpoint answered %d requests: it was not slow during the test", n)
	}
	if got := docIDs(fast.accepted()); !slices.Equal(got, want) {
		t.Fatalf("fast got %v", got)
	}
}

// An endpoint whose attempts all fail for --webhooks-disable-after is
// disabled, with the reason kept; enabling it again clears the reason.
func TestAnEndpointFailingForThePeriodIsDisabledWithTheReason(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.DisableAfter = time.Second })
	tg := e.start(t, nil)
	rc := newReceiver(t, func(int, hit) int { return http.StatusBadGateway })
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	e.insert(t, "never accepted")
	var w api.Webhook
	testenv.WaitFor(t, "the endpoint disabled", func() bool {
		testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID, nil, &w)
		return !w.Enabled
	})
	if w.DisabledReason == "" || w.FailingSince == nil {
		t.Fatalf("disabled endpoint %+v: want the reason and since when", w)
	}
	enabled := true
	var re api.Webhook
	testenv.Do(t, "PATCH", tg.api+"/webhooks/"+ep.ID, api.UpdateWebhookRequest{Enabled: &enabled}, &re)
	if !re.Enabled || re.DisabledReason != "" {
		t.Fatalf("re-enabled endpoint %+v", re)
	}
}

// During a rotation's overlap both secrets sign; the old one stops once
// the overlap is over.
func TestARotatedSecretSignsBesideTheOldOneDuringTheOverlap(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var rot api.CreatedWebhook
	if resp := testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/rotate", api.RotateWebhookRequest{Overlap: "1h"}, &rot); resp.StatusCode != 200 {
		t.Fatalf("rotate: %d", resp.StatusCode)
	}
	if rot.Secret == ep.Secret || rot.PreviousSecretUntil == nil {
		t.Fatalf("rotation %+v", rot)
	}
	e.insert(t, "during the overlap")
	testenv.WaitFor(t, "a delivery", func() bool { return len(rc.accepted()) == 1 })
	h := rc.accepted()[0]
	if !verifyWithPython(t, ep.Secret, h) || !verifyWithPython(t, rot.Secret, h) {
		t.Fatalf("during the overlap both secrets must verify: %q", h.Signature)
	}
	testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/rotate", api.RotateWebhookRequest{Overlap: "0s"}, &rot)
	e.insert(t, "after the overlap")
	testenv.WaitFor(t, "a second delivery", func() bool { return len(rc.accepted()) == 2 })
	h = rc.accepted()[1]
	if !verifyWithPython(t, rot.Secret, h) || verifyWithPython(t, ep.Secret, h) {
		t.Fatalf("after a rotation without overlap only the newest secret signs: %q", h.Signature)
	}
}

// Replaying a commit LSN range queues its events again with their
// original webhook-ids, in order; a test event is delivered too.
func TestReplayAndTestEvents(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	for i := range 3 {
		e.insert(t, fmt.Sprintf("doc %d", i))
	}
	testenv.WaitFor(t, "3 deliveries", func() bool { return len(rc.accepted()) == 3 })
	first := rc.accepted()
	var q api.Queued
	resp := testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/replay", api.ReplayRequest{FromLSN: first[1].Payload.LSN, ToLSN: first[2].Payload.LSN}, &q)
	if resp.StatusCode != http.StatusAccepted || q.Queued != 2 {
		t.Fatalf("replay: %d %+v", resp.StatusCode, q)
	}
	testenv.WaitFor(t, "the replayed events", func() bool { return len(rc.accepted()) == 5 })
	again := rc.accepted()[3:]
	if again[0].ID != first[1].ID || again[1].ID != first[2].ID {
		t.Fatalf("replayed ids %q %q, want %q %q", again[0].ID, again[1].ID, first[1].ID, first[2].ID)
	}
	testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/test", nil, nil)
	testenv.WaitFor(t, "the test event", func() bool { return len(rc.accepted()) == 6 })
	if h := rc.accepted()[5]; h.Payload.Type != api.WebhookTest || !verifyWithPython(t, ep.Secret, h) {
		t.Fatalf("test event %+v", h.Payload)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
