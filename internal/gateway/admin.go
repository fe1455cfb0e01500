package gateway

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/httpx"
)

// AdminHandler is the read-only admin API (port 8001): /status, /routes,
// /upstreams, plus health and metrics. Nothing here changes the gateway;
// configuration changes go through the YAML file and a restart. The
// answers are package api's types, which the public client decodes. In
// required mode (Config.AdminAuthorize) the routes need an admin; health
// and metrics stay open for probes and scrapers.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	httpx.Routes(mux)
	for pattern, h := range g.adminRoutes() {
		var hh http.Handler = h
		if g.cfg.AdminAuthorize != nil {
			hh = g.cfg.AdminAuthorize(hh)
		}
		mux.Handle(pattern, hh)
	}
	return httpx.Wrap("gateway-admin", g.log, mux)
}

// AdminRoutes lists the admin API's routes (besides health and metrics),
// for the public client's test that each has a method.
func AdminRoutes() []string { return slices.Sorted(maps.Keys((&Gateway{}).adminRoutes())) }

func (g *Gateway) adminRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /status": func(w http.ResponseWriter, r *http.Request) {
			services := map[string]api.UpstreamCount{}
			var unavailable []string
			for _, name := range g.order {
				p := g.pools[name]
				n := api.UpstreamCount{Upstreams: len(p.ups)}
				for _, s := range p.status() {
					if s.Available {
						n.Available++
					}
				}
				services[name] = n
				if n.Available == 0 {
					unavailable = append(unavailable, name)
				}
			}
			status := "ok"
			if len(unavailable) > 0 {
				status = "degraded"
			}
			httpx.Respond(w, http.StatusOK, api.GatewayStatus{
				Status:        status,
				Unavailable:   unavailable,
				StartedAt:     g.started.UTC(),
				UptimeSeconds: int64(time.Since(g.started).Seconds()),
				Services:      services,
				RateLimit:     api.RateLimit{Requests: g.cfg.RateLimit.Requests, WindowSeconds: g.cfg.RateLimit.Window.Seconds()},
				MaxBodyBytes:  g.cfg.MaxBodyBytes,
			})
		},
		"GET /routes": func(w http.ResponseWriter, r *http.Request) {
			httpx.Respond(w, http.StatusOK, api.GatewayRoutes{Routes: routeTable(g.cfg)})
		},
		"GET /upstreams": func(w http.ResponseWriter, r *http.Request) {
			out := api.GatewayUpstreams{Services: make([]api.ServiceUpstreams, 0, len(g.order))}
			for _, name := range g.order {
				p := g.pools[name]
				out.Services = append(out.Services, api.ServiceUpstreams{Name: name, Balance: p.svc.Balance,
					HealthCheck: p.svc.HealthCheck.Path + " every " + p.svc.HealthCheck.Interval.String(), Upstreams: p.status()})
			}
			httpx.Respond(w, http.StatusOK, out)
		}}
}
