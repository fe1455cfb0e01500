package document

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// The document API through a real PgBouncer in transaction pooling mode
// with scram-sha-256, under concurrency: no prepared-statement or session
// errors, every write visible.
func TestDocumentAPIThroughPgBouncerTransactionPooling(t *testing.T) {
	ctx := context.Background()
	direct := testenv.Database(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	pg := testenv.Postgres()
	b, err := localstack.StartPgBouncerFor(ctx, testenv.TempDir(t), pg, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	e := newEnvWith(t, b.URL(), DefaultConfig())

	const workers, each = 40, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	ids := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d, code := e.tryCreate(fmt.Sprintf("pooled %d-%d", w, i))
				if code != 201 {
					errs <- fmt.Errorf("create: %d", code)
					continue
				}
				ids <- d.ID
				if code := e.tryStatus("PATCH", "/documents/"+d.ID, `{"status":"sent"}`); code != 200 {
					errs <- fmt.Errorf("patch: %d", code)
				}
				if code := e.tryStatus("GET", "/documents/"+d.ID, ""); code != 200 {
					errs <- fmt.Errorf("get: %d", code)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM documents.documents WHERE status = 'sent' AND version = 2").Scan(&n); err != nil || n != workers*each {
		t.Fatalf("%d documents sent at version 2, want %d (%v)", n, workers*each, err)
	}
	if len(ids) != workers*each {
		t.Fatalf("%d ids", len(ids))
	}
}

// TestLosingPgBouncerAnswers503WithRetryAfterNever500: under a steady load
// of creates, updates, reads and lists, PgBouncer is killed and restarted. Every
// answer is a success or a 503 carrying Retry-After: a lost database is
// "retry later", never a 500 "internal error" (a client cannot tell the
// second from a bug, and must not retry it blindly).
func TestLosingPgBouncerAnswers503WithRetryAfterNever500(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { losePgBouncer(t, sig) })
	}
}

func losePgBouncer(t *testing.T, sig syscall.Signal) {
	ctx := context.Background()
	direct := testenv.Database(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	b, err := localstack.StartPgBouncerFor(ctx, testenv.TempDir(t), testenv.Postgres(), strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	e := newEnvWith(t, b.URL(), DefaultConfig())
	seed, code := e.tryCreate("seed")
	if code != http.StatusCreated {
		t.Fatalf("seed create: %d", code)
	}

	type answer struct {
		what       string
		status     int
		retryAfter string
		body       string
	}
	var mu sync.Mutex
	var bad []answer
	var ok, unavailable atomic.Int64
	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var confirmed sync.Map // idempotency key → id, for creates answered 201
	for w := range 8 {
		wg.Go(func() {
			pending := "" // a keyed create not answered 201 yet: retried with its key
			for i := 0; loadCtx.Err() == nil; i++ {
				var req *http.Request
				switch (w + i) % 4 {
				case 0:
					if pending == "" {
						pending = fmt.Sprintf("keyed-%d-%d", w, i)
					}
					req, _ = http.NewRequest("POST", e.srv.URL+"/documents",
						strings.NewReader(`{"title":"`+pending+`","content":"x","created_by":"a@company.com"}`))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(api.IdempotencyKeyHeader, pending)
				case 1:
					// A fresh read each time: the cache would answer a repeated one.
					req, _ = http.NewRequest("GET", e.srv.URL+"/documents/"+seed.ID+"/stats", nil)
				case 2:
					// An update is a transaction: its begin and commit meet the outage too.
					req, _ = http.NewRequest("PATCH", e.srv.URL+"/documents/"+seed.ID, strings.NewReader(fmt.Sprintf(`{"title":"v%d-%d"}`, w, i)))
					req.Header.Set("Content-Type", "application/json")
				default:
					req, _ = http.NewRequest("GET", e.srv.URL+"/documents?limit=5", nil)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					mu.Lock()
					bad = append(bad, answer{what: req.Method + " " + req.URL.Path, body: err.Error()})
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusCreated:
					ok.Add(1)
					var d Document
					_ = json.Unmarshal(body, &d)
					confirmed.Store(pending, d.ID)
					pending = ""
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					unavailable.Add(1)
				default:
					mu.Lock()
					bad = append(bad, answer{req.Method + " " + req.URL.Path, resp.StatusCode, resp.Header.Get("Retry-After"), string(body)})
					mu.Unlock()
				}
			}
		})
	}
	testenv.WaitFor(t, "load before the outage", func() bool { return ok.Load() > 100 })
	b.Kill(sig)
	testenv.WaitFor(t, "answers during the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return unavailable.Load()+int64(len(bad)) > 50
	})
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	back := ok.Load()
	testenv.WaitFor(t, "successes after PgBouncer is back", func() bool { return ok.Load() > back+100 })
	stop()
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d answers neither a success nor 503 + Retry-After (of %d ok, %d 503); first ones: %+v",
			len(bad), ok.Load(), unavailable.Load(), bad[:min(len(bad), 5)])
	}
	// Creates retried with their key after a 503 (some of which committed
	// before PgBouncer went: ambiguous to the client) made one document each.
	rows, err := e.pool.Query(ctx, `SELECT title, count(*), min(id::text) FROM documents.documents WHERE title LIKE 'keyed-%' GROUP BY title`)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	firsts := map[string]string{}
	for rows.Next() {
		var title, id string
		var n int
		if err := rows.Scan(&title, &n, &id); err != nil {
			t.Fatal(err)
		}
		counts[title], firsts[title] = n, id
	}
	rows.Close()
	keys := 0
	confirmed.Range(func(k, v any) bool {
		keys++
		if counts[k.(string)] != 1 || firsts[k.(string)] != v.(string) {
			t.Errorf("create %s: %d documents (first %s), answered %s; want exactly the one answered", k, counts[k.(string)], firsts[k.(string)], v)
		}
		return true
	})
	for title, n := range counts {
		if n > 1 {
			t.Errorf("create %s made %d documents", title, n)
		}
	}
	t.Logf("%d successes, %d × 503 with Retry-After, no other answer; %d keyed creates, each made once", ok.Load(), unavailable.Load(), keys)
}

// Required mode through a real PgBouncer in transaction pooling mode, under
// concurrency: the access queries (a document's owner and readers, the
// readers filter of a list, shares granted and revoked, each in a
// transaction) see no prepared-statement or session errors, and every
// answer is the access decision: 200 while bob holds a share, 404 once it
// is revoked, never a 5xx.
func TestRequiredModeAccessThroughPgBouncerTransactionPooling(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := localstack.StartPgBouncerFor(ctx, testenv.TempDir(t), testenv.Postgres(), strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	e := &accessEnv{env: newEnvWith(t, b.URL(), noProxies())}
	e.svc.SetMode(auth.ModeRequired)
	srv := httptest.NewServer(withTestPrincipal(NewServer(e.svc, noProxies(), logging.Discard())))
	t.Cleanup(srv.Close)
	e.srv = srv

	const workers, rounds = 16, 8
	docs := make([]Document, workers)
	for w := range docs {
		docs[w] = e.createAs(t, alice, fmt.Sprintf("pooled private %d", w))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*6)
	for w := range workers {
		wg.Go(func() {
			path := "/documents/" + docs[w].ID
			for i := range rounds {
				expect := func(p auth.Principal, method, path string, body any, want int) {
					var rd io.Reader
					if body != nil {
						b, _ := json.Marshal(body)
						rd = strings.NewReader(string(b))
					}
					req, _ := http.NewRequest(method, srv.URL+path, rd)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(testPrincipal, principalHeader(p))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- fmt.Errorf("worker %d round %d: %s %s: %v", w, i, method, path, err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						errs <- fmt.Errorf("worker %d round %d: %s %s as %s: %d %.200s, want %d", w, i, method, path, p.Key(), resp.StatusCode, b, want)
					}
				}
				expect(bob, "GET", path, nil, http.StatusNotFound)
				expect(alice, "POST", path+"/shares", api.ShareRequest{Grantee: "user:bob", Level: "view"}, http.StatusOK)
				expect(bob, "GET", path, nil, http.StatusOK)
				expect(bob, "GET", "/documents?limit=5", nil, http.StatusOK)
				expect(bob, "PATCH", path, map[string]any{"title": "pwned"}, http.StatusForbidden)
				expect(alice, "DELETE", path+"/shares/user:bob", nil, http.StatusNoContent)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
