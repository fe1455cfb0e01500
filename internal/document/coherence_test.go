package document

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// healBound is how long an instance may serve a stale entry after Redis
// came back: the invalidator's retry backoff is capped at 5 s, plus the
// bus's batching and redelivery delay; and should a stopping member's nak
// not reach the server, the bus's 30 s AckWait hands the batch to the other
// member. A bound on a wait, not a latency assertion (one run of make test
// with a fuzzer beside it passed 15 s in the second case).
const healBound = 40 * time.Second

// runInvalidator runs an Invalidator for e's cache on b until the returned
// stop is called or the test ends.
func runInvalidator(t *testing.T, e *env, b bus.Bus) (stop func()) {
	t.Helper()
	inv := NewInvalidator(e.svc.cache, InvalidatorConfig{}, logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := inv.Run(ctx, b); err != nil {
			t.Errorf("invalidator: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (e *env) title(t *testing.T, id string) string {
	t.Helper()
	var d Document
	if r := e.do(t, "GET", "/documents/"+id, nil, &d); r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", id, r.StatusCode)
	}
	return d.Title
}

// stopRedis stops the package's Redis (kill: SIGKILL instead of SIGTERM)
// and returns the function that starts it again (also run at the end of
// the test if the test did not).
func stopRedis(t *testing.T, kill bool) (restart func()) {
	t.Helper()
	if kill {
		testenv.Redis().Kill()
	} else {
		testenv.Redis().Stop()
	}
	var once sync.Once
	restart = func() {
		once.Do(func() {
			if err := testenv.Redis().Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Cleanup(restart)
	return restart
}

// Two document instances share PostgreSQL, Redis and the bus. Redis goes
// down, A changes a title, Redis comes back: B, which cached the old row
// before the outage (Redis keeps it across the restart in its AOF), serves
// the new title within healBound, without any restart. In the second case
// A stops right after the change, so its memory of the missed invalidation
// is gone: only the change stream can heal B. In the third, A is the only
// instance and is restarted (a new instance starts once Redis is back).
func TestInvalidationMissedDuringRedisOutageIsHealedFromTheStream(t *testing.T) {
	for _, tc := range []struct {
		name          string
		stopA, startB bool // startB: B starts after the outage (A restarted)
	}{
		{"both instances stay up", false, false},
		{"the instance that made the change stops", true, false},
		{"the only instance restarts", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := cdctest.Start(t)
			a := newEnvWith(t, p.URL, noProxies())
			stopInvA := runInvalidator(t, a, p.Bus)
			var b *env
			startB := func() {
				b = newEnvWith(t, p.URL, noProxies())
				runInvalidator(t, b, p.Bus)
			}
			if !tc.startB {
				startB()
			}

			d := a.create(t, "Before the outage", "x")
			reader := a
			if b != nil {
				reader = b
			}
			if got := reader.title(t, d.ID); got != "Before the outage" {
				t.Fatalf("read before the outage: %q", got)
			}
			restart := stopRedis(t, false)
			if r := a.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Changed while Redis was down"}, nil); r.StatusCode != http.StatusOK {
				t.Fatalf("PATCH on A: %d", r.StatusCode)
			}
			if tc.stopA {
				a.srv.Close()
				stopInvA()
			}
			restart()
			back := time.Now()
			if tc.startB {
				startB()
			}

			testenv.WaitForWithin(t, healBound, "B to serve the new title", func() bool {
				return b.title(t, d.ID) == "Changed while Redis was down"
			})
			t.Logf("healed %v after Redis answered again", time.Since(back).Round(time.Millisecond))
			// And it is the cache that holds the new row now, not a miss.
			v, err := b.rdb.Get(context.Background(), docKey(d.ID)).Result()
			if err == nil && strings.Contains(v, "Before the outage") {
				t.Fatalf("Redis still holds the old row: %s", v)
			}
		})
	}
}

// A fill is a read of the row followed by a write to Redis; a slow reader
// can write after a newer version was committed, invalidated and even
// cached. Whatever the order, the older row never comes back.
func TestLateFillNeverBringsBackAnOlderVersion(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		before func(t *testing.T, e *env, id string) // after the PATCH, before the late fill
		late   func(e *env, old *Record)
		want   int // status of the GET after the late fill
	}{
		{
			name:   "a late fill after the invalidation is refused",
			before: func(*testing.T, *env, string) {},
			late:   func(e *env, old *Record) { e.svc.cache.Put(ctx, old) },
			want:   http.StatusOK,
		},
		{
			name:   "a late fill after the new version was cached is refused",
			before: func(t *testing.T, e *env, id string) { e.title(t, id) },
			late:   func(e *env, old *Record) { e.svc.cache.Put(ctx, old) },
			want:   http.StatusOK,
		},
		{
			name:   "a replayed older invalidation does not evict or downgrade",
			before: func(t *testing.T, e *env, id string) { e.title(t, id) },
			late: func(e *env, old *Record) {
				_ = e.svc.cache.Apply(ctx, []Invalidation{{ID: old.ID, Version: old.Version}})
				e.svc.cache.Put(ctx, old)
			},
			want: http.StatusOK,
		},
		{
			name: "a late fill after a delete is refused",
			before: func(t *testing.T, e *env, id string) {
				if r := e.do(t, "DELETE", "/documents/"+id, nil, nil); r.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE: %d", r.StatusCode)
				}
			},
			late: func(e *env, old *Record) { e.svc.cache.Put(ctx, old) },
			want: http.StatusNotFound,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.create(t, "Version one", "x")
			old, err := e.svc.store.Record(ctx, d.ID, nil) // the slow reader's row
			if err != nil {
				t.Fatal(err)
			}
			if r := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Version two"}, nil); r.StatusCode != http.StatusOK {
				t.Fatalf("PATCH: %d", r.StatusCode)
			}
			tc.before(t, e, d.ID)
			tc.late(e, old)
			for range 2 { // the first GET may fill, the second reads the cache
				var got Document
				r := e.do(t, "GET", "/documents/"+d.ID, nil, &got)
				if r.StatusCode != tc.want {
					t.Fatalf("GET after the late fill: %d, want %d", r.StatusCode, tc.want)
				}
				if tc.want == http.StatusOK && (got.Title != "Version two" || got.Version != 2) {
					t.Fatalf("GET after the late fill: %q version %d, want Version two at 2", got.Title, got.Version)
				}
			}
		})
	}
}

// Fault: Redis is killed (SIGKILL) while two instances take writes and
// reads. No request fails with a 5xx, and once Redis is back every
// document reads as its last committed title on both instances.
func TestRedisKilledUnderLoad(t *testing.T) {
	p := cdctest.Start(t)
	a, b := newEnvWith(t, p.URL, noProxies()), newEnvWith(t, p.URL, noProxies())
	runInvalidator(t, a, p.Bus)
	runInvalidator(t, b, p.Bus)
	const workers = 4
	ids := make([]string, workers)
	for i := range ids {
		ids[i] = a.create(t, "start", "x").ID
		b.title(t, ids[i]) // cached
	}

	var (
		stop     atomic.Bool
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(s string) {
		mu.Lock()
		failures = append(failures, s)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				writer, reader := a, b
				if k%2 == 1 {
					writer, reader = b, a
				}
				body := fmt.Sprintf(`{"title":"w%d-%d"}`, w, k)
				if s := writer.tryStatus("PATCH", "/documents/"+ids[w], body); s == 0 || s >= 500 {
					fail(fmt.Sprintf("PATCH: %d", s))
				}
				if s := reader.tryStatus("GET", "/documents/"+ids[w], ""); s == 0 || s >= 500 {
					fail(fmt.Sprintf("GET: %d", s))
				}
				requests.Add(2)
			}
		}()
	}
	waitRequests := func(n int64) {
		target := requests.Load() + n
		testenv.WaitFor(t, "requests to be served", func() bool { return requests.Load() >= target })
	}
	waitRequests(200)
	restart := stopRedis(t, true)
	waitRequests(200) // served with Redis dead
	restart()
	waitRequests(200)
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during the Redis kill, first: %s", len(failures), failures[0])
	}
	for _, id := range ids {
		row, err := a.svc.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for name, e := range map[string]*env{"A": a, "B": b} {
			testenv.WaitForWithin(t, healBound, name+" to serve the last title of "+id, func() bool {
				return e.title(t, id) == row.Title
			})
		}
	}
}

// A read of an id that does not exist undoes its view count and writes no
// tombstone: a flood of random ids leaves nothing behind in Redis.
func TestReadsOfUnknownIdsLeaveNothingInRedis(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for range 3 {
		id := uuid.Must(uuid.NewV7()).String()
		if r := e.do(t, "GET", "/documents/"+id, nil, nil); r.StatusCode != http.StatusNotFound {
			t.Fatalf("GET unknown id: %d", r.StatusCode)
		}
		if n, _ := e.rdb.Exists(ctx, docKey(id), viewsKey(id), uniqueKey(id)).Result(); n != 0 {
			t.Fatalf("%d keys left in Redis for unknown id %s", n, id)
		}
	}
}
