package httpx

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one dependency probed by /health/ready. A failing Critical check
// makes the service not ready (503); a failing non-critical one is reported
// as degraded while the service keeps answering (200).
type Check struct {
	Name     string
	Critical bool
	Probe    func(ctx context.Context) error
}

type checkResult struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Routes registers what every listener answers besides its own API:
// /health/live, /health/ready, /metrics, and the JSON error for an unknown
// path or method (Unmatched, at "/"; mux must not have its own "/").
func Routes(mux *http.ServeMux, checks ...Check) {
	mux.Handle("/", Unmatched(mux))
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := "ok", http.StatusOK
		results := make(map[string]checkResult, len(checks))
		for _, c := range checks {
			if err := c.Probe(ctx); err != nil {
				results[c.Name] = checkResult{Status: "down", Error: err.Error()}
				if c.Critical {
					status, code = "unavailable", http.StatusServiceUnavailable
				} else if status == "ok" {
					status = "degraded"
				}
				continue
			}
			results[c.Name] = checkResult{Status: "ok"}
		}
		Respond(w, code, map[string]any{"status": status, "checks": results})
	})
	mux.Handle("GET /metrics", promhttp.Handler())
}
