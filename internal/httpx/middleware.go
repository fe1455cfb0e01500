package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/logging"
)

// RequestIDHeader is passed through from the client (or the gateway) or created.
const RequestIDHeader = "X-Request-ID"

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_http_requests_total",
		Help: "HTTP requests handled, by service, method, route and status code.",
	}, []string{"service", "method", "route", "code"})
	latency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "docstream_http_request_duration_seconds",
		Help:    "HTTP request latency, by service, method and route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"service", "method", "route"})
	inflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_http_requests_in_flight",
		Help: "HTTP requests being served, by service.",
	}, []string{"service"})
)

// Wrap applies the middleware every service uses, outermost first: request
// ID, panic recovery, metrics and access log.
func Wrap(service string, log *slog.Logger, h http.Handler) http.Handler {
	g := inflight.WithLabelValues(service)
	m := &routeMetrics{service: service}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The canonical key, directly: Header.Get and Set would
		// canonicalize "X-Request-ID" (a new string) on every request.
		var id string
		if v := r.Header[requestIDKey]; len(v) > 0 {
			id = v[0]
		}
		if !validRequestID(id) {
			id = NewRequestID()
			r.Header[requestIDKey] = []string{id}
		}
		w.Header()[requestIDKey] = []string{id}
		r = r.WithContext(logging.WithRequestID(r.Context(), id))

		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if r.RequestURI != "*" && r.URL.Path != cleanPath(r.URL.Path) {
			// ServeMux would answer a redirect to the cleaned path, which
			// turns /documents/../../etc/passwd into a probe that "works";
			// no route of ours has dot segments or empty ones.
			RespondErr(sw, r, log, apperr.E(apperr.NotFound, "no resource at a path with dot or empty segments"))
			return
		}
		start := time.Now()
		g.Inc()
		defer func() {
			g.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request", "panic", p, "path", LogPath(r.URL.Path))
				if !sw.wrote {
					RespondErr(sw, r, log, apperr.E(apperr.Internal, "internal error"))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			c, l := m.of(r.Method, route, sw.status)
			c.Inc()
			l.Observe(d.Seconds())
			// Enabled first: the line's arguments cost on every request
			// even when debug is off.
			if log.Enabled(r.Context(), slog.LevelDebug) && !strings.HasPrefix(r.URL.Path, "/health/") && r.URL.Path != "/metrics" {
				log.DebugContext(r.Context(), "request", "method", r.Method, "path", LogPath(r.URL.Path),
					"status", sw.status, "duration_ms", float64(d.Microseconds())/1000)
			}
		}()
		h.ServeHTTP(sw, r)
	})
}

// requestIDKey is RequestIDHeader as Go's header maps key it.
var requestIDKey = http.CanonicalHeaderKey(RequestIDHeader)

// routeMetrics keeps one service's request counter and latency observer per
// (method, route, status): WithLabelValues hashes every label on every
// call, which showed in the GET profile.
type routeMetrics struct {
	service string
	m       sync.Map // routeKey → *routeSeries
}

type routeKey struct {
	method, route string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func (rm *routeMetrics) of(method, route string, status int) (prometheus.Counter, prometheus.Observer) {
	method = methodLabel(method)
	k := routeKey{method, route, status}
	if s, ok := rm.m.Load(k); ok {
		rs := s.(*routeSeries)
		return rs.requests, rs.latency
	}
	rs := &routeSeries{requests: requests.WithLabelValues(rm.service, method, route, strconv.Itoa(status)),
		latency: latency.WithLabelValues(rm.service, method, route)}
	// Methods and routes are bounded: unmatched paths share "unmatched",
	// methods outside HTTP's own share "OTHER" (net/http accepts any token
	// as a method, so a client could otherwise grow this map and the
	// series without end).
	s, _ := rm.m.LoadOrStore(k, rs)
	rs = s.(*routeSeries)
	return rs.requests, rs.latency
}

// methodLabel is method for HTTP's standard methods, else "OTHER".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// validRequestID accepts what request IDs are made of in practice (UUIDs,
// hex, base64, trace IDs such as "Root=1-5e1b-…") and nothing that could be
// markup or break a log line, since the ID is echoed and logged.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.:+=/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cleanPath is the form ServeMux redirects to: dot segments resolved,
// repeated slashes collapsed, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// NewRequestID returns a random 16-byte hex ID.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status code. It forwards Flush and Unwrap so that
// streaming responses and WebSocket hijacking keep working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ClientIP returns the address of the client: the left-most X-Forwarded-For
// entry when the direct peer is one of the trusted proxies, else the peer.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	xff := r.Header.Get("X-Forwarded-For")
	if xff == "" || !contains(trusted, peer) {
		return peer.String()
	}
	first, _, _ := strings.Cut(xff, ",")
	if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
		return a.Unmap().String()
	}
	return peer.String()
}

// TrustedPeer reports whether r comes straight from one of the trusted
// proxies, whose X-Forwarded-For may then be believed.
func TrustedPeer(r *http.Request, trusted []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && contains(trusted, a.Unmap())
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses a comma-separated list of CIDRs or addresses.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Prefixes is a list of CIDRs, given as one comma-separated flag value
// (see ParsePrefixes); a single address prints without its /32 or /128.
type Prefixes []netip.Prefix

// Set parses s (pflag.Value).
func (p *Prefixes) Set(s string) error {
	l, err := ParsePrefixes(s)
	if err != nil {
		return err
	}
	*p = l
	return nil
}

func (p *Prefixes) String() string {
	parts := make([]string, 0, len(*p))
	for _, x := range *p {
		if x.IsSingleIP() {
			parts = append(parts, x.Addr().String())
		} else {
			parts = append(parts, x.String())
		}
	}
	return strings.Join(parts, ",")
}

// Type names the flag's value in --help, as for any text flag.
func (p *Prefixes) Type() string { return "string" }

// MustPrefixes is ParsePrefixes for literals known to be valid.
func MustPrefixes(s string) Prefixes {
	l, err := ParsePrefixes(s)
	if err != nil {
		panic(err)
	}
	return l
}
