package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// echoed is what a test backend answers: who it is and what it received.
type echoed struct {
	Backend       string `json:"backend"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	RequestID     string `json:"request_id"`
	XForwardedFor string `json:"x_forwarded_for"`
	Host          string `json:"host"`
}

// backend is a test upstream: it echoes requests as JSON and answers
// /health/ready with readyStatus.
type backend struct {
	name        string
	srv         *httptest.Server
	readyStatus atomic.Int32
	status      atomic.Int32 // status for proxied requests; 0 = 200
	retryAfter  atomic.Bool  // send Retry-After with status (a "busy" answer)
	hits        atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.readyStatus.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			w.WriteHeader(int(b.readyStatus.Load()))
			return
		}
		b.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		if b.retryAfter.Load() {
			w.Header().Set("Retry-After", "1")
		}
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		_ = json.NewEncoder(w).Encode(echoed{Backend: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			RequestID: r.Header.Get("X-Request-ID"), XForwardedFor: r.Header.Get("X-Forwarded-For"), Host: r.Host})
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// startGateway runs g (health checks included) behind an httptest server
// until the test ends.
func startGateway(t *testing.T, cfg *Config) (*Gateway, *httptest.Server) {
	t.Helper()
	g, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return g, srv
}

// quietChecks makes active checks effectively never repeat, for tests about
// something else.
func quietChecks(c *Config) *Config {
	for i := range c.Services {
		c.Services[i].HealthCheck.Interval = time.Hour
	}
	return c
}

func get(t *testing.T, client *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decodeEcho(t *testing.T, b []byte) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("backend answer %q: %v", b, err)
	}
	return e
}

func TestRoutesSendEachPathToItsServiceWithPathKept(t *testing.T) {
	doc, sig, search, rt := newBackend(t, "document"), newBackend(t, "signature"), newBackend(t, "search"), newBackend(t, "realtime")
	_, gw := startGateway(t, quietChecks(DefaultFor(map[string][]string{
		"document": {doc.srv.URL}, "signature": {sig.srv.URL}, "search": {search.srv.URL}, "realtime": {rt.srv.URL},
	})))
	cases := []struct {
		path, backend string
	}{
		{"/documents", "document"},
		{"/documents?skip=0&limit=5", "document"},
		{"/documents/0194c3a0-0000-7000-8000-000000000001", "document"},
		{"/documents/0194c3a0-0000-7000-8000-000000000001/stats", "document"},
		{"/documents/0194c3a0-0000-7000-8000-000000000001/signatures", "signature"},
		{"/signatures", "signature"},
		{"/signatures/abc", "signature"},
		{"/search?q=sales", "search"},
		{"/suggest?q=sa", "search"},
		{"/aggregations/status", "search"},
		{"/ws/abc", "realtime"},
		{"/ws", "realtime"},
		{"/ws?since=5", "realtime"},
		{"/auth/token?user_id=u", "realtime"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, body := get(t, gw.Client(), gw.URL+c.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			e := decodeEcho(t, body)
			if e.Backend != c.backend {
				t.Fatalf("routed to %s, want %s", e.Backend, c.backend)
			}
			wantPath, wantQuery, _ := strings.Cut(c.path, "?")
			if e.Path != wantPath || e.Query != wantQuery {
				t.Fatalf("upstream saw %s?%s, want %s?%s", e.Path, e.Query, wantPath, wantQuery)
			}
		})
	}
	t.Run("an unknown path is a JSON 404", func(t *testing.T) {
		resp, body := get(t, gw.Client(), gw.URL+"/nope")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"not_found"`) {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
}

func TestRequestIDAndForwardedHeadersReachTheUpstream(t *testing.T) {
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	_, gw := startGateway(t, cfg)

	resp, body := get(t, gw.Client(), gw.URL+"/documents", "X-Request-ID", "client-chosen-id", "X-Forwarded-For", "6.6.6.6")
	e := decodeEcho(t, body)
	if e.RequestID != "client-chosen-id" || resp.Header.Values("X-Request-ID")[0] != "client-chosen-id" || len(resp.Header.Values("X-Request-ID")) != 1 {
		t.Fatalf("request id: upstream saw %q, client got %q", e.RequestID, resp.Header.Values("X-Request-ID"))
	}
	// The client is not a trusted proxy, so its X-Forwarded-For is replaced.
	if e.XForwardedFor != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q, want the peer 127.0.0.1", e.XForwardedFor)
	}
	if !strings.HasPrefix(doc.srv.URL, "http://"+e.Host) {
		t.Fatalf("Host = %q, want the upstream's", e.Host)
	}

	resp, body = get(t, gw.Client(), gw.URL+"/documents")
	e = decodeEcho(t, body)
	if len(e.RequestID) != 32 || resp.Header.Get("X-Request-ID") != e.RequestID {
		t.Fatalf("created request id: upstream %q, client %q", e.RequestID, resp.Header.Get("X-Request-ID"))
	}
}

func TestForwardedForChainIsKeptFromTrustedProxies(t *testing.T) {
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	_, gw := startGateway(t, cfg)
	_, body := get(t, gw.Client(), gw.URL+"/documents", "X-Forwarded-For", "203.0.113.7")
	if e := decodeEcho(t, body); e.XForwardedFor != "203.0.113.7, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q", e.XForwardedFor)
	}
}

func TestCORSPreflightIsAnsweredAtTheGateway(t *testing.T) {
	doc := newBackend(t, "document")
	_, gw := startGateway(t, quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}})))

	req, _ := http.NewRequest(http.MethodOptions, gw.URL+"/documents", nil)
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Access-Control-Request-Method", "PATCH")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-request-id")
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight status %d", resp.StatusCode)
	}
	// The default is any origin, hence no credentials (see below).
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" ||
		h.Get("Access-Control-Max-Age") != "3600" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-request-id") {
		t.Fatalf("preflight headers: %v", h)
	}
	if doc.hits.Load() != 0 {
		t.Fatalf("preflight reached the upstream")
	}

	resp, _ = get(t, gw.Client(), gw.URL+"/documents", "Origin", "http://app.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Fatalf("actual request CORS headers: %v", resp.Header)
	}

	// Access-Control-Allow-Credentials goes only to origins configured by
	// name, never with "any origin" (before, "*" with credentials echoed
	// every origin with credentials: any web page could act with a user's
	// cookies). No origin configured is no cross-origin access at all.
	t.Run("credentials only for named origins, never with any origin", func(t *testing.T) {
		for _, c := range []struct {
			name                  string
			origins               []string
			origin                string
			wantOrigin, wantCreds string
		}{
			{"any origin", []string{"*"}, "http://evil.example", "*", ""},
			{"a named origin", []string{"https://docs.example"}, "https://docs.example", "https://docs.example", "true"},
			{"a named origin beside any", []string{"https://docs.example", "*"}, "https://docs.example", "https://docs.example", "true"},
			{"another origin beside a named one and any", []string{"https://docs.example", "*"}, "http://evil.example", "*", ""},
			{"no origin configured", nil, "http://evil.example", "", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
				cfg.CORS.Origins, cfg.CORS.Credentials = c.origins, true
				_, gw := startGateway(t, cfg)
				for _, method := range []string{http.MethodOptions, http.MethodGet} {
					req, _ := http.NewRequest(method, gw.URL+"/documents", nil)
					req.Header.Set("Origin", c.origin)
					if method == http.MethodOptions {
						req.Header.Set("Access-Control-Request-Method", "PATCH")
						req.Header.Set("Access-Control-Request-Headers", "authorization")
					}
					resp, err := gw.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if o, cr := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials"); o != c.wantOrigin || cr != c.wantCreds {
						t.Fatalf("%s: Allow-Origin %q Allow-Credentials %q, want %q %q", method, o, cr, c.wantOrigin, c.wantCreds)
					}
				}
			})
		}
	})

	t.Run("an origin outside a configured list gets no CORS headers", func(t *testing.T) {
		cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
		cfg.CORS.Origins = []string{"https://docs.example"}
		_, gw := startGateway(t, cfg)
		resp, _ := get(t, gw.Client(), gw.URL+"/documents", "Origin", "http://evil.example")
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("Access-Control-Allow-Origin = %q for a foreign origin", v)
		}
		resp, _ = get(t, gw.Client(), gw.URL+"/documents", "Origin", "https://docs.example")
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "https://docs.example" {
			t.Fatalf("Access-Control-Allow-Origin = %q for the allowed origin", v)
		}
	})
}

func TestRateLimitAnswers429WithRetryAfterPerClient(t *testing.T) {
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	cfg.RateLimit = RateLimit{Requests: 3, Window: time.Minute}
	cfg.TrustedProxies = []string{"127.0.0.1"}
	_, gw := startGateway(t, cfg)
	for i := range 3 {
		if resp, body := get(t, gw.Client(), gw.URL+"/documents"); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get(t, gw.Client(), gw.URL+"/documents")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"rate_limited"`) {
		t.Fatalf("4th request: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another client (seen through a trusted proxy) has its own budget.
	if resp, body := get(t, gw.Client(), gw.URL+"/documents", "X-Forwarded-For", "198.51.100.9"); resp.StatusCode != http.StatusOK {
		t.Fatalf("other client: %d %s", resp.StatusCode, body)
	}
	// Health probes from the limited client are never limited.
	for _, path := range []string{"/health/live", "/health/ready", "/health/live", "/health/ready"} {
		if resp, body := get(t, gw.Client(), gw.URL+path); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s from a rate-limited client: %d %s", path, resp.StatusCode, body)
		}
	}
	// Only the gateway's own probes are exempt: another /health/ path
	// (which a user's routes could send upstream) is limited like the rest.
	if resp, body := get(t, gw.Client(), gw.URL+"/health/anything"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("/health/anything from a rate-limited client: %d %s (want 429)", resp.StatusCode, body)
	}
}

// Issue 11 §9: the gateway's logger already carries service=gateway; the
// proxied service goes under its own key, so no line has "service" twice.
func TestGatewayLogLinesCarryTheServiceKeyOnce(t *testing.T) {
	var buf testenv.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("service", "gateway")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {"http://127.0.0.1:1"}, "signature": {"http://127.0.0.1:1"},
		"search": {"http://127.0.0.1:1"}, "realtime": {"http://127.0.0.1:1"}}))
	g, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g.Handler())
	t.Cleanup(gw.Close)
	resp, _ := get(t, gw.Client(), gw.URL+"/documents")
	if resp.StatusCode < 500 {
		t.Fatalf("an unreachable upstream answered %d", resp.StatusCode)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log line for the upstream failure")
	}
	for _, l := range lines {
		if n := strings.Count(l, `"service":`); n != 1 {
			t.Fatalf("%d service keys in %s", n, l)
		}
	}
}

func TestBodyOverTheLimitIs413(t *testing.T) {
	doc := newBackend(t, "document")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}}))
	cfg.MaxBodyBytes = 1024
	_, gw := startGateway(t, cfg)
	big := strings.Repeat("x", 4096)
	cases := []struct {
		name string
		body io.Reader
	}{
		{"declared by Content-Length", strings.NewReader(big)},
		{"streamed without a length", io.MultiReader(strings.NewReader(big))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := gw.Client().Post(gw.URL+"/documents", "application/json", c.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"code":"too_large"`) {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
	resp, err := gw.Client().Post(gw.URL+"/documents", "application/json", strings.NewReader(`{"title":"small"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("small body: %d", resp.StatusCode)
	}
}

func upstreamsOf(t *testing.T, g *Gateway, service string) []api.Upstream {
	t.Helper()
	rec := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/upstreams", nil))
	var out api.GatewayUpstreams
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("admin /upstreams: %v: %s", err, rec.Body)
	}
	for _, s := range out.Services {
		if s.Name == service {
			return s.Upstreams
		}
	}
	t.Fatalf("admin /upstreams has no service %s", service)
	return nil
}

func twoDocumentUpstreams(a, b *backend) *Config {
	return DefaultFor(map[string][]string{"document": {a.srv.URL, b.srv.URL}, "signature": {a.srv.URL}, "search": {a.srv.URL}, "realtime": {a.srv.URL}})
}

func TestUpstreamFailingHealthReadyIsSkippedUntilItRecovers(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := twoDocumentUpstreams(a, b)
	for i := range cfg.Services {
		cfg.Services[i].HealthCheck = HealthCheck{Path: "/health/ready", Interval: 20 * time.Millisecond, Timeout: time.Second, UnhealthyThreshold: 2, HealthyThreshold: 2}
	}
	g, gw := startGateway(t, cfg)
	a.readyStatus.Store(http.StatusServiceUnavailable)
	testenv.WaitFor(t, "a marked unhealthy", func() bool { return !upstreamsOf(t, g, "document")[0].Healthy })

	for range 10 {
		if _, body := get(t, gw.Client(), gw.URL+"/documents"); decodeEcho(t, body).Backend != "b" {
			t.Fatalf("an unhealthy upstream got a request")
		}
	}
	if st := upstreamsOf(t, g, "document")[0]; st.LastCheckErr == "" || st.Available {
		t.Fatalf("admin status of the unhealthy upstream: %+v", st)
	}

	a.readyStatus.Store(http.StatusOK)
	testenv.WaitFor(t, "a healthy again", func() bool { return upstreamsOf(t, g, "document")[0].Healthy })
	seen := map[string]bool{}
	for range 4 {
		_, body := get(t, gw.Client(), gw.URL+"/documents")
		seen[decodeEcho(t, body).Backend] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("round robin after recovery reached %v", seen)
	}

	t.Run("with no healthy upstream all of them are used (panic threshold)", func(t *testing.T) {
		a.readyStatus.Store(http.StatusServiceUnavailable)
		b.readyStatus.Store(http.StatusServiceUnavailable)
		testenv.WaitFor(t, "both unhealthy", func() bool {
			u := upstreamsOf(t, g, "document")
			return !u[0].Healthy && !u[1].Healthy
		})
		seen := map[string]bool{}
		for range 4 {
			resp, body := get(t, gw.Client(), gw.URL+"/documents")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			seen[decodeEcho(t, body).Backend] = true
		}
		if !seen["a"] || !seen["b"] {
			t.Fatalf("panic mode reached %v; want both", seen)
		}
	})
}

func TestNoUpstreamToSendToIs503WithRetryAfter(t *testing.T) {
	a := newBackend(t, "a")
	cfg := DefaultFor(map[string][]string{"document": {a.srv.URL}, "signature": {a.srv.URL}, "search": {a.srv.URL}, "realtime": {a.srv.URL}})
	off := 0
	cfg.Services[0].PanicThreshold = &off
	cfg.Services[0].HealthCheck = HealthCheck{Path: "/health/ready", Interval: 20 * time.Millisecond, Timeout: time.Second, UnhealthyThreshold: 1, HealthyThreshold: 1}
	g, gw := startGateway(t, cfg)
	a.readyStatus.Store(http.StatusServiceUnavailable)
	testenv.WaitFor(t, "a unhealthy", func() bool { return !upstreamsOf(t, g, "document")[0].Healthy })
	resp, body := get(t, gw.Client(), gw.URL+"/documents")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestUpstreamFailingRequestsIsEjected(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := quietChecks(twoDocumentUpstreams(a, b))
	cfg.Services[0].Passive = Passive{Failures: 2, Ejection: time.Hour, Statuses: []int{http.StatusBadGateway}}
	g, gw := startGateway(t, cfg)
	a.status.Store(http.StatusBadGateway) // healthy by /health/ready, failing real requests

	for range 4 { // round robin: two of these reach a, which ejects it
		get(t, gw.Client(), gw.URL+"/documents")
	}
	st := upstreamsOf(t, g, "document")[0]
	if st.EjectedUntil == nil || st.Available || !st.Healthy {
		t.Fatalf("a should be ejected while still healthy: %+v", st)
	}
	hitsA := a.hits.Load()
	for range 10 {
		if resp, body := get(t, gw.Client(), gw.URL+"/documents"); resp.StatusCode != http.StatusOK || decodeEcho(t, body).Backend != "b" {
			t.Fatalf("after ejection got %d %s", resp.StatusCode, body)
		}
	}
	if a.hits.Load() != hitsA {
		t.Fatalf("the ejected upstream still got requests")
	}
}

// deadURL is an address nothing listens on: connections are refused.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// hangUpURL accepts connections, reads what arrives and closes them
// without an answer: the request reached an upstream, which may have acted
// on it.
// It counts the POSTs it received.
func hangUpURL(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var seen atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				if strings.HasPrefix(string(buf[:n]), "POST ") {
					seen.Add(1)
				}
				c.Close()
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &seen
}

// TestARequestThatNeverReachedAnUpstreamIsRetriedWhateverItsMethod: a
// refused connection (an instance that has just stopped) is retried on
// another upstream for every method, a POST with a body included, since
// nothing reached an upstream; a POST whose connection was made and then
// lost is not, since the upstream may have acted on it.
func TestARequestThatNeverReachedAnUpstreamIsRetriedWhateverItsMethod(t *testing.T) {
	b := newBackend(t, "b")
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {deadURL(t), b.srv.URL}, "signature": {b.srv.URL}, "search": {b.srv.URL}, "realtime": {b.srv.URL}}))
	cfg.Services[0].Passive.Failures = 1000 // keep the dead one in rotation
	g, gw := startGateway(t, cfg)

	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		for i := range 4 {
			req, _ := http.NewRequest(method, gw.URL+"/documents/x", strings.NewReader(`{"title":"t"}`))
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %d: %d %s", method, i, resp.StatusCode, body)
			}
			if e := decodeEcho(t, body); e.Method != method {
				t.Fatalf("%s %d reached b as %s", method, i, e.Method)
			}
		}
	}
	// Round robin sent every other request to the dead upstream: each was
	// refused there and answered by b.
	if dead := upstreamsOf(t, g, "document")[0]; dead.TotalFailures < 8 {
		t.Fatalf("the dead upstream recorded %d failures; want every other of 20 requests refused there", dead.TotalFailures)
	}

	hangUp, seen := hangUpURL(t)
	cfg = quietChecks(DefaultFor(map[string][]string{"document": {hangUp, b.srv.URL}, "signature": {b.srv.URL}, "search": {b.srv.URL}, "realtime": {b.srv.URL}}))
	cfg.Services[0].Passive.Failures = 1000
	_, gw = startGateway(t, cfg)
	var ok, bad int
	for range 6 {
		resp, err := gw.Client().Post(gw.URL+"/documents", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusBadGateway:
			bad++
		default:
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	}
	// Round robin sends half the POSTs to the upstream that hangs up; they
	// reached it, so they are never sent again and fail with 502.
	if ok != 3 || bad != 3 || seen.Load() != 3 {
		t.Fatalf("POSTs: %d ok, %d 502, %d received by the upstream that hangs up; want 3, 3 and 3", ok, bad, seen.Load())
	}
}

func TestNoFailedGETsWhenAnUpstreamStopsMidLoad(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := twoDocumentUpstreams(a, b)
	cfg.Services[0].HealthCheck.Interval = 50 * time.Millisecond
	cfg.RateLimit.Requests = 0 // one client making a load; not what this test is about
	g, gw := startGateway(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var total, failed atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := gw.Client().Get(gw.URL + "/documents/x")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint("status ", resp.StatusCode))
				}
			}
		})
	}
	testenv.WaitFor(t, "load on both upstreams", func() bool { return a.hits.Load() > 200 && b.hits.Load() > 200 })
	a.srv.CloseClientConnections() // abrupt: in-flight connections cut
	a.srv.Close()
	stoppedAt := b.hits.Load()
	testenv.WaitFor(t, "load continuing on b", func() bool { return b.hits.Load() > stoppedAt+500 })
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d GETs failed; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	// The stopped upstream did fail requests; the retries hid them.
	if st := upstreamsOf(t, g, "document")[0]; st.TotalFailures == 0 {
		t.Fatalf("the stopped upstream recorded no failure, so nothing was retried: %+v", st)
	}
	t.Logf("%d GETs, none failed", total.Load())
}

func TestWebSocketIsProxiedBothWaysAndOutlivesTimeouts(t *testing.T) {
	closedByServer := make(chan error, 1)
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				closedByServer <- err
				return
			}
			if string(msg) == "bye" {
				c.Close(websocket.StatusNormalClosure, "bye")
				return
			}
			if err := c.Write(r.Context(), typ, []byte(r.URL.Path+":"+string(msg))); err != nil {
				return
			}
		}
	}))
	t.Cleanup(ws.Close)
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {ws.URL}, "signature": {ws.URL}, "search": {ws.URL}, "realtime": {ws.URL}}))
	cfg.Timeouts.ResponseHeader = 50 * time.Millisecond
	_, gw := startGateway(t, cfg)
	ctx := context.Background()
	wsURL := "ws" + strings.TrimPrefix(gw.URL, "http") + "/ws/doc-1"

	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer c.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "/ws/doc-1:"+msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	echo("hello")
	// Idle longer than the upstream response-header timeout: an established
	// connection is not subject to it.
	time.Sleep(200 * time.Millisecond)
	echo("still here")

	t.Run("the server closing reaches the client", func(t *testing.T) {
		_ = c.Write(ctx, websocket.MessageText, []byte("bye"))
		_, _, err := c.Read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("client read after server close: %v", err)
		}
	})

	t.Run("the client closing reaches the server", func(t *testing.T) {
		c2, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		c2.Close(websocket.StatusGoingAway, "done")
		select {
		case err := <-closedByServer:
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("server saw %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("server never saw the client's close")
		}
	})
}

func TestStoppingTheGatewayClosesWebSockets(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
	}))
	t.Cleanup(ws.Close)
	g, err := New(quietChecks(DefaultFor(map[string][]string{"document": {ws.URL}, "signature": {ws.URL}, "search": {ws.URL}, "realtime": {ws.URL}})), logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	cancel()
	<-done
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	_, _, err = c.Read(rctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client connection still open after the gateway stopped: %v", err)
	}
}

func TestAdminListsRoutesAndStatus(t *testing.T) {
	doc := newBackend(t, "document")
	g, _ := startGateway(t, quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {doc.srv.URL}, "realtime": {doc.srv.URL}})))
	admin := g.AdminHandler()
	for _, path := range []string{"/status", "/routes", "/upstreams", "/health/ready"} {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/routes", nil))
	if !strings.Contains(rec.Body.String(), `{"route":"signatures","service":"signature","pattern":"/documents/{id}/signatures"}`) {
		t.Fatalf("/routes: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/routes", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("admin accepted a POST: %d", rec.Code)
	}
}

func TestAdminStatusIsNotOKWhileAServiceHasNoUpstream(t *testing.T) {
	doc := newBackend(t, "document")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	cfg := quietChecks(DefaultFor(map[string][]string{"document": {doc.srv.URL}, "signature": {doc.srv.URL}, "search": {dead.URL}, "realtime": {doc.srv.URL}}))
	for i := range cfg.Services {
		if cfg.Services[i].Name == "search" {
			cfg.Services[i].HealthCheck.Interval = 20 * time.Millisecond
		}
	}
	g, _ := startGateway(t, cfg)
	admin := g.AdminHandler()
	var st api.GatewayStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
		st = api.GatewayStatus{}
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Services["search"].Available == 0 {
			break
		}
	}
	if st.Services["search"].Available != 0 {
		t.Fatalf("the dead search upstream is still available: %+v", st)
	}
	if st.Status != "degraded" || len(st.Unavailable) != 1 || st.Unavailable[0] != "search" {
		t.Fatalf("/status with no search upstream: status %q, unavailable %v; want degraded, [search]", st.Status, st.Unavailable)
	}
}
