package document

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// /documents/{id}/shares under overload sheds with 503 and Retry-After at
// once, not a timeout: with every write slot held (a share blocked on a
// locked table), further shares and revocations are answered 503 with
// Retry-After, a read of the shares still answers (its own class), and
// the held share completes once the lock is gone.
func TestSharesShedWith503AndRetryAfterWhenFull(t *testing.T) {
	ctx := context.Background()
	e := &accessEnv{env: newEnv(t)}
	e.svc.SetMode(auth.ModeRequired)
	cfg := noProxies()
	cfg.Admission = httpx.NewAdmission("shares-overload", httpx.AdmissionConfig{
		Read:       httpx.ClassLimit{Limit: 4, Queue: 4, MaxWait: time.Second},
		Write:      httpx.ClassLimit{Limit: 1, MaxWait: 50 * time.Millisecond},
		RetryAfter: time.Second,
	})
	srv := httptest.NewServer(withTestPrincipal(NewServer(e.svc, cfg, logging.Discard())))
	t.Cleanup(srv.Close)
	e.srv = srv
	d := e.createAs(t, alice, "shared under load")
	path := "/documents/" + d.ID + "/shares"

	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE documents.shares IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	heldCode := 0
	held.Go(func() {
		b, _ := json.Marshal(api.ShareRequest{Grantee: "user:bob", Level: "view"})
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(testPrincipal, principalHeader(alice))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			heldCode = resp.StatusCode
			resp.Body.Close()
		}
	})
	testenv.WaitFor(t, "the held share waiting on the lock", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%shares%'`).Scan(&n)
		return n > 0
	})
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"POST", path, api.ShareRequest{Grantee: "user:carol", Level: "edit"}},
		{"DELETE", path + "/user:bob", nil},
	} {
		code, b := e.as(t, alice, r.method, r.path, r.body)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s with every write slot held: %d %s, want 503", r.method, r.path, code, b)
		}
		resp := testenv.Do(t, r.method, srv.URL+r.path, r.body, nil, testPrincipal, principalHeader(alice))
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: %d Retry-After %q, want 503 with Retry-After", r.method, r.path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if code, b := e.as(t, alice, "GET", path, nil); code != http.StatusOK {
		t.Fatalf("reading the shares while writes are full: %d %s", code, b)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	held.Wait()
	if heldCode != http.StatusOK {
		t.Fatalf("the held share: %d, want 200 once the lock is gone", heldCode)
	}
}
