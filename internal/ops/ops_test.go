package ops

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/docstream/docstream/api"
)

// module serves one module's /health/ready and, from reg, /metrics,
// counting the /metrics reads.
func module(t *testing.T, reg *prometheus.Registry, scraped *atomic.Int64) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","checks":{"postgres":{"status":"ok"}}}`))
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scraped.Add(1)
		metrics.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// requests registers docstream_http_requests_total with n requests of
// service, one of them a 500.
func requests(reg *prometheus.Registry, service string, n float64) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docstream_http_requests_total"}, []string{"service", "code"})
	reg.MustRegister(c)
	c.WithLabelValues(service, "200").Add(n - 1)
	c.WithLabelValues(service, "500").Add(1)
}

// The modules of the view's own process share one registry: it is
// gathered once per view, and their /metrics are never read, while a
// module of another process is still scraped over HTTP. Both give the
// same figures.
func TestLocalTargetsAreGatheredOnceAndRemoteOnesScraped(t *testing.T) {
	shared := prometheus.NewRegistry()
	requests(shared, "document", 7) // the shared registry holds both local modules' series
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "docstream_bus_consumer_pending"}, []string{"consumer"})
	shared.MustRegister(pending)
	pending.WithLabelValues(api.IndexerConsumer).Set(42)
	var gathered, localScraped, remoteScraped atomic.Int64
	gatherer := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		gathered.Add(1)
		return shared.Gather()
	})
	doc := module(t, shared, &localScraped)
	idx := module(t, shared, &localScraped)
	remoteReg := prometheus.NewRegistry()
	requests(remoteReg, "search", 4)
	search := module(t, remoteReg, &remoteScraped)

	o := New(Config{Gatherer: gatherer, Targets: []Target{
		{Name: "document", URL: doc.URL, Local: true},
		{Name: "indexer", URL: idx.URL, Local: true},
		{Name: "search", URL: search.URL},
	}})
	for range 2 {
		v := o.Gather(context.Background())
		if len(v.Services) != 3 {
			t.Fatalf("services: %+v", v.Services)
		}
		for _, s := range v.Services {
			if s.Ready != "ok" || s.Error != "" {
				t.Errorf("%s: ready %q, error %q", s.Name, s.Ready, s.Error)
			}
		}
		d, s := v.Services[0], v.Services[2]
		if d.Requests == nil || *d.Requests != 7 || d.Errors == nil || *d.Errors != 1 {
			t.Errorf("document (local) requests %v errors %v, want 7 and 1", d.Requests, d.Errors)
		}
		if s.Requests == nil || *s.Requests != 4 || s.Errors == nil || *s.Errors != 1 {
			t.Errorf("search (remote) requests %v errors %v, want 4 and 1", s.Requests, s.Errors)
		}
		if v.Indexer.Pending == nil || *v.Indexer.Pending != 42 {
			t.Errorf("indexer pending %v, want 42 (from the local registry)", v.Indexer.Pending)
		}
	}
	if n := gathered.Load(); n != 2 {
		t.Errorf("the local registry was gathered %d times for 2 views, want 2", n)
	}
	if n := localScraped.Load(); n != 0 {
		t.Errorf("a local module's /metrics was read %d times, want 0", n)
	}
	if n := remoteScraped.Load(); n != 2 {
		t.Errorf("the remote module's /metrics was read %d times for 2 views, want 2", n)
	}
}

// A local module that does not answer its readiness is unreachable, as a
// remote one is, even though its metrics are at hand.
func TestALocalTargetThatDoesNotAnswerIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	o := New(Config{Gatherer: prometheus.NewRegistry(), Targets: []Target{{Name: "document", URL: srv.URL, Local: true}}})
	v := o.Gather(context.Background())
	if s := v.Services[0]; s.Ready != "unreachable" || !strings.Contains(s.Error, "health/ready") || s.Requests != nil {
		t.Fatalf("%+v", s)
	}
}

// A collector of the process's registry that fails is shown on the local
// modules as their error, and the families it did gather are still read
// (as promhttp serves them).
func TestALocalCollectorErrorIsShownAndTheRestRead(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests(reg, "document", 3)
	var none atomic.Int64
	doc := module(t, reg, &none)
	gatherer := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, _ := reg.Gather()
		return fams, errors.New("collector broke")
	})
	v := New(Config{Gatherer: gatherer, Targets: []Target{{Name: "document", URL: doc.URL, Local: true}}}).Gather(context.Background())
	s := v.Services[0]
	if s.Ready != "ok" || !strings.Contains(s.Error, "collector broke") {
		t.Fatalf("ready %q, error %q; want ok and the collector's error", s.Ready, s.Error)
	}
	if s.Requests == nil || *s.Requests != 3 {
		t.Fatalf("requests %v, want 3 from the families gathered", s.Requests)
	}
}
