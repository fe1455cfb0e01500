package cdc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/testenv"
)

func ready(t *testing.T, e *cdc.Engine) (int, api.Health) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/ready", nil))
	var h api.Health
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	return rec.Code, h
}

// TestAnEngineThatLostTheLockIsAReadyStandby kills the database session
// holding the active engine's lock: the other engine takes over, and the
// one that lost the lock, once it waits as a standby again, is ready and
// says "standby" (it used to keep its old error, unready for ever).
func TestAnEngineThatLostTheLockIsAReadyStandby(t *testing.T) {
	f := newFixture(t)
	a, _ := f.StartEngine(t, f.Config(), f.Bus)
	b, err := newEngine(f.Config(), f.Bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if st := b.WaitStarted(ctx, 10*time.Second); !st.Standby {
		t.Fatalf("second engine: %+v; want a standby", st)
	}
	if code, h := ready(t, a); code != 200 || h.Checks["role"].Status != "ok" {
		t.Fatalf("active engine: %d %+v; want 200 with role ok", code, h)
	}
	if code, h := ready(t, b); code != 200 || h.Checks["role"].Status != "off" || h.Checks["role"].Error == "" {
		t.Fatalf("standby engine: %d %+v; want 200 with role off (standby)", code, h)
	}

	f.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	testenv.WaitFor(t, "the lock to change hands", func() bool { return b.Status().Streaming })
	testenv.WaitFor(t, "the engine that lost the lock to wait as a standby", func() bool { return a.Status().Standby })
	if code, h := ready(t, a); code != 200 || h.Checks["engine"].Status != "ok" || h.Checks["role"].Status != "off" {
		t.Fatalf("engine that lost the lock, now a standby: %d %+v; want ready", code, h)
	}
	if code, h := ready(t, b); code != 200 || h.Checks["role"].Status != "ok" {
		t.Fatalf("engine that took over: %d %+v", code, h)
	}
}
