// Package gateway is docstream's edge: one reverse proxy (port 8000) that
// routes by path to the services, balances over several upstreams of each
// with active and passive health checks, proxies WebSockets, and applies
// CORS, per-client rate limiting, a body limit and request IDs; plus a
// read-only admin API (port 8001). It plays the part Kong played in the
// reference system and is configured the same declarative way (YAML).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"github.com/rs/cors"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
)

// Gateway is the proxy with its routing table and upstream pools.
type Gateway struct {
	cfg     *Config
	log     *slog.Logger
	pools   map[string]*pool
	order   []string // service names in config order
	trusted []netip.Prefix
	handler http.Handler
	started time.Time

	// life ends when Run returns; upgraded (WebSocket) connections, which
	// http.Server.Shutdown does not track, are closed then.
	life context.Context
	stop context.CancelFunc
}

// New builds a gateway from a configuration, validating it first.
func New(cfg *Config, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	trusted, err := httpx.ParsePrefixes(strings.Join(cfg.TrustedProxies, ","))
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: log, pools: map[string]*pool{}, trusted: trusted, started: time.Now()}
	g.life, g.stop = context.WithCancel(context.Background())
	transport := &http.Transport{
		Proxy:       nil, // upstreams are direct; never an environment proxy
		DialContext: (&net.Dialer{Timeout: cfg.Timeouts.Connect, KeepAlive: 30 * time.Second}).DialContext,
		// Under a burst every connection opened for it is kept for the
		// next request: over the idle cap, each answer would close one and
		// the next request open another (measured with a cap of 128: ~100
		// new connections/s to the services at 1,500 users of the load
		// mix), a handshake and a server goroutine each, just when CPU is
		// scarcest.
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader,
		ExpectContinueTimeout: time.Second,
	}
	proxies := map[string]http.Handler{}
	for _, s := range cfg.Services {
		p := newPool(s, transport)
		g.pools[s.Name] = p
		g.order = append(g.order, s.Name)
		proxies[s.Name] = g.proxy(p)
	}
	mux, err := buildMux(cfg, func(service string) http.Handler { return proxies[service] })
	if err != nil {
		return nil, err
	}
	for pattern, h := range cfg.Handlers {
		if err := register(mux, pattern, h); err != nil {
			return nil, fmt.Errorf("gateway handler %q: %v", pattern, err)
		}
	}
	mux.Handle("GET /health/live", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.Handle("GET /health/ready", g.readyHandler())

	var h http.Handler = mux
	if cfg.Authenticate != nil {
		h = cfg.Authenticate(h)
	}
	if cfg.App != nil {
		h = withApp(cfg.App, h)
	}
	if cfg.MaxBodyBytes > 0 {
		h = limitBody(cfg.MaxBodyBytes, h)
	}
	if cfg.RateLimit.Requests > 0 {
		h = exceptHealth(h, httprate.LimitBy(cfg.RateLimit.Requests, cfg.RateLimit.Window,
			func(r *http.Request) (string, error) {
				return httprate.CanonicalizeIP(httpx.ClientIP(r, g.trusted)), nil
			},
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				httpx.RespondErr(w, r, log, apperr.E(apperr.RateLimited,
					"rate limit of %d requests per %v exceeded; retry later", cfg.RateLimit.Requests, cfg.RateLimit.Window))
			}),
		)(h))
	}
	if cfg.CORS.enabled() {
		h = corsMiddleware(cfg.CORS)(h)
	}
	g.handler = httpx.Wrap("gateway", log, h)
	return g, nil
}

// Handler is the proxy (port 8000).
func (g *Gateway) Handler() http.Handler { return g.handler }

// Run probes upstream health until ctx is done, then closes upgraded
// connections still open.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.stop()
	done := make(chan struct{}, len(g.pools))
	for _, p := range g.pools {
		go func() {
			p.runChecks(ctx)
			done <- struct{}{}
		}()
	}
	for range g.pools {
		<-done
	}
	return nil
}

func (g *Gateway) proxy(p *pool) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Keep the chain only from a proxy we trust; otherwise the
			// client could forge it.
			if xff := pr.In.Header["X-Forwarded-For"]; xff != nil && httpx.TrustedPeer(pr.In, g.trusted) {
				pr.Out.Header["X-Forwarded-For"] = xff
			}
			pr.SetXForwarded()
			// The upstream is chosen by the pool's RoundTrip.
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", p.svc.Name
		},
		Transport:     p,
		BufferPool:    copyBuffers,
		FlushInterval: -1, // stream responses (event streams, large downloads) as they come
		ModifyResponse: func(resp *http.Response) error {
			// The gateway already set X-Request-ID (the same value) on the
			// response; without this the client would see it twice.
			resp.Header.Del(httpx.RequestIDHeader)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.proxyError(w, r, p, err)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			// An upgraded connection outlives the server's graceful drain;
			// tie it to the gateway's life so stopping closes it both ways.
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(g.life, cancel)
			defer stop()
			r = r.WithContext(ctx)
		}
		rp.ServeHTTP(w, r)
	})
}

// proxyError answers a request the upstream did not: what went wrong
// becomes its apperr code (the one place a code meets its status).
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, p *pool, err error) {
	if errors.Is(err, errNoUpstream) {
		// Nothing to send to is answered at once, as "busy": a client that
		// retries after a second may find an upstream back.
		w.Header().Set("Retry-After", "1")
	}
	httpx.RespondErr(w, r, g.log, g.upstreamError(r, p, err))
}

func (g *Gateway) upstreamError(r *http.Request, p *pool, err error) error {
	var nerr net.Error
	switch {
	case isBodyTooLarge(err):
		return tooLarge(g.cfg.MaxBodyBytes)
	case errors.Is(err, httpx.ErrBodyTooSlow), httpx.BodyTooSlow(r):
		return apperr.Wrap(apperr.Invalid, err, "request body arrived too slowly")
	case r.Context().Err() != nil:
		return apperr.Wrap(apperr.Canceled, err, "the client closed the request")
	case errors.Is(err, errNoUpstream):
		return apperr.Wrap(apperr.Unavailable, err, "service %s has no healthy upstream", p.svc.Name)
	case errors.As(err, &nerr) && nerr.Timeout():
		return apperr.Wrap(apperr.GatewayTimeout, err, "service %s did not answer in time", p.svc.Name)
	default:
		return apperr.Wrap(apperr.BadGateway, err, "service %s could not be reached", p.svc.Name)
	}
}

func tooLarge(limit int64) error {
	return apperr.E(apperr.TooLarge, "request body is larger than %d bytes", limit)
}

// readyHandler reports each service's availability (at least one upstream
// healthy and not ejected). A service with none is "degraded", not "not
// ready": the gateway still serves every other route, and taking it out of
// its own load balancer would not bring that service back.
func (g *Gateway) readyHandler() http.Handler {
	checks := make([]httpx.Check, 0, len(g.order))
	for _, name := range g.order {
		p := g.pools[name]
		checks = append(checks, httpx.Check{Name: name, Probe: func(context.Context) error {
			now := p.now()
			for _, u := range p.ups {
				if u.available(now) {
					return nil
				}
			}
			return errNoUpstream
		}})
	}
	mux := http.NewServeMux()
	httpx.Routes(mux, checks...)
	return mux
}

// exceptHealth sends the gateway's own probes (GET or HEAD of
// /health/live and /health/ready) to plain and everything else to limited:
// a load balancer or orchestrator probing from one address must not have
// its probes refused (and the gateway taken out) because of the rate limit,
// while any other /health/ path a user's routes may proxy stays limited.
func exceptHealth(plain, limited http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := r.URL.Path == "/health/live" || r.URL.Path == "/health/ready"
		if probe && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			plain.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
}

// withApp sends the web application's paths (/ itself and /app, /app/…)
// to app and every other path to next, so that the application never
// shadows an API path: GET /documents stays the API, an unknown path its
// JSON 404.
func withApp(app, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/" || p == "/app" || strings.HasPrefix(p, "/app/") {
			app.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over limit: at once when Content-Length says so,
// else when the proxy reads past it (the proxy error handler answers 413).
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			httpx.RespondErr(w, r, nil, tooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// corsMiddleware applies the cross-origin policy. Credentials
// (Access-Control-Allow-Credentials, which lets a browser send cookies and
// read the answer) go only to the origins listed by name, never together
// with "any origin": "*" answers any other origin with
// "Access-Control-Allow-Origin: *" and no credentials. (Echoing any origin
// with credentials, as Kong's plugin does, lets every web page act with a
// signed-in user's cookies.) No origin configured: no cross-origin access.
// Bearer tokens need no credentials mode: the Authorization header is an
// allowed request header.
func corsMiddleware(c CORS) func(http.Handler) http.Handler {
	base := cors.Options{
		AllowedMethods: c.Methods,
		AllowedHeaders: c.Headers,
		ExposedHeaders: c.ExposedHeaders,
		MaxAge:         c.MaxAge,
	}
	var named []string
	anyOrigin := false
	for _, o := range c.Origins {
		if o == "*" {
			anyOrigin = true
		} else if o != "" {
			named = append(named, o)
		}
	}
	var listed, open *cors.Cors
	if len(named) > 0 {
		o := base
		o.AllowedOrigins, o.AllowCredentials = named, c.Credentials
		listed = cors.New(o)
	}
	if anyOrigin {
		o := base
		o.AllowedOrigins, o.AllowCredentials = []string{"*"}, false
		open = cors.New(o)
	}
	return func(h http.Handler) http.Handler {
		switch {
		case listed == nil && open == nil:
			return h
		case open == nil:
			return listed.Handler(h)
		case listed == nil:
			return open.Handler(h)
		}
		lh, oh := listed.Handler(h), open.Handler(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if listed.OriginAllowed(r) {
				lh.ServeHTTP(w, r)
				return
			}
			oh.ServeHTTP(w, r)
		})
	}
}

// copyBuffers recycles ReverseProxy's 32 KiB copy buffers, which it
// otherwise allocates once per request.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte    { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
