package apikey

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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

// /apikeys under overload sheds with 503 and Retry-After at once, not a
// timeout: with every write slot held (a create blocked on a locked
// table), further creates and revokes are answered 503 with Retry-After
// while the held one waits, and it completes (201) once the lock is gone.
func TestAPIKeysShedWith503AndRetryAfterWhenFull(t *testing.T) {
	ctx := context.Background()
	pool := open(t, testenv.Database(t))
	log := logging.Discard()
	cfg := DefaultConfig()
	acfg := auth.DefaultConfig()
	acfg.Mode, acfg.JWTSecret = string(auth.ModeRequired), testSecret
	authn, err := auth.New(ctx, acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = authn
	cfg.Admission = httpx.NewAdmission("apikey-overload", httpx.AdmissionConfig{
		Read:       httpx.ClassLimit{Limit: 1, MaxWait: 50 * time.Millisecond},
		Write:      httpx.ClassLimit{Limit: 1, MaxWait: 50 * time.Millisecond},
		RetryAfter: time.Second,
	})
	store := NewStore(pool)
	srv := httptest.NewServer(NewServer(NewService(store, NewVerifier(store, cfg, log), cfg, log), cfg, log))
	t.Cleanup(srv.Close)
	root, _, err := auth.Mint(acfg, auth.TokenRequest{Subject: "root", Admin: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(root)

	// Hold the write slot: a create waits on the locked table.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE auth.api_keys IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	heldCode := 0
	held.Go(func() {
		req, _ := http.NewRequest("POST", srv.URL+"/apikeys", jsonBody(api.CreateAPIKeyRequest{Name: "held", Scopes: []string{"read"}}))
		req.Header.Set(admin[0], admin[1])
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			heldCode = resp.StatusCode
			resp.Body.Close()
		}
	})
	testenv.WaitFor(t, "the held create waiting on the lock", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%api_keys%'`).Scan(&n)
		return n > 0
	})
	for _, r := range []struct{ method, path string }{{"POST", "/apikeys"}, {"DELETE", "/apikeys/0123456789abcdef"}, {"POST", "/apikeys"}} {
		var body any
		if r.method == "POST" {
			body = api.CreateAPIKeyRequest{Name: "shed", Scopes: []string{"read"}}
		}
		resp := testenv.Do(t, r.method, srv.URL+r.path, body, nil, admin...)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s with every write slot held: %d Retry-After %q, want 503 with Retry-After", r.method, r.path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	held.Wait()
	if heldCode != http.StatusCreated {
		t.Fatalf("the held create: %d, want 201 once the lock is gone", heldCode)
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
