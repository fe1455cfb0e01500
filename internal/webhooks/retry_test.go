package webhooks_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webhooks"
)

// arrivals is a receiver that records when each request arrived and
// answers what answer says for the n-th (0-based) one.
type arrivals struct {
	*httptest.Server
	mu    sync.Mutex
	at    []time.Time
	codes []int
}

func newArrivals(t *testing.T, answer func(n int, w http.ResponseWriter) int) *arrivals {
	t.Helper()
	a := &arrivals{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		n := len(a.at)
		a.at = append(a.at, time.Now())
		a.codes = append(a.codes, 0)
		a.mu.Unlock()
		code := answer(n, w)
		a.mu.Lock()
		a.codes[n] = code
		a.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *arrivals) times() ([]time.Time, []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at), slices.Clone(a.codes)
}

// deliveries is the endpoint's deliveries list (newest first).
func (tg *target) deliveries(t *testing.T, id, status string) []api.Delivery {
	t.Helper()
	var ds api.Deliveries
	u := tg.api + "/webhooks/" + id + "/deliveries"
	if status != "" {
		u += "?status=" + status
	}
	if resp := testenv.Do(t, "GET", u, nil, &ds); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	return ds.Deliveries
}

// A receiver answering 429 with Retry-After: 2 is not asked again before
// those 2 s have passed, although the backoff alone would retry after
// 50 ms; the delivery then succeeds with the same webhook-id, and the list
// shows both attempts.
func TestA429sRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.RetryMax = 10 * time.Second })
	tg := e.start(t, nil)
	rc := newArrivals(t, func(n int, w http.ResponseWriter) int {
		if n == 0 {
			w.Header().Set("Retry-After", "2")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	e.insert(t, "throttled")
	testenv.WaitFor(t, "the retry after the 429", func() bool { at, codes := rc.times(); return len(at) == 2 && codes[1] == 200 })
	at, _ := rc.times()
	if gap := at[1].Sub(at[0]); gap < 2*time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 2", gap)
	}
	testenv.WaitFor(t, "the delivery recorded as delivered", func() bool {
		ds := tg.deliveries(t, ep.ID, "")
		return len(ds) == 1 && ds[0].Status == api.DeliveryDelivered
	})
	d := tg.deliveries(t, ep.ID, "")[0]
	if d.Attempts != 2 || len(d.History) != 2 || d.History[0].StatusCode != 429 || d.History[1].StatusCode != 200 {
		t.Fatalf("delivery %+v", d)
	}
}

// Connection errors and timeouts are retried like a 5xx: an endpoint
// whose port refuses connections, then one that does not answer within
// --webhooks-timeout, each gets the event once it answers, and the list
// shows the failed attempts without a status code and with the cause.
func TestConnectionErrorsAndTimeoutsAreRetried(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.Timeout, c.Lease = time.Second, 10*time.Second })
	tg := e.start(t, nil)

	// Refused: a port nobody listens on until the test opens it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	refused := tg.createEndpoint(t, "http://"+addr+"/hook", []string{api.WebhookDocumentCreated})

	// Timed out: the first request hangs past the timeout.
	release := make(chan struct{})
	t.Cleanup(func() { closeOnce(release) })
	slow := newArrivals(t, func(n int, _ http.ResponseWriter) int {
		if n == 0 {
			<-release
		}
		return http.StatusOK
	})
	timedOut := tg.createEndpoint(t, slow.URL, []string{api.WebhookDocumentCreated})

	doc := e.insert(t, "retried")
	testenv.WaitFor(t, "two refused attempts", func() bool {
		ds := tg.deliveries(t, refused.ID, "")
		return len(ds) == 1 && ds[0].Attempts >= 2
	})
	testenv.WaitFor(t, "the timed-out endpoint's retry", func() bool { at, codes := slow.times(); return len(at) >= 2 && codes[1] == 200 })
	closeOnce(release)

	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on the refused endpoint's port again: %v", err)
	}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })

	for _, c := range []struct {
		name, id, cause string
	}{{"refused", refused.ID, "refused"}, {"timed out", timedOut.ID, "Timeout"}} {
		var d api.Delivery
		testenv.WaitFor(t, c.name+": delivered", func() bool {
			ds := tg.deliveries(t, c.id, "")
			if len(ds) == 1 {
				d = ds[0]
			}
			return d.Status == api.DeliveryDelivered
		})
		if d.DocumentID != doc || len(d.History) < 2 {
			t.Fatalf("%s: delivery %+v", c.name, d)
		}
		first, last := d.History[0], d.History[len(d.History)-1]
		if first.StatusCode != 0 || !strings.Contains(first.Error, c.cause) || last.StatusCode != 200 {
			t.Fatalf("%s: attempts %+v, want a failure naming %q without a status, then 200", c.name, d.History, c.cause)
		}
	}
}

// A delivery that keeps failing is retried for --webhooks-retry-period
// from its first attempt, then parked as failed with the reason; the
// endpoint's queue then moves on (the next event is delivered after it),
// and the endpoint stays enabled (it is disabled after a period of
// failures, --webhooks-disable-after, not after a run of them).
func TestADeliveryRetriedForThePeriodIsParkedAndTheQueueMovesOn(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.RetryPeriod = 2 * time.Second })
	tg := e.start(t, nil)
	var bad atomic.Value
	bad.Store("")
	rc := newReceiver(t, func(_ int, h hit) int {
		if h.Payload.Data.Document != nil && h.Payload.Data.Document.ID == bad.Load().(string) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	// The receiver must know the first document's id before its event.
	var a string
	if err := e.Pool.QueryRow(t.Context(), "SELECT gen_random_uuid()::text").Scan(&a); err != nil {
		t.Fatal(err)
	}
	bad.Store(a)
	e.Exec(t, `INSERT INTO documents.documents (id, title, status, created_by, readers) VALUES ($1::uuid, 'never accepted', 'created', 'john.doe@company.com', '{}')`, a)
	b := e.insert(t, "accepted")
	testenv.WaitFor(t, "the second event", func() bool { return len(rc.accepted()) == 1 })
	hs := rc.all()
	if got := docIDs(hs); len(got) < 3 || got[len(got)-1] != b || slices.Contains(got[:len(got)-1], b) {
		t.Fatalf("requests for %v: want several for %s, then %s", got, a, b)
	}
	failed := tg.deliveries(t, ep.ID, api.DeliveryFailed)
	if len(failed) != 1 || failed[0].DocumentID != a || failed[0].LastStatus != 500 || !strings.Contains(failed[0].LastError, "retries ended after 2s") {
		t.Fatalf("parked deliveries %+v", failed)
	}
	if n := len(failed[0].History); n < 2 {
		t.Errorf("%d attempts before parking, want retries", n)
	}
	var w api.Webhook
	testenv.Do(t, "GET", tg.api+"/webhooks/"+ep.ID, nil, &w)
	if !w.Enabled {
		t.Fatalf("the endpoint was disabled after one parked delivery: %+v", w)
	}
}

// A receiver's answer is read up to --webhooks-response-cap, never more:
// one that streams an endless body, and one that sends its headers and
// then stalls, both hold a worker for at most one attempt's timeout and
// the next events are delivered; the list keeps the first KiB.
func TestResponseBodiesAreReadUpToTheCap(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) { c.Timeout, c.Lease = 2*time.Second, 10*time.Second })
	tg := e.start(t, nil)
	var written atomic.Int64
	endless := make(chan struct{}, 16)
	chunk := []byte(strings.Repeat("x", 64<<10))
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		defer func() { endless <- struct{}{} }()
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return // the sender stopped reading and hung up
			}
		}
	}))
	t.Cleanup(huge.Close)
	stallRelease := make(chan struct{})
	var stalled atomic.Int64
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		stalled.Add(1)
		select {
		case <-stallRelease:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { closeOnce(stallRelease); stall.Close() })
	hugeEp := tg.createEndpoint(t, huge.URL, []string{api.WebhookDocumentCreated})
	stallEp := tg.createEndpoint(t, stall.URL, []string{api.WebhookDocumentCreated})
	for i := range 3 {
		e.insert(t, fmt.Sprintf("doc %d", i))
	}
	for _, c := range []struct {
		name string
		id   string
	}{{"endless body", hugeEp.ID}, {"stalled body", stallEp.ID}} {
		testenv.WaitFor(t, c.name+": 3 deliveries finished", func() bool {
			return len(tg.deliveries(t, c.id, api.DeliveryDelivered)) == 3
		})
		for _, d := range tg.deliveries(t, c.id, "") {
			if r := d.History[len(d.History)-1].Response; len(r) > 1024 {
				t.Errorf("%s: kept a response of %d bytes, want at most 1 KiB", c.name, len(r))
			}
		}
	}
	// Every endless answer ended: the sender hung up after the cap.
	for i := range 3 {
		select {
		case <-endless:
		case <-time.After(time.Minute):
			t.Fatalf("endless answer %d still being written after the deliveries were recorded", i)
		}
	}
	if stalled.Load() != 3 {
		t.Errorf("stalled answers: %d, want 3", stalled.Load())
	}
	t.Logf("the endless receiver wrote %d bytes for 3 deliveries (socket buffers; the sender read at most 16 KiB of each)", written.Load())
}

// The target's metrics, read from its /metrics by value: deliveries by
// outcome and attempts by answer per endpoint, the queue of an endpoint
// that is down (pending and the age of its oldest), emptied once it is
// up, and the latency and attempt histograms' counts.
func TestMetricsCountDeliveriesByOutcome(t *testing.T) {
	webhooks.RegisterMetrics()
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	scrape := func() string { return testenv.Scrape(t, tg.api+"/metrics") }
	before := scrape()
	// Event 0: 500 then 200; event 1: 410 (parked); event 2: 200.
	rc := newReceiver(t, func(n int, _ hit) int {
		switch n {
		case 0:
			return http.StatusInternalServerError
		case 2:
			return http.StatusGone
		}
		return http.StatusOK
	})
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var up atomicBool
	down := newReceiver(t, func(int, hit) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	downEp := tg.createEndpoint(t, down.URL, []string{api.WebhookDocumentCreated})
	for i := range 3 {
		e.insert(t, fmt.Sprintf("doc %d", i))
	}
	testenv.WaitFor(t, "3 events finished at the first endpoint", func() bool {
		return len(tg.deliveries(t, ep.ID, api.DeliveryPending)) == 0 && len(tg.deliveries(t, ep.ID, "")) == 3
	})
	ids := map[string]string{"endpoint": ep.ID}
	testenv.WaitFor(t, "the counters", func() bool { return testenv.Metric(t, scrape(), "docstream_webhooks_delivered_total", ids) == 2 })
	m := scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"docstream_webhooks_delivered_total", ids, 2},
		{"docstream_webhooks_failed_total", ids, 1},
		{"docstream_webhooks_attempts_total", map[string]string{"endpoint": ep.ID, "code": "500"}, 1},
		{"docstream_webhooks_attempts_total", map[string]string{"endpoint": ep.ID, "code": "410"}, 1},
		{"docstream_webhooks_attempts_total", map[string]string{"endpoint": ep.ID, "code": "200"}, 2},
	} {
		if got := testenv.Metric(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The down endpoint's queue: 3 pending, the oldest some seconds old
	// (the gauges are refreshed every 5 s).
	downIDs := map[string]string{"endpoint": downEp.ID}
	testenv.WaitFor(t, "the down endpoint's queue in the gauges", func() bool {
		m := scrape()
		return testenv.Metric(t, m, "docstream_webhooks_pending", downIDs) == 3 && testenv.Metric(t, m, "docstream_webhooks_oldest_pending_seconds", downIDs) > 0
	})
	up.Store(true)
	testenv.WaitFor(t, "the down endpoint's queue emptied in the gauges", func() bool {
		m := scrape()
		return testenv.Metric(t, m, "docstream_webhooks_pending", downIDs) == 0 && testenv.Metric(t, m, "docstream_webhooks_oldest_pending_seconds", downIDs) == 0
	})
	m = scrape()
	if got := testenv.Metric(t, m, "docstream_webhooks_delivered_total", downIDs); got != 3 {
		t.Errorf("delivered at the endpoint that came back: %v, want 3", got)
	}
	// Histograms are per process: 5 deliveries succeeded (2 + 3) and
	// at least 8 attempts were made since the first scrape.
	if d := testenv.Metric(t, m, "docstream_webhooks_latency_seconds_count", nil) - testenv.Metric(t, before, "docstream_webhooks_latency_seconds_count", nil); d != 5 {
		t.Errorf("latency observations: %v, want 5", d)
	}
	attempts := testenv.Metric(t, m, "docstream_webhooks_attempt_seconds_count", nil) - testenv.Metric(t, before, "docstream_webhooks_attempt_seconds_count", nil)
	if want := 4 + float64(len(down.all())); attempts != want {
		t.Errorf("attempt observations: %v, want %v", attempts, want)
	}
	if stored := testenv.Metric(t, m, "docstream_webhooks_events_total", map[string]string{"result": "stored"}) - testenv.Metric(t, before, "docstream_webhooks_events_total", map[string]string{"result": "stored"}); stored != 3 {
		t.Errorf("events stored: %v, want 3", stored)
	}
}

// Events and finished deliveries (with their attempts) older than
// --webhooks-event-retention are pruned by the target (once at start,
// then hourly); a pending delivery is never pruned, however old, nor the
// events of the fan-out cursor's own transaction, which a restart reads
// from the bus again: pruned, they would be delivered a second time.
func TestOldEventsAndFinishedDeliveriesArePruned(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var down atomicBool
	down.Store(true)
	held := newReceiver(t, func(int, hit) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	heldEp := tg.createEndpoint(t, held.URL, []string{api.WebhookDocumentCreated})
	old1, old2 := e.insert(t, "old 1"), e.insert(t, "old 2")
	testenv.WaitFor(t, "the old events delivered", func() bool { return len(tg.deliveries(t, ep.ID, api.DeliveryDelivered)) == 2 })
	tg.stop()
	// Eight days ago, beyond the default 7 d retention.
	e.Exec(t, `UPDATE webhooks.events SET occurred_at = now() - interval '8 days'`)
	e.Exec(t, `UPDATE webhooks.deliveries SET created_at = now() - interval '8 days', finished_at = CASE WHEN status = 'pending' THEN NULL ELSE now() - interval '8 days' END`)
	count := func(q string, args ...any) int {
		var n int
		if err := e.Pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tg2 := e.start(t, nil)
	// The next change only after the prune at start has run: a change
	// handled before it moves the cursor past old 2's transaction, and
	// then pruning its events is right (this test raced on that).
	testenv.WaitFor(t, "the prune at start", func() bool {
		return count(`SELECT count(*) FROM webhooks.events WHERE document_id = $1::uuid`, old1) == 0
	})
	recent := e.insert(t, "recent")
	testenv.WaitFor(t, "the old deliveries pruned and the recent one delivered", func() bool {
		ds := tg2.deliveries(t, ep.ID, "")
		return len(ds) == 1 && ds[0].DocumentID == recent && ds[0].Status == api.DeliveryDelivered
	})
	if n := count(`SELECT count(*) FROM webhooks.events WHERE document_id = $1::uuid`, old1); n != 0 {
		t.Errorf("%d events of the first old document kept", n)
	}
	if n := count(`SELECT count(*) FROM webhooks.events WHERE document_id = $1::uuid`, old2); n != 1 {
		t.Errorf("%d events of the cursor's transaction kept, want 1", n)
	}
	if n := count(`SELECT count(*) FROM webhooks.attempts a JOIN webhooks.deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = $1`, ep.ID); n != 1 {
		t.Errorf("%d attempts kept, want the recent delivery's 1", n)
	}
	if got := docIDs(rc.accepted()); !slices.Equal(got, []string{old1, old2, recent}) {
		t.Errorf("the endpoint got %v, want each once: %v", got, []string{old1, old2, recent})
	}
	// The held endpoint's old deliveries are still pending: kept, and
	// delivered once the endpoint is up, in order.
	down.Store(false)
	testenv.WaitFor(t, "the held endpoint's three events", func() bool { return len(held.accepted()) == 3 })
	if got := docIDs(held.accepted()); !slices.Equal(got, []string{old1, old2, recent}) {
		t.Fatalf("held endpoint got %v, want %v", got, []string{old1, old2, recent})
	}
	// Recorded a moment after the receiver answered.
	testenv.WaitFor(t, "the held endpoint's three deliveries recorded", func() bool {
		return len(tg2.deliveries(t, heldEp.ID, api.DeliveryDelivered)) == 3
	})
}
