package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/docstream/docstream/internal/logging"
)

// BenchmarkProxyOverhead compares a GET answered by a bare net/http handler
// with the same GET through the gateway (routing, CORS, request ID,
// metrics, balancing, one extra loopback hop). The difference is the
// gateway's cost per request.
func BenchmarkProxyOverhead(b *testing.B) {
	payload := []byte(`{"id":"0194c3a0-0000-7000-8000-000000000001","title":"Sales Agreement Q4 2025","status":"created"}`)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	defer backend.Close()
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {backend.URL}, "signature": {backend.URL}, "search": {backend.URL}, "realtime": {backend.URL}}))
	cfg.RateLimit.Requests = 0
	g, err := New(cfg, logging.Discard())
	if err != nil {
		b.Fatal(err)
	}
	gw := httptest.NewServer(g.Handler())
	defer gw.Close()

	for _, c := range []struct{ name, url string }{
		{"bare", backend.URL + "/documents/0194c3a0-0000-7000-8000-000000000001"},
		{"gateway", gw.URL + "/documents/0194c3a0-0000-7000-8000-000000000001"},
	} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			for b.Loop() {
				fetch(b, client, c.url)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					fetch(b, client, c.url)
				}
			})
		})
	}
}

func fetch(b *testing.B, client *http.Client, url string) {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}
