package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// documentInstance is one real document service (REST) on its own port,
// sharing the database, Redis and blob storage with the others, as replicas
// do. stop shuts it down gracefully, as SIGTERM would: unready for the
// drain period (still serving), then it stops accepting and drains.
type documentInstance struct {
	url  string
	hits atomic.Int64
	stop func()
}

func startDocumentInstances(t *testing.T, n int, drain time.Duration) []*documentInstance {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Database(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis().Addr()})
	t.Cleanup(func() { rdb.Close() })
	bucket, err := blob.Open(ctx, "file://"+testenv.TempDir(t), document.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	log := logging.Discard()
	var out []*documentInstance
	for range n {
		svc := document.NewService(document.NewStore(pool), bucket, document.NewCache(rdb, time.Minute, log), log)
		cfg := document.DefaultConfig()
		cfg.TrustedProxies = nil
		h := document.NewServer(svc, cfg, log)
		inst := &documentInstance{}
		counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/health/") {
				inst.hits.Add(1)
			}
			h.ServeHTTP(w, r)
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		scfg := httpx.DefaultServerConfig()
		scfg.ShutdownDrain = drain
		go func() { _ = httpx.Serve(sctx, ln, counted, log, scfg); close(done) }()
		var once sync.Once
		inst.url, inst.stop = "http://"+ln.Addr().String(), func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(inst.stop)
		out = append(out, inst)
	}
	return out
}

// TestNoFailedRequestsWhenADocumentInstanceIsRestartedMidLoad is a rolling
// restart under a steady load of reads and creates: one of two instances
// gets SIGTERM (its context is canceled), goes unready, keeps serving
// while the gateway's health checks take it out, then stops. No request
// through the gateway fails, a create included (a create is not
// idempotent: one sent to a port that has just closed is retried only
// because it never reached an upstream).
func TestNoFailedRequestsWhenADocumentInstanceIsRestartedMidLoad(t *testing.T) {
	// The drain is well above the time the checks take to see it (100 ms
	// interval, 2 failures), as the default 5 s is above the default 2 × 2 s.
	docs := startDocumentInstances(t, 2, 2*time.Second)
	cfg := DefaultFor(map[string][]string{"document": {docs[0].url, docs[1].url},
		"signature": {docs[0].url}, "search": {docs[0].url}, "realtime": {docs[0].url}})
	cfg.RateLimit.Requests = 0 // one client making a load; not what this test is about
	for i := range cfg.Services {
		cfg.Services[i].HealthCheck.Interval = 100 * time.Millisecond
	}
	g, gw := startGateway(t, cfg)

	const create = `{"title":"Sales Agreement Q4 2025","content":"This agreement outlines the terms...","created_by":"ebemad@company.com"}`
	resp, err := gw.Client().Post(gw.URL+"/documents", "application/json", strings.NewReader(create))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("create through the gateway: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var total, creates, failed atomic.Int64
	var firstErr atomic.Value
	for i := range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				total.Add(1)
				method, url, body, want := http.MethodGet, gw.URL+"/documents/"+created.ID, "", http.StatusOK
				if i%2 == 0 {
					method, url, body, want = http.MethodPost, gw.URL+"/documents", create, http.StatusCreated
					creates.Add(1)
				}
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := gw.Client().Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: status %d %s", method, resp.StatusCode, b))
				}
			}
		})
	}
	testenv.WaitFor(t, "load on both instances", func() bool { return docs[0].hits.Load() > 100 && docs[1].hits.Load() > 100 })
	stopped := make(chan struct{})
	go func() { docs[0].stop(); close(stopped) }()
	// While it drains, it is still serving, but unready: the gateway takes
	// it out without a failed request.
	testenv.WaitFor(t, "the draining instance to be taken out", func() bool {
		return !upstreamsOf(t, g, "document")[0].Healthy
	})
	select {
	case <-stopped:
		t.Fatal("the instance stopped before the gateway took it out: the drain period did not hold it")
	default:
	}
	<-stopped
	after := docs[1].hits.Load()
	testenv.WaitFor(t, "load continuing on the other instance", func() bool { return docs[1].hits.Load() > after+300 })
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	t.Logf("%d requests (%d creates; %d on the restarted instance, %d on the other), none failed",
		total.Load(), creates.Load(), docs[0].hits.Load(), docs[1].hits.Load())
}

// TestNoFailedGETsWhenADocumentInstanceStopsMidLoad: without a drain period
// the instance stops accepting at once; reads are retried elsewhere.
func TestNoFailedGETsWhenADocumentInstanceStopsMidLoad(t *testing.T) {
	docs := startDocumentInstances(t, 2, 0)
	cfg := DefaultFor(map[string][]string{"document": {docs[0].url, docs[1].url},
		"signature": {docs[0].url}, "search": {docs[0].url}, "realtime": {docs[0].url}})
	cfg.RateLimit.Requests = 0 // one client making a load; not what this test is about
	for i := range cfg.Services {
		cfg.Services[i].HealthCheck.Interval = 100 * time.Millisecond
	}
	_, gw := startGateway(t, cfg)

	resp, err := gw.Client().Post(gw.URL+"/documents", "application/json",
		strings.NewReader(`{"title":"Sales Agreement Q4 2025","content":"This agreement outlines the terms...","created_by":"ebemad@company.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("create through the gateway: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var total, failed atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				total.Add(1)
				resp, err := gw.Client().Get(gw.URL + "/documents/" + created.ID)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint("status ", resp.StatusCode))
				}
			}
		})
	}
	testenv.WaitFor(t, "load on both instances", func() bool { return docs[0].hits.Load() > 100 && docs[1].hits.Load() > 100 })
	docs[0].stop() // graceful, like SIGTERM: stops accepting, drains in-flight requests
	after := docs[1].hits.Load()
	testenv.WaitFor(t, "load continuing on the other instance", func() bool { return docs[1].hits.Load() > after+300 })
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d GETs failed; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	t.Logf("%d GETs (%d on the stopped instance, %d on the other), none failed", total.Load(), docs[0].hits.Load(), docs[1].hits.Load())
}
