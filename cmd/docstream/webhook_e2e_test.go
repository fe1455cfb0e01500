package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client/webhook"
	"github.com/docstream/docstream/internal/testenv"
)

// hookReceiver records every delivery; while hold is set, a request
// blocks until release is closed (a delivery in flight when the process
// dies).
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	headers  []http.Header
	bodies   [][]byte
	hold     bool
	heldID   string // webhook-id of the first request held
	inFlight chan struct{}
	release  chan struct{}
	once     sync.Once
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{inFlight: make(chan struct{}), release: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		hold := rc.hold
		rc.mu.Unlock()
		if hold {
			rc.once.Do(func() {
				rc.mu.Lock()
				rc.heldID = r.Header.Get("webhook-id")
				rc.mu.Unlock()
				close(rc.inFlight)
			})
			<-rc.release
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.mu.Lock()
		rc.headers, rc.bodies = append(rc.headers, r.Header.Clone()), append(rc.bodies, body)
		rc.mu.Unlock()
	}))
	t.Cleanup(func() {
		rc.mu.Lock()
		if rc.hold {
			rc.hold = false
			close(rc.release)
		}
		rc.mu.Unlock()
		rc.Close()
	})
	return rc
}

// accepted returns the deliveries answered 200 so far.
func (rc *hookReceiver) accepted() ([]http.Header, [][]byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.headers), slices.Clone(rc.bodies)
}

// TestWebhooksThroughDevAreSignedAndSurviveASIGKILL runs `docstream dev`:
// an endpoint created through the gateway's REST API receives a
// document's creation and its change, signed so that the client's
// webhook.Verify accepts them. Then the process is killed (SIGKILL) while
// a delivery is in flight and five more changes are queued, and started
// again on the same data: every event arrives at least once (the one in
// flight with the webhook-id it had), in commit order, none lost.
func TestWebhooksThroughDevAreSignedAndSurviveASIGKILL(t *testing.T) {
	// A short lease: the killed process's hold on the queue ends soon
	// after the restart.
	d := startDev(t, "--webhooks-timeout", "5s", "--webhooks-lease", "8s")
	ctx := context.Background()
	c := newClient(t, d.gateway)
	rc := newHookReceiver(t)
	wh, err := c.CreateWebhook(ctx, api.CreateWebhookRequest{URL: rc.URL + "/hook",
		Events: []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated}, Description: "e2e"})
	if err != nil {
		t.Fatalf("POST /webhooks through the gateway: %v", err)
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Webhooked", Content: "hello", CreatedBy: "john.doe@company.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "Webhooked, changed"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "two signed deliveries", func() bool { h, _ := rc.accepted(); return len(h) >= 2 })
	hs, bodies := rc.accepted()
	var types []string
	for i := range hs {
		if err := webhook.Verify(wh.Secret, hs[i], bodies[i]); err != nil {
			t.Fatalf("delivery %d: webhook.Verify: %v", i, err)
		}
		var p api.WebhookPayload
		if err := json.Unmarshal(bodies[i], &p); err != nil {
			t.Fatal(err)
		}
		if p.Data.Document == nil || p.Data.Document.ID != doc.ID || p.LSN == 0 {
			t.Fatalf("delivery %d: payload %s", i, bodies[i])
		}
		types = append(types, p.Type)
	}
	if !slices.Equal(types[:2], []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated}) {
		t.Fatalf("types %v", types)
	}
	if webhook.Verify("whsec_"+wh.Secret[len("whsec_")+1:]+"A", hs[0], bodies[0]) == nil {
		t.Fatal("a delivery verified with another secret")
	}

	// The kill: the next delivery hangs at the receiver; five changes
	// are committed (queued behind it); then SIGKILL.
	rc.mu.Lock()
	rc.hold = true
	rc.mu.Unlock()
	var want []string
	for i := range 5 {
		d, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: fmt.Sprintf("queued %d", i), Content: "x", CreatedBy: "john.doe@company.com"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d.ID)
	}
	<-rc.inFlight
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	rc.mu.Lock()
	rc.hold = false
	close(rc.release)
	rc.mu.Unlock()
	before := len(hs)
	d.restart(t)
	testenv.WaitFor(t, "the five queued events after the restart", func() bool { h, _ := rc.accepted(); return len(h) >= before+5 })
	hs, bodies = rc.accepted()
	var got []string
	seen := map[string]string{}
	for i := before; i < len(hs); i++ {
		if err := webhook.Verify(wh.Secret, hs[i], bodies[i]); err != nil {
			t.Fatalf("delivery %d after the restart: %v", i, err)
		}
		var p api.WebhookPayload
		_ = json.Unmarshal(bodies[i], &p)
		if p.Type != api.WebhookDocumentCreated {
			continue
		}
		if id, ok := seen[p.Data.Document.ID]; ok && id != hs[i].Get("webhook-id") {
			t.Errorf("document %s delivered under two ids: %s and %s", p.Data.Document.ID, id, hs[i].Get("webhook-id"))
		}
		seen[p.Data.Document.ID] = hs[i].Get("webhook-id")
		got = append(got, p.Data.Document.ID)
	}
	got = slices.Compact(got) // a duplicate after the crash arrives right after its first copy, if at all
	if first := hs[before].Get("webhook-id"); first != rc.heldID {
		t.Errorf("the delivery in flight at the kill came back as %s, was %s", first, rc.heldID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the SIGKILL the receiver got %v\nwant (in commit order, none lost) %v", got, want)
	}
}

// TestWebhookDeliveriesShowDurationsAndEventsTailShowsNoSecret runs
// `docstream dev` with a receiver that takes 200 ms to answer. The
// deliveries API (through the gateway) shows each attempt's duration_ms:
// present, and between the receiver's delay and the delivery timeout. Then
// `docstream events tail` over every topic from the beginning prints the
// document's events and neither the endpoint's secret nor the one it was
// rotated to, with or without the whsec_ prefix.
func TestWebhookDeliveriesShowDurationsAndEventsTailShowsNoSecret(t *testing.T) {
	const delay = 200 * time.Millisecond
	d := startDev(t, "--webhooks-timeout", "10s")
	ctx := context.Background()
	c := newClient(t, d.gateway)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(rc.Close)
	wh, err := c.CreateWebhook(ctx, api.CreateWebhookRequest{URL: rc.URL + "/hook", Events: []string{api.WebhookDocumentCreated}})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := c.RotateWebhookSecret(ctx, wh.ID, "1h")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Timed", Content: "hello", CreatedBy: "john.doe@company.com"})
	if err != nil {
		t.Fatal(err)
	}

	var raw struct {
		Deliveries []struct {
			Status  string           `json:"status"`
			History []map[string]any `json:"history"`
		} `json:"deliveries"`
	}
	testenv.WaitFor(t, "the delivery recorded", func() bool {
		resp, err := http.Get(d.gateway + "/webhooks/" + wh.ID + "/deliveries")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw.Deliveries = nil
		return json.NewDecoder(resp.Body).Decode(&raw) == nil && len(raw.Deliveries) == 1 && raw.Deliveries[0].Status == api.DeliveryDelivered
	})
	h := raw.Deliveries[0].History
	if len(h) != 1 {
		t.Fatalf("history %v, want one attempt", h)
	}
	ms, ok := h[0]["duration_ms"].(float64)
	if !ok || time.Duration(ms)*time.Millisecond < delay || time.Duration(ms)*time.Millisecond > 10*time.Second {
		t.Fatalf("attempt %v: want duration_ms between the receiver's %v and the 10s timeout", h[0], delay)
	}
	typed, err := c.WebhookDeliveries(ctx, wh.ID, "", 10)
	if err != nil || len(typed) != 1 || len(typed[0].History) != 1 || typed[0].History[0].DurationMS != int(ms) {
		t.Fatalf("the client's deliveries %+v (%v) disagree with the API's duration_ms %v", typed, err, ms)
	}

	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out testenv.SyncBuffer
	if err := run(tctx, []string{"events", "tail", "documents,signatures,extractions,signing_requests,signing_recipients,watermarks",
		"--from-beginning", "--data-dir", d.dataDir}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("events tail: %v\n%s", err, out.String())
	}
	printed := out.String()
	if !strings.Contains(printed, doc.ID) {
		t.Fatalf("events tail did not print the document's events:\n%s", printed)
	}
	for _, s := range []string{wh.Secret, rot.Secret, strings.TrimPrefix(wh.Secret, "whsec_"), strings.TrimPrefix(rot.Secret, "whsec_")} {
		if s == "" || strings.Contains(printed, s) {
			t.Errorf("events tail printed a webhook secret (%.12s…)", s)
		}
	}
}
