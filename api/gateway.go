package api

import "time"

// The gateway's admin API (port 8001, --gateway-admin-addr) is read-only:
// what the gateway runs with and how its upstreams are doing.

// GatewayStatus is the answer of GET /status.
type GatewayStatus struct {
	// Status is ok when every service has an upstream taking requests,
	// degraded when one has none (Unavailable names them): the gateway
	// answers that service's routes with 502/503 until one comes back.
	Status        string    `json:"status"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	// Services counts each service's upstreams, by name.
	Services     map[string]UpstreamCount `json:"services"`
	RateLimit    RateLimit                `json:"rate_limit"`
	MaxBodyBytes int64                    `json:"max_body_bytes"` // 0: no limit
	// Unavailable lists the services with no upstream taking requests.
	Unavailable []string `json:"unavailable,omitempty"`
}

// UpstreamCount is how many upstreams a service has and how many take
// requests now (healthy and not ejected).
type UpstreamCount struct {
	Upstreams int `json:"upstreams"`
	Available int `json:"available"`
}

// RateLimit is the gateway's per-client-IP limit: Requests per window
// (sliding); Requests 0 is off.
type RateLimit struct {
	Requests      int     `json:"requests"`
	WindowSeconds float64 `json:"window_seconds"`
}

// GatewayRoutes is the answer of GET /routes: every registered pattern, in
// the order of the configuration.
type GatewayRoutes struct {
	Routes []GatewayRoute `json:"routes"`
}

// GatewayRoute is one http.ServeMux pattern the gateway sends to a
// service.
type GatewayRoute struct {
	Route   string `json:"route"` // the route's name in the configuration
	Service string `json:"service"`
	Pattern string `json:"pattern"`
}

// GatewayUpstreams is the answer of GET /upstreams.
type GatewayUpstreams struct {
	Services []ServiceUpstreams `json:"services"`
}

// ServiceUpstreams is one service's balancing, health check and upstreams.
type ServiceUpstreams struct {
	Name        string     `json:"name"`
	Balance     string     `json:"balance"`      // round_robin or least_requests
	HealthCheck string     `json:"health_check"` // "<path> every <interval>"
	Upstreams   []Upstream `json:"upstreams"`
}

// Upstream is one upstream's state in the gateway.
type Upstream struct {
	URL           string     `json:"url"`
	Available     bool       `json:"available"` // healthy and not ejected
	Healthy       bool       `json:"healthy"`   // by the last active check
	EjectedUntil  *time.Time `json:"ejected_until,omitempty"`
	InFlight      int64      `json:"in_flight"`
	LastCheck     *time.Time `json:"last_check,omitempty"`
	LastCheckErr  string     `json:"last_check_error,omitempty"`
	LastProxyErr  string     `json:"last_proxy_error,omitempty"`
	TotalRequests int64      `json:"total_requests"`
	TotalFailures int64      `json:"total_failures"`
}
