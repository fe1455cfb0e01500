package document

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/testenv"
)

// Stops the package's Redis mid-test: reads fall back to PostgreSQL,
// analytics are skipped, nothing returns 5xx, readiness says degraded; when
// Redis returns, caching and counting resume by themselves.
func TestRedisOutageDegradesAndRecovers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Resilient", "x")
	e.do(t, "GET", "/documents/"+d.ID, nil, nil)

	testenv.Redis().Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = testenv.Redis().Start(ctx)
		}
	})

	for i := 0; i < 3; i++ {
		var got Document
		if r := e.do(t, "GET", "/documents/"+d.ID, nil, &got); r.StatusCode != 200 || got.ID != d.ID {
			t.Fatalf("GET with Redis down: %d", r.StatusCode)
		}
	}
	var u Document
	if r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Changed while down"}, &u); r.StatusCode != 200 {
		t.Fatalf("PATCH with Redis down: %d", r.StatusCode)
	}
	if r := e.do(t, "POST", "/documents", map[string]any{"title": "new", "content": "c", "created_by": "a@b.co"}, nil); r.StatusCode != 201 {
		t.Fatalf("POST with Redis down: %d", r.StatusCode)
	}
	var st Stats
	if r := e.do(t, "GET", "/documents/"+d.ID+"/stats", nil, &st); r.StatusCode != 200 {
		t.Fatalf("stats with Redis down: %d", r.StatusCode)
	}
	var ready struct {
		Status string                     `json:"status"`
		Checks map[string]json.RawMessage `json:"checks"`
	}
	if r := e.do(t, "GET", "/health/ready", nil, &ready); r.StatusCode != 200 || ready.Status != "degraded" {
		t.Fatalf("ready with Redis down: %d %+v", r.StatusCode, ready)
	}

	if err := testenv.Redis().Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The stale entry cached before the outage must not be served: the
	// update happened while Redis was down. (AOF kept it across the restart.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got Document
		e.do(t, "GET", "/documents/"+d.ID, nil, &got)
		if n, _ := e.rdb.Exists(ctx, "document:"+d.ID).Result(); n == 1 && got.Title == "Changed while down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cache did not resume after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := e.do(t, "GET", "/health/ready", nil, &ready); r.StatusCode != 200 || ready.Status != "ok" {
		t.Fatalf("ready after recovery: %+v", ready)
	}
}
