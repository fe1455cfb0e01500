package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validYAML = `
services:
  - name: document
    upstreams: [http://127.0.0.1:8005, http://127.0.0.1:9005]
    balance: least_requests
    health_check: {interval: 3s}
  - name: signature
    upstreams: [http://127.0.0.1:8002]
routes:
  - name: documents
    service: document
    paths: [/documents]
  - name: signatures
    service: signature
    paths: [/signatures, "/documents/{id}/signatures"]
cors:
  origins: [https://docs.example]
  max_age: 600
rate_limit: {requests: 50, window: 10s}
`

func TestParseFillsDefaults(t *testing.T) {
	c, err := Parse([]byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Services[0]
	if d.Balance != BalanceLeastRequests || d.HealthCheck.Interval != 3*time.Second || d.HealthCheck.Path != "/health/ready" ||
		d.Passive.Failures != 3 || d.Retries != 2 || c.Services[1].Balance != BalanceRoundRobin {
		t.Fatalf("service defaults: %+v", d)
	}
	if c.RateLimit.Requests != 50 || c.RateLimit.Window != 10*time.Second || c.CORS.MaxAge != 600 {
		t.Fatalf("policies: %+v %+v", c.RateLimit, c.CORS)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"an unknown field", "services: []\nroutez: []\n", "field routez not found"},
		{"no services", "routes: [{service: x, paths: [/x]}]\n", "services: at least one service is required"},
		{"an upstream that is not a URL", "services: [{name: d, upstreams: ['ftp://h']}]\nroutes: [{service: d, paths: [/x]}]\n", "services[0].upstreams[0]"},
		{"an upstream with a path", "services: [{name: d, upstreams: ['http://h:1/base']}]\nroutes: [{service: d, paths: [/x]}]\n", "must not have a path"},
		{"a service without upstreams", "services: [{name: d}]\nroutes: [{service: d, paths: [/x]}]\n", "services[0].upstreams"},
		{"a service defined twice", "services: [{name: d, upstreams: ['http://h:1']}, {name: d, upstreams: ['http://h:2']}]\nroutes: [{service: d, paths: [/x]}]\n", "services[1].name: \"d\" is defined twice"},
		{"an unknown balancer", "services: [{name: d, upstreams: ['http://h:1'], balance: random}]\nroutes: [{service: d, paths: [/x]}]\n", "services[0].balance"},
		{"a route to an unknown service", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{service: e, paths: [/x]}]\n", "routes[0].service: \"e\" is not a defined service"},
		{"a relative route path", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{service: d, paths: [x]}]\n", "routes[0].paths[0]"},
		{"a bad duration", "services: [{name: d, upstreams: ['http://h:1'], health_check: {interval: soon}}]\nroutes: [{service: d, paths: [/x]}]\n", "soon"},
		{"a bad trusted proxy", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{service: d, paths: [/x]}]\ntrusted_proxies: [nope]\n", "trusted_proxies[0]"},
		{"two routes on the same path", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{name: one, service: d, paths: [/x]}, {name: two, service: d, paths: [/x]}]\n", "routes[1] (two): path \"/x\""},
		{"ambiguous wildcard routes", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{service: d, paths: ['/a/{x}']}, {service: d, paths: ['/{y}/b']}]\n", "routes[1]"},
		{"a 4xx counted against an upstream", "services: [{name: d, upstreams: ['http://h:1'], passive: {statuses: [404]}}]\nroutes: [{service: d, paths: [/x]}]\n", "services[0].passive.statuses[0]"},
		{"a panic threshold over 100", "services: [{name: d, upstreams: ['http://h:1'], panic_threshold: 150}]\nroutes: [{service: d, paths: [/x]}]\n", "services[0].panic_threshold"},
		{"a negative rate limit", "services: [{name: d, upstreams: ['http://h:1']}]\nroutes: [{service: d, paths: [/x]}]\nrate_limit: {requests: -1}\n", "rate_limit.requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte("services: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("gateway.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services[0].Upstreams) != 2 || c.CORS.MaxAge != 3600 || len(c.Routes) != 4 {
		t.Fatalf("example config: %+v", c)
	}
}

// TestAPolicyTheYAMLOmitsKeepsItsDefault: a file without rate_limit or
// max_body_bytes keeps the documented limits (it turned both off before);
// a zero written out still turns them off, and a rate limit given without
// its window keeps the default window.
func TestAPolicyTheYAMLOmitsKeepsItsDefault(t *testing.T) {
	const services = `
services:
  - name: document
    upstreams: ["http://127.0.0.1:8005"]
routes:
  - name: documents
    service: document
    paths: ["/documents"]
`
	d := DefaultFlags()
	for _, tc := range []struct {
		name, extra string
		requests    int
		window      time.Duration
		maxBody     int64
	}{
		{"omitted", "", d.RateLimit, d.RateWindow, d.MaxBody},
		{"written out as zero", "rate_limit: {requests: 0}\nmax_body_bytes: 0\n", 0, d.RateWindow, 0},
		{"requests without a window", "rate_limit: {requests: 5}\n", 5, d.RateWindow, d.MaxBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(services + tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if c.RateLimit.Requests != tc.requests || c.RateLimit.Window != tc.window || c.MaxBodyBytes != tc.maxBody {
				t.Fatalf("rate limit %+v, max body %d; want %d per %v and %d", c.RateLimit, c.MaxBodyBytes, tc.requests, tc.window, tc.maxBody)
			}
		})
	}
}
