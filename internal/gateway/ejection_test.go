package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendMany sends n GETs (or POSTs) to /documents and returns the statuses seen.
func sendMany(t *testing.T, gwURL string, client *http.Client, method string, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for range n {
		req, _ := http.NewRequest(method, gwURL+"/documents", nil)
		if method == http.MethodPost {
			req, _ = http.NewRequest(method, gwURL+"/documents", strings.NewReader(`{}`))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen[resp.StatusCode]++
	}
	return seen
}

func TestClientErrorsAndBusyAnswersNeverEject(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		retryAfter bool
	}{
		{"400", http.StatusBadRequest, false},
		{"404", http.StatusNotFound, false},
		{"422", http.StatusUnprocessableEntity, false},
		{"503 with Retry-After", http.StatusServiceUnavailable, true},
		{"429 with Retry-After", http.StatusTooManyRequests, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			cfg := quietChecks(twoDocumentUpstreams(a, b))
			cfg.Services[0].Passive = Passive{Failures: 1, Ejection: time.Hour}
			cfg.Services[0].Retries = 0 // see a's answers as they are
			g, gw := startGateway(t, cfg)
			a.status.Store(int32(c.status))
			a.retryAfter.Store(c.retryAfter)

			seen := sendMany(t, gw.URL, gw.Client(), http.MethodGet, 10)
			if seen[c.status] != 5 || seen[http.StatusOK] != 5 {
				t.Fatalf("statuses %v; want 5 × %d (a, never ejected) and 5 × 200 (b)", seen, c.status)
			}
			if st := upstreamsOf(t, g, "document")[0]; st.EjectedUntil != nil || !st.Available {
				t.Fatalf("a was ejected: %+v", st)
			}
		})
	}
}

func TestTheLastAvailableUpstreamIsNeverEjected(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := quietChecks(twoDocumentUpstreams(a, b))
	cfg.Services[0].Passive = Passive{Failures: 1, Ejection: time.Hour, Statuses: []int{http.StatusInternalServerError}}
	cfg.Services[0].Retries = 0
	g, gw := startGateway(t, cfg)
	a.status.Store(http.StatusInternalServerError)
	b.status.Store(http.StatusInternalServerError)

	// a fails first and is ejected; b then fails alone and stays, so the
	// service keeps an upstream and every answer is b's own.
	seen := sendMany(t, gw.URL, gw.Client(), http.MethodGet, 6)
	if seen[http.StatusInternalServerError] != 6 {
		t.Fatalf("statuses %v; want only the upstreams' own 500s", seen)
	}
	ups := upstreamsOf(t, g, "document")
	available := 0
	for _, u := range ups {
		if u.Available {
			available++
		}
	}
	if available != 1 {
		t.Fatalf("available upstreams %d; want exactly 1 (the last is kept): %+v", available, ups)
	}
}

func TestBusyIdempotentRequestIsRetriedOnAnotherUpstream(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := quietChecks(twoDocumentUpstreams(a, b))
	g, gw := startGateway(t, cfg)
	a.status.Store(http.StatusServiceUnavailable)
	a.retryAfter.Store(true)

	if seen := sendMany(t, gw.URL, gw.Client(), http.MethodGet, 6); seen[http.StatusOK] != 6 {
		t.Fatalf("GET statuses %v; want every busy answer retried on b", seen)
	}
	// A POST is never sent twice: a's busy answer reaches the client as it is.
	if seen := sendMany(t, gw.URL, gw.Client(), http.MethodPost, 6); seen[http.StatusServiceUnavailable] != 3 || seen[http.StatusOK] != 3 {
		t.Fatalf("POST statuses %v; want 3 × 503 (a) and 3 × 200 (b)", seen)
	}
	if st := upstreamsOf(t, g, "document")[0]; !st.Available {
		t.Fatalf("busy upstream was taken out: %+v", st)
	}

	// With both busy, the last busy answer goes back with its Retry-After.
	b.status.Store(http.StatusServiceUnavailable)
	b.retryAfter.Store(true)
	resp, body := get(t, gw.Client(), gw.URL+"/documents")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("both busy: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// Two upstreams failing at the same moment: the "last available" check
// and the ejection are one step, so one of them always stays, even with
// the panic threshold off (which would otherwise still route to both).
func TestConcurrentFailuresNeverEjectEveryUpstream(t *testing.T) {
	off := 0
	svc := Service{Name: "document", Upstreams: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"},
		PanicThreshold: &off, Passive: Passive{Failures: 1, Ejection: time.Hour}}
	for round := range 2000 {
		p := newPool(svc, http.DefaultTransport)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, u := range p.ups {
			wg.Go(func() { <-start; p.recordResult(u, outcomeFailed, "connection refused") })
		}
		close(start)
		wg.Wait()
		if p.pick(nil) == nil {
			t.Fatalf("round %d: both upstreams ejected; the last available one must stay", round)
		}
	}
}
