package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/docstream/docstream/internal/httpx"
)

// Config is the gateway's declarative configuration: the services it
// balances over and the routes that lead to them, plus the edge policies
// (CORS, rate limit, body limit, timeouts). It is read from YAML (see
// Default for the shape) and checked by Validate before anything starts.
type Config struct {
	Services       []Service `yaml:"services"`
	Routes         []Route   `yaml:"routes"`
	CORS           CORS      `yaml:"cors"`
	RateLimit      RateLimit `yaml:"rate_limit"`
	MaxBodyBytes   int64     `yaml:"max_body_bytes"`
	TrustedProxies []string  `yaml:"trusted_proxies"`
	Timeouts       Timeouts  `yaml:"timeouts"`
	// Handlers are routes the gateway answers itself (ServeMux pattern →
	// handler, e.g. "GET /ops"), beside the proxied routes and under the
	// same edge policies; a pattern that collides with a route is an
	// error. Each handler checks its own credential. Not from YAML.
	Handlers map[string]http.Handler `yaml:"-"`
	// Authenticate, when set (--auth-at-gateway), verifies credentials
	// before a request is proxied (inside the rate limit and CORS, so a
	// flood of bad tokens is limited and a preflight needs none). The
	// services verify again in any case. Not from YAML.
	Authenticate func(http.Handler) http.Handler `yaml:"-"`
	// App, when set, answers / and everything under /app (the web
	// application, internal/webapp) before authentication: its pages and
	// assets are public, the API calls they make carry the credential.
	// Not from YAML.
	App http.Handler `yaml:"-"`
	// AdminAuthorize, when set (required mode), wraps the admin API's
	// routes (/status, /routes, /upstreams; not its health and metrics):
	// they name every upstream and its errors, which is for admins. Not
	// from YAML.
	AdminAuthorize func(http.Handler) http.Handler `yaml:"-"`
}

// Service is one backend service: a set of interchangeable upstream URLs.
type Service struct {
	Name      string   `yaml:"name"`
	Upstreams []string `yaml:"upstreams"`
	// Balance is round_robin (default) or least_requests.
	Balance     string      `yaml:"balance"`
	HealthCheck HealthCheck `yaml:"health_check"`
	Passive     Passive     `yaml:"passive"`
	// Retries is how many other upstreams a request may be retried on:
	// any request whose connection was never made (a dial error), and an
	// idempotent one without a body after any connection error or a busy
	// answer (503/429 with Retry-After).
	Retries int `yaml:"retries"`
	// PanicThreshold (percent, default 50) is Envoy's panic threshold: when
	// fewer than this share of the upstreams are available, requests are
	// balanced over all of them, healthy or not, because sending to a
	// possibly slow upstream beats answering "no upstream" for a whole
	// service. 0 turns it off.
	PanicThreshold *int `yaml:"panic_threshold"`
}

// HealthCheck is the active check: GET Path on every upstream each Interval.
// An upstream is taken out after UnhealthyThreshold consecutive failures and
// put back after HealthyThreshold consecutive successes.
type HealthCheck struct {
	Path               string        `yaml:"path"`
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"`
	UnhealthyThreshold int           `yaml:"unhealthy_threshold"`
	HealthyThreshold   int           `yaml:"healthy_threshold"`
}

// Passive ejects an upstream for Ejection after Failures consecutive failed
// proxied requests (connection errors, or a 5xx status in Statuses). A
// client's mistake (4xx) never counts, and neither does a "busy" answer
// (503 or 429 carrying Retry-After): shedding load is the upstream working
// as designed, and ejecting it would move its load onto the others. The
// last available upstream of a service is never ejected.
type Passive struct {
	Failures int           `yaml:"failures"`
	Ejection time.Duration `yaml:"ejection"`
	Statuses []int         `yaml:"statuses"`
}

// Route sends requests whose path matches one of Paths to Service, path
// unchanged. A plain path like /documents matches that path and everything
// under it; a path with {wildcards} (Go ServeMux syntax) matches exactly, or
// everything under it when it ends in "/". When several routes match, the
// most specific pattern wins (ServeMux precedence), so
// /documents/{id}/signatures beats /documents.
type Route struct {
	Name    string   `yaml:"name"`
	Service string   `yaml:"service"`
	Paths   []string `yaml:"paths"`
	// Methods, if set, restricts the route to these methods.
	Methods []string `yaml:"methods"`
}

// CORS is the cross-origin policy, applied before routing.
type CORS struct {
	Enabled        *bool    `yaml:"enabled"`
	Origins        []string `yaml:"origins"`
	Methods        []string `yaml:"methods"`
	Headers        []string `yaml:"headers"`
	ExposedHeaders []string `yaml:"exposed_headers"`
	Credentials    bool     `yaml:"credentials"`
	MaxAge         int      `yaml:"max_age"`
}

// RateLimit allows Requests per Window per client IP (sliding window);
// Requests 0 disables it.
type RateLimit struct {
	Requests int           `yaml:"requests"`
	Window   time.Duration `yaml:"window"`
}

// Timeouts bound the upstream side. None applies to an upgraded (WebSocket)
// connection once it is established.
type Timeouts struct {
	Connect        time.Duration `yaml:"connect"`
	ResponseHeader time.Duration `yaml:"response_header"`
}

// Builtin is the configuration used without a YAML file: one service per
// service named by routes (in their order) with upstreams[service], the
// routes, a CORS policy like the reference's Kong cors plugin, and the
// limits of DefaultFlags. The routes come from the module table
// (internal/app), the one place a target declares what it serves.
func Builtin(routes []Route, upstreams map[string][]string) *Config {
	d := DefaultFlags()
	c := &Config{
		Routes: routes,
		CORS: CORS{
			Origins:        splitList(d.CORSOrigins),
			Methods:        []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
			Headers:        []string{"Accept", "Accept-Version", "Authorization", "Content-Length", "Content-MD5", "Content-Type", "Date", "X-Auth-Token", "X-Request-ID", "If-Match", "If-None-Match", "Idempotency-Key"},
			ExposedHeaders: []string{"X-Auth-Token", "X-Request-ID", "X-Commit-LSN", "ETag", "Location", "Retry-After", "X-Next-Cursor", "Link", "Idempotent-Replayed"},
			Credentials:    true,
			MaxAge:         3600,
		},
		RateLimit:      RateLimit{Requests: d.RateLimit, Window: d.RateWindow},
		MaxBodyBytes:   d.MaxBody,
		TrustedProxies: splitList(d.TrustedProxies),
	}
	seen := map[string]bool{}
	for _, r := range routes {
		if !seen[r.Service] {
			seen[r.Service] = true
			c.Services = append(c.Services, Service{Name: r.Service, Upstreams: upstreams[r.Service]})
		}
	}
	c.applyDefaults()
	return c
}

// Load reads and validates the YAML configuration at path. Unknown fields
// are errors, so a typo does not silently fall back to a default.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("gateway config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML, fills defaults and validates. A policy the YAML
// omits keeps its documented default (the rate limit and the body limit of
// DefaultFlags); only a value written out, 0 included, changes it: an
// operator who leaves rate_limit out of a file has not asked for no limit.
func Parse(b []byte) (*Config, error) {
	d := DefaultFlags()
	c := Config{RateLimit: RateLimit{Requests: d.RateLimit, Window: d.RateWindow}, MaxBodyBytes: d.MaxBody}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	for i := range c.Services {
		s := &c.Services[i]
		if s.Balance == "" {
			s.Balance = BalanceRoundRobin
		}
		h := &s.HealthCheck
		if h.Path == "" {
			h.Path = "/health/ready"
		}
		if h.Interval == 0 {
			h.Interval = 2 * time.Second
		}
		if h.Timeout == 0 {
			h.Timeout = time.Second
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = 2
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = 1
		}
		p := &s.Passive
		if p.Failures == 0 {
			p.Failures = 3
		}
		if p.Ejection == 0 {
			p.Ejection = 10 * time.Second
		}
		if p.Statuses == nil {
			p.Statuses = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
		}
		if s.PanicThreshold == nil {
			v := 50
			s.PanicThreshold = &v
		}
		if s.Retries == 0 {
			s.Retries = 2
		}
	}
	if c.RateLimit.Window == 0 {
		c.RateLimit.Window = time.Second
	}
	if c.Timeouts.Connect == 0 {
		c.Timeouts.Connect = 5 * time.Second
	}
	if c.Timeouts.ResponseHeader == 0 {
		c.Timeouts.ResponseHeader = 60 * time.Second
	}
}

// Balancing policies.
const (
	BalanceRoundRobin    = "round_robin"
	BalanceLeastRequests = "least_requests"
)

// Validate reports every problem at once, each naming the field by its
// YAML path (services[0].upstreams[1]: …).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if len(c.Services) == 0 {
		bad("services", "at least one service is required")
	}
	names := map[string]bool{}
	for i, s := range c.Services {
		f := fmt.Sprintf("services[%d]", i)
		switch {
		case s.Name == "":
			bad(f+".name", "is required")
		case names[s.Name]:
			bad(f+".name", "%q is defined twice", s.Name)
		}
		names[s.Name] = true
		if len(s.Upstreams) == 0 {
			bad(f+".upstreams", "at least one upstream URL is required (service %q)", s.Name)
		}
		for j, raw := range s.Upstreams {
			u, err := url.Parse(raw)
			switch {
			case err != nil:
				bad(fmt.Sprintf("%s.upstreams[%d]", f, j), "%q is not a URL: %v", raw, err)
			case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
				bad(fmt.Sprintf("%s.upstreams[%d]", f, j), "%q must be http://host:port or https://host:port", raw)
			case u.Path != "" && u.Path != "/", u.RawQuery != "":
				bad(fmt.Sprintf("%s.upstreams[%d]", f, j), "%q must not have a path or query: the request path is forwarded unchanged", raw)
			}
		}
		if s.Balance != BalanceRoundRobin && s.Balance != BalanceLeastRequests {
			bad(f+".balance", "%q is not one of %s, %s", s.Balance, BalanceRoundRobin, BalanceLeastRequests)
		}
		h := s.HealthCheck
		if !strings.HasPrefix(h.Path, "/") {
			bad(f+".health_check.path", "%q must start with /", h.Path)
		}
		if h.Interval < 0 || h.Timeout < 0 {
			bad(f+".health_check", "interval and timeout must be positive")
		}
		if h.UnhealthyThreshold < 0 || h.HealthyThreshold < 0 {
			bad(f+".health_check", "thresholds must be positive")
		}
		if s.Passive.Failures < 0 || s.Passive.Ejection < 0 {
			bad(f+".passive", "failures and ejection must be positive")
		}
		for k, st := range s.Passive.Statuses {
			if st < 500 || st > 599 {
				bad(fmt.Sprintf("%s.passive.statuses[%d]", f, k), "%d is not a 5xx status (a client's mistake never counts against an upstream)", st)
			}
		}
		if t := s.PanicThreshold; t != nil && (*t < 0 || *t > 100) {
			bad(f+".panic_threshold", "%d is not a percentage (0 to 100; 0 turns it off)", *t)
		}
		if s.Retries < 0 {
			bad(f+".retries", "must not be negative")
		}
	}
	if len(c.Routes) == 0 {
		bad("routes", "at least one route is required")
	}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if r.Service == "" {
			bad(f+".service", "is required")
		} else if !names[r.Service] {
			bad(f+".service", "%q is not a defined service", r.Service)
		}
		if len(r.Paths) == 0 {
			bad(f+".paths", "at least one path is required")
		}
		for j, p := range r.Paths {
			if !strings.HasPrefix(p, "/") {
				bad(fmt.Sprintf("%s.paths[%d]", f, j), "%q must start with /", p)
			}
		}
		for j, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " /") {
				bad(fmt.Sprintf("%s.methods[%d]", f, j), "%q is not an upper-case HTTP method", m)
			}
		}
	}
	if c.CORS.MaxAge < 0 {
		bad("cors.max_age", "must not be negative")
	}
	if c.RateLimit.Requests < 0 {
		bad("rate_limit.requests", "must not be negative (0 disables rate limiting)")
	}
	if c.RateLimit.Window <= 0 {
		bad("rate_limit.window", "must be positive")
	}
	if c.MaxBodyBytes < 0 {
		bad("max_body_bytes", "must not be negative (0: no limit)")
	}
	for i, p := range c.TrustedProxies {
		if _, err := httpx.ParsePrefixes(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if c.Timeouts.Connect < 0 || c.Timeouts.ResponseHeader < 0 {
		bad("timeouts", "must be positive")
	}
	if len(errs) == 0 {
		// Pattern conflicts are found by building the routing table.
		if _, err := buildMux(c, func(string) http.Handler { return http.NotFoundHandler() }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enabled: CORS is on unless explicitly disabled.
func (c CORS) enabled() bool { return c.Enabled == nil || *c.Enabled }
