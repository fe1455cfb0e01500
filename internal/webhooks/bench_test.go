package webhooks_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

// BenchmarkDelivery commits b.N documents (100 per transaction) with 4
// endpoints subscribed and reports deliveries per second and commit →
// receiver latency percentiles (the payload's commit timestamp, in
// milliseconds, to the moment the receiver read the request), all on
// loopback. docs/benchmarks.md records a run:
//
//	go test ./internal/webhooks -run '^$' -bench Delivery -benchtime 2000x
func BenchmarkDelivery(b *testing.B) {
	e := newEnv(b, nil)
	tg := e.start(b, nil)
	const endpoints = 4
	var mu sync.Mutex
	var lat []time.Duration
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var p api.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		lat = append(lat, now.Sub(p.Timestamp))
		got++
		mu.Unlock()
	}))
	b.Cleanup(srv.Close)
	for range endpoints {
		tg.createEndpoint(b, srv.URL, []string{api.WebhookDocumentCreated})
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += 100 {
		n := min(100, b.N-i)
		e.Exec(b, `INSERT INTO documents.documents (id, title, status, created_by, readers)
			SELECT gen_random_uuid(), 'bench ' || g, 'created', 'bench@company.com', '{}' FROM generate_series(1, $1) g`, n)
	}
	testenv.WaitForWithin(b, 10*time.Minute, "every delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got >= b.N*endpoints
	})
	took := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N*endpoints)/took.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.Logf("%d documents × %d endpoints in %v: %.0f deliveries/s; commit→receiver p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		b.N, endpoints, took, float64(b.N*endpoints)/took.Seconds(), pct(0.5), pct(0.99), pct(1))
}
