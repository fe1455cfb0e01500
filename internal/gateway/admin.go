package gateway

import (
	"net/http"
	"time"

	"github.com/docstream/docstream/internal/httpx"
)

// AdminHandler is the read-only admin API (port 8001): /status, /routes,
// /upstreams, plus health and metrics. Nothing here changes the gateway;
// configuration changes go through the YAML file and a restart.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	httpx.Routes(mux)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		services := map[string]any{}
		for _, name := range g.order {
			p := g.pools[name]
			avail := 0
			for _, s := range p.status() {
				if s.Available {
					avail++
				}
			}
			services[name] = map[string]int{"upstreams": len(p.ups), "available": avail}
		}
		httpx.Respond(w, http.StatusOK, map[string]any{
			"status":         "ok",
			"started_at":     g.started.UTC(),
			"uptime_seconds": int64(time.Since(g.started).Seconds()),
			"services":       services,
			"rate_limit":     g.cfg.RateLimit,
			"max_body_bytes": g.cfg.MaxBodyBytes,
		})
	})
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		httpx.Respond(w, http.StatusOK, map[string]any{"routes": routeTable(g.cfg)})
	})
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) {
		type svc struct {
			Name      string           `json:"name"`
			Balance   string           `json:"balance"`
			Health    string           `json:"health_check"`
			Upstreams []upstreamStatus `json:"upstreams"`
		}
		out := make([]svc, 0, len(g.order))
		for _, name := range g.order {
			p := g.pools[name]
			out = append(out, svc{Name: name, Balance: p.svc.Balance,
				Health: p.svc.HealthCheck.Path + " every " + p.svc.HealthCheck.Interval.String(), Upstreams: p.status()})
		}
		httpx.Respond(w, http.StatusOK, map[string]any{"services": out})
	})
	return httpx.Wrap("gateway-admin", g.log, mux)
}
