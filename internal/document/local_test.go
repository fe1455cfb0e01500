package document

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// testMaxLag is the in-process cache's lag bound in these tests: the test
// pipeline publishes a watermark every 200 ms when idle.
const testMaxLag = 800 * time.Millisecond

// withLocalCache gives e an in-process cache fed by b, and returns the
// function that stops its consumer (also run at the end of the test).
func withLocalCache(t *testing.T, e *env, b bus.Bus) (stop func()) {
	t.Helper()
	l := NewLocalCache(100, testMaxLag, logging.Discard())
	e.svc.SetLocalCache(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx, b, e.svc.store.FlushedLSN); err != nil {
			t.Errorf("local cache: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	testenv.WaitFor(t, "the local cache to hear the stream", func() bool { return l.fresh(time.Now()) })
	return stop
}

// behindTheCaches changes id's title in PostgreSQL without moving its
// version (its change event then invalidates nothing: the in-process entry
// is at that version already) and drops its Redis entry: a read that still
// answers the old title was answered from memory.
func (e *env) behindTheCaches(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `UPDATE documents.documents SET title = 'behind the caches' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, docKey(id)).Err(); err != nil {
		t.Fatal(err)
	}
}

// Two instances share PostgreSQL, Redis and the bus, each with its own
// in-process cache. B serves from memory (a title changed behind every
// cache's back is not seen), and a change made through A reaches B's
// memory by the change stream, without Redis in B's path.
func TestAChangeThroughAnotherInstanceReachesTheLocalCacheByTheStream(t *testing.T) {
	p := cdctest.Start(t)
	a := newEnvWith(t, p.URL, noProxies())
	b := newEnvWith(t, p.URL, noProxies())
	withLocalCache(t, a, p.Bus)
	withLocalCache(t, b, p.Bus)

	d := a.create(t, "First", "x")
	if got := b.title(t, d.ID); got != "First" {
		t.Fatalf("B read %q", got)
	}
	b.behindTheCaches(t, d.ID)
	if got := b.title(t, d.ID); got != "First" {
		t.Fatalf("B read %q; want its in-process copy", got)
	}
	if r := a.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Second"}, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH on A: %d", r.StatusCode)
	}
	if got := a.title(t, d.ID); got != "Second" {
		t.Fatalf("A read %q right after its own PATCH; want Second (read-your-writes)", got)
	}
	testenv.WaitForWithin(t, 5*time.Second, "B to see A's change", func() bool { return b.title(t, d.ID) == "Second" })
}

// The in-process cache answers only while its consumer hears the stream.
// B caches a document; then B's consumer is cut off from the bus (its
// connection goes through a proxy that is cut: a real outage for B, while
// CDC and A carry on), or stopped. A changes the title, which reaches
// Redis and PostgreSQL but not B's memory. Once the evidence B holds is
// older than the lag bound, B serves the new title, and it never serves
// the old one after that bound; when the bus is back B serves from memory
// again.
func TestTheLocalCacheIsBypassedWhileItsConsumerIsCutOffOrStopped(t *testing.T) {
	for _, tc := range []string{"bus outage", "stopped consumer"} {
		t.Run(tc, func(t *testing.T) {
			p := cdctest.Start(t)
			a := newEnvWith(t, p.URL, noProxies())
			b := newEnvWith(t, p.URL, noProxies())
			proxy := newTCPProxy(t, p.Bus.URL())
			bBus, err := busnats.Connect(context.Background(), proxy.URL(), busnats.Options{StallAfter: 2 * time.Second, RequestTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = bBus.Close() })
			stop := withLocalCache(t, b, bBus)

			d := a.create(t, "Before", "x")
			if got := b.title(t, d.ID); got != "Before" {
				t.Fatalf("B read %q", got)
			}
			if tc == "bus outage" {
				proxy.Cut()
			} else {
				stop()
			}
			if r := a.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "During"}, nil); r.StatusCode != http.StatusOK {
				t.Fatalf("PATCH on A: %d", r.StatusCode)
			}
			// No evidence B can gather covers the PATCH's commit: past the
			// bound after it, B must not answer from memory.
			committed := time.Now()
			time.Sleep(time.Until(committed.Add(testMaxLag + 100*time.Millisecond)))
			for range 20 {
				if got := b.title(t, d.ID); got != "During" {
					t.Fatalf("B read %q %v after A's change, while its consumer was cut off (bound %v)", got, time.Since(committed), testMaxLag)
				}
			}
			if tc == "stopped consumer" {
				return
			}
			// Back: B's cache empties itself, hears the stream and answers
			// from memory again (a change behind every cache is not seen).
			proxy.Restore()
			testenv.WaitForWithin(t, 20*time.Second, "B's cache to hear the stream again", func() bool { return b.svc.local.fresh(time.Now()) })
			_ = b.title(t, d.ID) // fill
			b.behindTheCaches(t, d.ID)
			if got := b.title(t, d.ID); got != "During" {
				t.Fatalf("B read %q after the outage; want its in-process copy", got)
			}
		})
	}
}

// A fill reads the row, then caches it; a change can commit and be
// invalidated in between. Whatever the order, the older row never comes
// back to the in-process cache.
func TestALateFillNeverRestoresAnOlderRowInTheLocalCache(t *testing.T) {
	v := func(version int32, access int64, title string) *Record {
		return &Record{Document: &Document{ID: "d", Title: title, Version: version}, Readers: []string{}, AccessVersion: access}
	}
	for _, tc := range []struct {
		name string
		run  func(c *LocalCache) // ends with the late fill of version 1
	}{
		{"the change is invalidated while the fill is in flight", func(c *LocalCache) {
			f := c.begin("d")
			c.invalidate("d", stamp{Version: 2})
			c.put(f, v(1, 0, "old"), []byte("old"))
		}},
		{"the newer row is cached before the late fill lands", func(c *LocalCache) {
			f := c.begin("d")
			c.invalidate("d", stamp{Version: 2})
			g := c.begin("d")
			c.put(g, v(2, 0, "new"), []byte("new"))
			c.put(f, v(1, 0, "old"), []byte("old"))
		}},
		{"a share moves the access version alone", func(c *LocalCache) {
			f := c.begin("d")
			c.invalidate("d", stamp{Version: 1, Access: 3})
			c.put(f, v(1, 2, "old"), []byte("old"))
		}},
		{"the document is deleted while the fill is in flight", func(c *LocalCache) {
			f := c.begin("d")
			c.invalidate("d", gone)
			c.put(f, v(1, 0, "old"), []byte("old"))
		}},
		{"the tombstone is evicted to make room", func(c *LocalCache) {
			f := c.begin("d")
			c.invalidate("d", stamp{Version: 2})
			for i := range 3 {
				g := c.begin(strconv.Itoa(i))
				c.put(g, &Record{Document: &Document{ID: strconv.Itoa(i), Version: 1}, Readers: []string{}}, nil)
			}
			c.put(f, v(1, 0, "old"), []byte("old"))
		}},
		{"the stream lapsed and came back while the fill was in flight", func(c *LocalCache) {
			f := c.begin("d")
			c.heard.Store(time.Now().Add(-time.Hour).UnixNano())
			hear(c, time.Now())
			c.put(f, v(1, 0, "old"), []byte("old"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewLocalCache(3, time.Minute, logging.Discard())
			hear(c, time.Now())
			tc.run(c)
			if e := c.get("d", 0); e != nil && e.rec.Version == 1 && e.rec.Title == "old" {
				t.Fatalf("the late fill restored version 1 (%+v)", e.st)
			}
		})
	}

	// And the race itself: fills of version 1 racing invalidations to
	// version 2 and fills of version 2; once version 2 is invalidated and
	// every fill has landed, version 1 is never what the cache holds.
	for round := range 200 {
		c := NewLocalCache(10, time.Minute, logging.Discard())
		hear(c, time.Now())
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(3)
		go func() { defer wg.Done(); f := c.begin("d"); <-start; c.put(f, v(1, 0, "old"), nil) }()
		go func() { defer wg.Done(); <-start; c.invalidate("d", stamp{Version: 2}) }()
		go func() { defer wg.Done(); <-start; f := c.begin("d"); c.put(f, v(2, 0, "new"), nil) }()
		close(start)
		wg.Wait()
		if e := c.get("d", 0); e != nil && e.rec.Version != 2 {
			t.Fatalf("round %d: the cache holds version %d after version 2 was invalidated", round, e.rec.Version)
		}
	}
}

// hear feeds c a watermark taken at ts, as the stream does.
func hear(c *LocalCache, ts time.Time) {
	w, _ := json.Marshal(change.Watermark{LSN: 1, TsMs: ts.UnixMilli()})
	_ = c.HandleBatch(context.Background(), []bus.Message{{Topic: bus.TopicWatermarks, Value: w}})
}

// The cache answers only while the newest evidence it applied is younger
// than its bound: a watermark older than that (a lagging CDC engine or
// bus) is no evidence of freshness, and arrival time does not count.
func TestTheLocalCacheIsBypassedWhileItsStreamLags(t *testing.T) {
	c := NewLocalCache(10, time.Second, logging.Discard())
	fill := func() {
		f := c.begin("d")
		c.put(f, &Record{Document: &Document{ID: "d", Version: 1}, Readers: []string{}}, []byte("{}"))
	}
	fill()
	if c.get("d", 0) != nil || c.Len() != 0 {
		t.Fatal("the cache answered (or filled) before it heard the stream")
	}
	hear(c, time.Now().Add(-2*time.Second))
	fill()
	if c.get("d", 0) != nil {
		t.Fatal("the cache answered with only a watermark older than its bound")
	}
	hear(c, time.Now())
	fill()
	if c.get("d", 0) == nil {
		t.Fatal("the cache did not answer with a fresh watermark")
	}
	// A later batch after a gap empties it before it answers again.
	c.heard.Store(time.Now().Add(-2 * time.Second).UnixNano())
	if c.get("d", 0) != nil {
		t.Fatal("the cache answered once its evidence aged past the bound")
	}
	hear(c, time.Now())
	if c.get("d", 0) != nil || c.Len() != 0 {
		t.Fatal("the cache kept entries across a gap in the stream")
	}
}

// The cache holds at most its size (tombstones included).
func TestTheLocalCacheHoldsAtMostItsSize(t *testing.T) {
	c := NewLocalCache(5, time.Minute, logging.Discard())
	hear(c, time.Now())
	for i := range 50 {
		id := strconv.Itoa(i)
		f := c.begin(id)
		if i%3 == 0 {
			c.invalidate(id, stamp{Version: 2})
		}
		c.put(f, &Record{Document: &Document{ID: id, Version: 2}, Readers: []string{}}, nil)
		if n := c.Len(); n > 5 {
			t.Fatalf("%d entries after %d fills; the bound is 5", n, i+1)
		}
	}
}

// In required mode the cache holds the row; who may read it is decided per
// caller. A user without access gets the same 404 from a warm cache as
// from a cold one, an API key without the read scope the same 403, and
// neither read counts a view.
func TestAUserWithoutAccessGetsTheSameAnswerFromAWarmLocalCacheAsFromACold(t *testing.T) {
	p := cdctest.Start(t)
	e := newEnvWith(t, p.URL, noProxies())
	e.svc.SetMode(auth.ModeRequired)
	owner := auth.Principal{Kind: auth.KindUser, Subject: "owner", Email: "owner@company.com", EmailVerified: true}
	stranger := auth.Principal{Kind: auth.KindUser, Subject: "stranger", Email: "stranger@company.com", EmailVerified: true}
	noScope := auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeWrite}}
	var mu sync.Mutex
	as := owner
	h := NewServer(e.svc, noProxies(), logging.Discard())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pr := as
		mu.Unlock()
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), pr)))
	}))
	t.Cleanup(srv.Close)
	e.srv = srv
	withLocalCache(t, e, p.Bus)
	call := func(pr auth.Principal, path string) (int, string) {
		mu.Lock()
		as = pr
		mu.Unlock()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	cold := e.create(t, "Cold", "x")
	warm := e.create(t, "Warm", "x")
	for range 2 { // the second read is a hit of the in-process cache
		if st, _ := call(owner, "/documents/"+warm.ID); st != http.StatusOK {
			t.Fatalf("owner GET: %d", st)
		}
	}
	if e.svc.local.get(warm.ID, 0) == nil {
		t.Fatal("the owner's read did not fill the in-process cache")
	}
	for _, who := range []struct {
		name string
		p    auth.Principal
		want int
	}{{"a user the document is not shared with", stranger, http.StatusNotFound}, {"an API key without the read scope", noScope, http.StatusForbidden}} {
		t.Run(who.name, func(t *testing.T) {
			cst, cbody := call(who.p, "/documents/"+cold.ID)
			wst, wbody := call(who.p, "/documents/"+warm.ID)
			if cst != who.want || wst != who.want {
				t.Fatalf("cold %d, warm %d; want %d from both", cst, wst, who.want)
			}
			var ce, we struct {
				Error struct{ Code, Message string }
			}
			_ = json.Unmarshal([]byte(cbody), &ce)
			_ = json.Unmarshal([]byte(wbody), &we)
			if ce.Error.Code != we.Error.Code || ce.Error.Code == "" {
				t.Fatalf("cold %s, warm %s: the answers differ", cbody, wbody)
			}
		})
	}
	var st Stats
	mu.Lock()
	as = owner
	mu.Unlock()
	e.do(t, "GET", "/documents/"+warm.ID+"/stats", nil, &st)
	if st.TotalViews != 2 {
		t.Fatalf("stats %+v; want the owner's 2 views only", st)
	}
}

// Views are counted in memory and written to Redis in batches: nothing
// reaches Redis on the read itself, stats right after the reads are
// exact, and Flush writes what is pending.
func TestViewsAreBatchedOffTheRequestPathAndStatsStayExact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Viewed", "x")
	other := e.create(t, "Also viewed", "x")
	for range 5 {
		e.do(t, "GET", "/documents/"+d.ID, nil, nil)
	}
	e.do(t, "GET", "/documents/"+other.ID, nil, nil)
	if n, _ := e.rdb.Exists(ctx, viewsKey(d.ID)).Result(); n != 0 {
		t.Fatal("a read wrote views:{id} on the request path")
	}
	var st Stats
	e.do(t, "GET", "/documents/"+d.ID+"/stats", nil, &st)
	if st.TotalViews != 5 || st.UniqueViews != 1 {
		t.Fatalf("stats %+v right after 5 reads; want 5 total, 1 unique", st)
	}
	if err := e.svc.Views().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.rdb.Get(ctx, viewsKey(other.ID)).Int64(); n != 1 {
		t.Fatalf("views:{id} = %d after the flush; want 1", n)
	}
	// Stats counted d's views once: the flush added nothing more.
	if n, _ := e.rdb.Get(ctx, viewsKey(d.ID)).Int64(); n != 5 {
		t.Fatalf("views:{id} = %d; want 5", n)
	}
}

// Views a flush took before a delete do not bring the deleted document's
// counters back when the flush writes them after the delete; a live
// document's views in the same flush are counted.
func TestAFlushAfterADeleteDoesNotBringTheViewsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Doomed", "x")
	live := e.create(t, "Alive", "x")
	e.do(t, "GET", "/documents/"+d.ID, nil, nil)
	e.do(t, "GET", "/documents/"+live.ID, nil, nil)
	// The flush takes its batch ...
	v := e.svc.Views()
	batch := map[string]*pendingViews{d.ID: v.take(d.ID), live.ID: v.take(live.ID)}
	if batch[d.ID] == nil || batch[live.ID] == nil {
		t.Fatal("the reads counted no views")
	}
	// ... the document is deleted ...
	if r := e.do(t, "DELETE", "/documents/"+d.ID, nil, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	// ... and the flush writes.
	if err := e.svc.cache.addViews(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.rdb.Exists(ctx, viewsKey(d.ID), uniqueKey(d.ID)).Result(); n != 0 {
		t.Fatalf("%d of views:{id}, unique_views:{id} of the deleted document came back", n)
	}
	if n, _ := e.rdb.Get(ctx, viewsKey(live.ID)).Int64(); n != 1 {
		t.Fatalf("views:{id} of the live document = %d; want 1", n)
	}
	if n, _ := e.rdb.PFCount(ctx, uniqueKey(live.ID)).Result(); n != 1 {
		t.Fatalf("unique_views:{id} of the live document = %d; want 1", n)
	}
}

// Views counted while Redis is down wait in memory and reach Redis once it
// answers again.
func TestViewsCountedWhileRedisIsDownAreFlushedWhenItIsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Viewed", "x")
	restart := stopRedis(t, false)
	for range 3 {
		if r := e.do(t, "GET", "/documents/"+d.ID, nil, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("GET without Redis: %d", r.StatusCode)
		}
	}
	if err := e.svc.Views().Flush(ctx); err == nil {
		t.Fatal("a flush without Redis reported success")
	}
	restart()
	testenv.WaitFor(t, "the views to be flushed", func() bool {
		_ = e.svc.Views().Flush(ctx)
		n, _ := e.rdb.Get(ctx, viewsKey(d.ID)).Int64()
		return n == 3
	})
}

// tcpProxy forwards connections to a target until Cut, which closes the
// listener and every connection (the peer sees the network fail); Restore
// listens again on the same port.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, targetURL string) *tcpProxy {
	t.Helper()
	host := targetURL
	if i := len("nats://"); len(host) > i && host[:i] == "nats://" {
		host = host[i:]
	}
	p := &tcpProxy{t: t, target: host}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) URL() string { return "nats://" + p.addr }

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) Restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// CDC publishes no watermark while the WAL does not move. Then the flushed
// position is the evidence: at or below the newest watermark applied,
// every commit so far is applied here and the cache answers; once the WAL
// moved past it (a commit whose events have not arrived), it does not.
func TestAnIdleDatabaseKeepsTheLocalCacheFreshByItsFlushedPosition(t *testing.T) {
	c := NewLocalCache(10, 400*time.Millisecond, logging.Discard())
	w, _ := json.Marshal(change.Watermark{LSN: 100, TsMs: time.Now().Add(-time.Hour).UnixMilli()})
	_ = c.HandleBatch(context.Background(), []bus.Message{{Topic: bus.TopicWatermarks, Value: w}})
	if c.fresh(time.Now()) {
		t.Fatal("fresh on an hour-old watermark")
	}
	var mu sync.Mutex
	wal := uint64(100)
	flushed := func(context.Context) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		return wal, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.probe(ctx, flushed) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitForWithin(t, 5*time.Second, "the idle database's position to make the cache fresh", func() bool { return c.fresh(time.Now()) })
	mu.Lock()
	wal = 101
	mu.Unlock()
	testenv.WaitForWithin(t, 5*time.Second, "the cache to lapse once the WAL moved past its watermark", func() bool { return !c.fresh(time.Now()) })
}

// A change made through another instance reaches this one's memory within
// the stream's delay. A client that must read its own write at once sends
// the write's X-Commit-LSN as min_lsn (or X-Min-LSN), as on search and the
// list: the in-process cache answers only once it has applied the stream
// that far, otherwise Redis or PostgreSQL answer, which have the write. B's
// consumer is stopped here, so its memory would serve the old title for
// the whole lag bound.
func TestAGetWithMinLSNReadsAWriteMadeThroughAnotherInstance(t *testing.T) {
	p := cdctest.Start(t)
	a := newEnvWith(t, p.URL, noProxies())
	b := newEnvWith(t, p.URL, noProxies())
	l := NewLocalCache(100, time.Hour, logging.Discard())
	b.svc.SetLocalCache(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx, p.Bus, b.svc.store.FlushedLSN) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, "the local cache to hear the stream", func() bool { return l.fresh(time.Now()) })

	d := a.create(t, "Before", "x")
	testenv.WaitFor(t, "B to have applied the create", func() bool { return b.title(t, d.ID) == "Before" && l.get(d.ID, 0) != nil })
	cancel()
	<-done
	resp := a.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "After"}, nil)
	lsn := resp.Header.Get(CommitLSNHeader)
	if resp.StatusCode != http.StatusOK || lsn == "" {
		t.Fatalf("PATCH on A: %d, X-Commit-LSN %q", resp.StatusCode, lsn)
	}
	if got := b.title(t, d.ID); got != "Before" {
		t.Fatalf("B read %q without min_lsn; want its in-process copy (the stream is stopped, the bound an hour)", got)
	}
	for _, how := range [][]string{nil, {api.MinLSNHeader, lsn}} {
		path := "/documents/" + d.ID
		if how == nil {
			path += "?min_lsn=" + lsn
		}
		var got Document
		if r := b.do(t, "GET", path, nil, &got, how...); r.StatusCode != http.StatusOK || got.Title != "After" {
			t.Fatalf("B GET %s %v: %d %q; want the write's title", path, how, r.StatusCode, got.Title)
		}
	}
	var e struct {
		Error struct{ Details []struct{ Field string } }
	}
	if r := b.do(t, "GET", "/documents/"+d.ID+"?min_lsn=soon", nil, &e); r.StatusCode != http.StatusUnprocessableEntity || len(e.Error.Details) == 0 || e.Error.Details[0].Field != "min_lsn" {
		t.Fatalf("a bad min_lsn: %d %+v; want 422 naming min_lsn, as the list answers", r.StatusCode, e)
	}
}

// A document read from many addresses within one interval is flushed
// before the interval ends, bounding what the viewer sets hold in memory.
func TestViewsFromManyAddressesAreFlushedBeforeTheInterval(t *testing.T) {
	e := newEnv(t)
	v := NewViews(e.svc.cache)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = v.Run(ctx, time.Hour) }()
	t.Cleanup(func() { cancel(); <-done })
	id := "0190b4c6-0000-7000-8000-000000000001"
	for i := range maxViewersPerFlush {
		v.Count(id, "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	testenv.WaitFor(t, "the early flush", func() bool {
		n, _ := e.rdb.Get(context.Background(), viewsKey(id)).Int64()
		return n == maxViewersPerFlush
	})
}
