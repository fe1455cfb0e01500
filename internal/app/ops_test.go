package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bench"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// startSystem runs c until the test ends.
func startSystem(t *testing.T, c *Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(*System) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// GET /ops through the gateway of a running system (every module, open
// mode as in dev): after a write, the CDC slot, the bus position, the
// indexer's applied LSN and lag, the realtime counts and every service's
// readiness and request figures are there, read from the services' own
// health and metrics.
func TestOpsThroughTheGatewayOfARunningSystem(t *testing.T) {
	c := testConfig(t)
	startSystem(t, c)
	gw := "http://" + c.Gateway.Addr
	var doc api.Document
	if resp := testenv.Do(t, http.MethodPost, gw+"/documents",
		map[string]string{"title": "Ops", "content": "x", "created_by": "a@example.com"}, &doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	var o api.Ops
	// Generous: under the race detector on a loaded machine the engine
	// confirms and the indexer applies at their own pace.
	// Every service ready is waited for too: a target is started before
	// its bus subscriptions are made (the webhooks fan-out reads its cursor
	// first), and its readiness says so until they are. A service read
	// with an error is waited out as well: /ops bounds each read to 2 s,
	// which a race-instrumented /metrics on a loaded CI machine has
	// exceeded once (signature, 2026-12-01).
	allReady := func() bool {
		for _, s := range o.Services {
			if s.Ready != "ok" && s.Ready != "degraded" || s.Error != "" {
				return false
			}
		}
		return true
	}
	testenv.WaitForWithin(t, 5*time.Minute, "the write through CDC, the bus and the indexer, and every service ready", func() bool {
		o = api.Ops{}
		resp := testenv.Do(t, http.MethodGet, gw+"/ops", nil, &o)
		// The view is not one snapshot: the process's metrics are gathered
		// before the realtime /stats is read, so the bus position can show
		// an event the engine's counter did not yet count in that call.
		return resp.StatusCode == http.StatusOK && o.CDC.ConfirmedLSN != nil && o.CDC.EventsPublished != nil && o.Bus.Position != nil && o.Bus.LSN != nil &&
			o.Indexer.AppliedLSN != nil && o.Indexer.LagBytes != nil && allReady()
	})
	if o.CDC.Slot == "" || o.CDC.Active == nil || !*o.CDC.Active || o.CDC.SlotLagBytes == nil || o.CDC.EventsPublished == nil || *o.CDC.EventsPublished < 1 {
		t.Fatalf("cdc %+v", o.CDC)
	}
	if _, ok := o.Bus.Consumers["indexer"]; !ok || o.Indexer.Pending == nil {
		t.Fatalf("bus consumers %+v, indexer %+v", o.Bus.Consumers, o.Indexer)
	}
	if o.Realtime.Connections == nil {
		t.Fatalf("realtime %+v", o.Realtime)
	}
	seen := map[string]api.OpsService{}
	for _, s := range o.Services {
		seen[s.Name] = s
	}
	for _, m := range Modules() {
		s, ok := seen[m.Name]
		if !ok {
			t.Fatalf("module %s missing from %+v", m.Name, o.Services)
		}
		if s.Ready != "ok" && s.Ready != "degraded" || s.Error != "" {
			t.Fatalf("service %+v", s)
		}
	}
	if d := seen["document"]; d.Requests == nil || *d.Requests < 1 || d.ConnectionsOpen == nil {
		t.Fatalf("document service figures %+v", d)
	}
	// A second call has rates.
	o = api.Ops{}
	testenv.Do(t, http.MethodGet, gw+"/ops", nil, &o)
	for _, s := range o.Services {
		if s.Name == "gateway" && (s.RequestsPerSecond == nil || s.Requests == nil || *s.Requests < 2) {
			t.Fatalf("gateway figures on the second call %+v", s)
		}
	}
}

// In required mode the view is for administrators: 401 without a token,
// 403 for a user, 200 for an admin.
func TestOpsIsForAdminsInRequiredMode(t *testing.T) {
	c := testConfig(t)
	c.Auth.Mode = "required" // testConfig's --realtime-jwt-secret verifies
	c.Targets = "document,gateway"
	startSystem(t, c)
	gw := "http://" + c.Gateway.Addr + "/ops"
	if resp := testenv.Do(t, http.MethodGet, gw, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	user, admin := mintToken(t, c, "bob", false), mintToken(t, c, "root", true)
	if resp := testenv.Do(t, http.MethodGet, gw, nil, nil, "Authorization", "Bearer "+user); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a user: %d", resp.StatusCode)
	}
	var o api.Ops
	if resp := testenv.Do(t, http.MethodGet, gw, nil, &o, "Authorization", "Bearer "+admin); resp.StatusCode != http.StatusOK || len(o.Services) == 0 {
		t.Fatalf("an admin: %d %+v", resp.StatusCode, o)
	}
	// Modules not running here are listed, unreachable, and the rest is
	// still answered.
	for _, s := range o.Services {
		if s.Name == "cdc" && (s.Ready != "unreachable" || s.Error == "") {
			t.Fatalf("cdc not running: %+v", s)
		}
		if s.Name == "document" && s.Ready != "ok" && s.Ready != "degraded" {
			t.Fatalf("document: %+v", s)
		}
	}
}

// mintToken issues a token with c's secret, as `docstream token mint` does.
func mintToken(t *testing.T, c *Config, sub string, admin bool) string {
	t.Helper()
	a, err := auth.New(context.Background(), c.Auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.IssueToken(auth.TokenRequest{Subject: sub, Admin: admin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A create run through the gateway of a running system reports the change
// stream's backlog from the real GET /ops: sampled while it measured, and
// the indexer seen to catch up after it (issue 16: "a sustained create run
// reports CDC and indexer lag at its end").
func TestABenchCreateRunReportsTheBacklogOfARunningSystem(t *testing.T) {
	c := testConfig(t)
	startSystem(t, c)
	gw := "http://" + c.Gateway.Addr
	rep, err := bench.Run(context.Background(), bench.Options{Scenario: "create", DocumentURL: gw, SearchURL: gw, SignatureURL: gw,
		RealtimeURL: gw, OpsURL: gw, Users: 4, Duration: 2 * time.Second, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Lag
	if rep.OK == 0 || l == nil || l.Error != "" || l.Samples < 1 {
		t.Fatalf("%d created, lag %+v", rep.OK, l)
	}
	var out strings.Builder
	l.Text(&out)
	t.Log(out.String())
	if l.CaughtUpSeconds == nil {
		t.Fatalf("the indexer was not seen to catch up after %d creates: %+v", rep.OK, l)
	}
}
