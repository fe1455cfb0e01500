package httpx

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docstream/docstream/api"
)

// ReadyTimeout bounds every dependency probe of /health/ready. It is below
// the gateway checker's default timeout (1 s), so a slow dependency shows
// as "down" in the answer instead of making the probe itself time out and
// the gateway take the service out.
const ReadyTimeout = 500 * time.Millisecond

// Check is one dependency whose state /health/ready reports.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
	// Critical marks what the process exists to do (a consumer's
	// progress, an active CDC engine's publishing): while it fails,
	// /health/ready answers 503 "unavailable", so an orchestrator or an
	// alert sees an instance that is up but useless. Other checks are
	// detail under a 200 (see Routes).
	Critical bool
}

// Routes registers what every listener answers besides its own API:
// /health/live, /health/ready, /metrics, and the JSON error for an unknown
// path or method (Unmatched, at "/"; mux must not have its own "/").
//
// Ready means "this process can serve": it has started (its listener is
// open, which happens after migrations) and is not draining (see Serve). A
// dependency that is down is detail under a 200 ("degraded"), not a 503: the
// service still answers what it can (reads from cache, signing with the
// status update in the outbox, a clear 503 for the rest), whereas a 503 here
// would make the gateway take the only upstream out and answer nothing.
func Routes(mux *http.ServeMux, checks ...Check) {
	mux.Handle("/", Unmatched(mux))
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, http.StatusOK, api.Health{Status: "ok"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		results := make([]api.CheckResult, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				results[i] = api.CheckResult{Status: "ok"}
				var off Off
				switch err := probe(ctx, c.Probe); {
				case errors.As(err, &off):
					results[i] = api.CheckResult{Status: "off", Error: err.Error()}
				case err != nil:
					results[i] = api.CheckResult{Status: "down", Error: err.Error()}
				}
			})
		}
		wg.Wait()
		status, code := "ok", http.StatusOK
		byName := make(map[string]api.CheckResult, len(checks))
		for i, c := range checks {
			byName[c.Name] = results[i]
			switch {
			case results[i].Status != "down":
			case c.Critical:
				status, code = "unavailable", http.StatusServiceUnavailable
			case code == http.StatusOK:
				status = "degraded"
			}
		}
		Respond(w, code, api.Health{Status: status, Checks: byName})
	})
	mux.Handle("GET /metrics", promhttp.Handler())
}

// Off is what a check returns for a component deliberately not running in
// this configuration: its detail reads "off" with the reason, and the
// service is not degraded by it.
type Off string

func (o Off) Error() string { return string(o) }

// probe runs p, giving up when ctx is done even if p does not watch ctx.
func probe(ctx context.Context, p func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- p(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drainAware answers /health/ready with 503 once draining is set, so a
// load balancer stops sending new requests while in-flight ones finish,
// and closes each connection after its answer: a client holding a
// keep-alive connection would otherwise keep using this instance until
// the listener closes, and a request written on a connection the server
// is closing is one the client cannot safely retry. Closing after an
// answer (Connection: close) has no such race.
func drainAware(draining *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !draining.Load() {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if r.URL.Path == "/health/ready" {
			Respond(w, http.StatusServiceUnavailable, api.Health{Status: "draining"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
