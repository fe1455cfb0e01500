package httpx

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/spf13/pflag"
)

// ShutdownTimeout bounds how long in-flight requests may drain after SIGTERM.
const ShutdownTimeout = 15 * time.Second

// ServerConfig bounds what one client can hold of an HTTP listener: how
// long its headers and body may take, how long an idle keep-alive
// connection stays, and how many connections the listener keeps at once.
type ServerConfig struct {
	// ReadHeaderTimeout is the time from accepting a connection (or the end
	// of the previous request) to the end of the request headers.
	ReadHeaderTimeout time.Duration
	// A request body must keep arriving: a read waits at most
	// BodyIdleTimeout for data, and, after BodyGrace, the body must have
	// averaged at least MinBodyRate bytes per second since the request
	// began. A client trickling bytes to hold a connection is dropped; a
	// large upload over a slow link is not. MinBodyRate 0 turns the rate
	// rule off, BodyIdleTimeout 0 the idle rule.
	BodyIdleTimeout time.Duration
	BodyGrace       time.Duration
	MinBodyRate     int64
	// IdleTimeout closes a keep-alive connection with no request for this long.
	IdleTimeout time.Duration
	// MaxConns is the most connections one listener holds (upgraded
	// WebSockets included). Above it a connection is still accepted and
	// answered 503 with Retry-After and Connection: close, so a client
	// learns to come back instead of timing out in the accept backlog.
	// 0: no cap.
	MaxConns int
	// ShutdownDrain is how long a listener keeps serving after SIGTERM
	// while /health/ready answers 503, so that load balancers (the
	// gateway's health checks, an orchestrator's readiness probe) take the
	// instance out before it stops accepting: without it, requests routed
	// in the meantime meet a closed port. 0: stop accepting at once.
	ShutdownDrain time.Duration
}

// DefaultServerConfig is what RegisterFlags sets by default; tests and
// embedders start from it.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 10 * time.Second,
		BodyIdleTimeout:   30 * time.Second,
		BodyGrace:         10 * time.Second,
		MinBodyRate:       4 << 10,
		IdleTimeout:       120 * time.Second,
		// Above the 10,000 concurrent WebSockets the realtime service (and
		// the gateway in front of it) is built for.
		MaxConns: 16384,
		// Above the gateway's default detection time (two failed checks
		// 2 s apart).
		ShutdownDrain: 5 * time.Second,
	}
}

// RegisterFlags registers --http-* with the defaults of DefaultServerConfig.
// They apply to every HTTP listener of the process, each counted alone.
func (c *ServerConfig) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultServerConfig()
	fs.DurationVar(&c.ReadHeaderTimeout, "http-read-header-timeout", d.ReadHeaderTimeout, "longest a client may take to send a request's headers")
	fs.DurationVar(&c.BodyIdleTimeout, "http-body-idle-timeout", d.BodyIdleTimeout, "longest a request body may pause before the connection is dropped; 0: no limit")
	fs.DurationVar(&c.BodyGrace, "http-body-grace", d.BodyGrace, "time a request body may take before --http-body-min-rate applies")
	fs.Int64Var(&c.MinBodyRate, "http-body-min-rate", d.MinBodyRate, "bytes per second a request body must average after --http-body-grace, else the connection is dropped; 0: no minimum")
	fs.DurationVar(&c.IdleTimeout, "http-idle-timeout", d.IdleTimeout, "how long an idle keep-alive connection is kept")
	fs.DurationVar(&c.ShutdownDrain, "shutdown-drain", d.ShutdownDrain, "after SIGTERM, how long services keep serving with /health/ready answering 503 (and gRPC health NOT_SERVING) before they stop accepting, so load balancers move traffic away first; 0: stop at once")
	fs.IntVar(&c.MaxConns, "http-max-conns", d.MaxConns, "connections per HTTP listener (WebSockets included); above it new ones are answered 503 + Retry-After + Connection: close; 0: no cap")
}

// Serve serves h on ln under cfg until ctx is done, then drains in two
// steps: for cfg.ShutdownDrain it keeps serving with /health/ready
// answering 503 and every answer closing its connection (so keep-alive
// clients reconnect, through their balancer, elsewhere); then it stops
// accepting, lets in-flight requests finish (up to ShutdownTimeout) and
// returns. Long-lived connections (WebSockets) must watch ctx themselves.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, cfg ServerConfig) error {
	return serve(ctx, ln, h, log, cfg, nil)
}

// serve is Serve; drained, if not nil, ends the drain period early (tests).
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, cfg ServerConfig, drained <-chan struct{}) error {
	var draining atomic.Bool
	if cfg.MaxConns > 0 {
		ln = newCapListener(ln, cfg.MaxConns, log)
	}
	srv := &http.Server{
		Handler:           bodyDeadline(cfg, drainAware(&draining, h)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		// net/http's own lines (TLS handshake errors, a superfluous
		// WriteHeader) otherwise go to the standard log on stderr.
		ErrorLog: slog.NewLogLogger(log.With("logger", "net/http").Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	if cfg.ShutdownDrain > 0 {
		log.Info("draining: unready, still serving", "addr", ln.Addr().String(), "for", cfg.ShutdownDrain)
		t := time.NewTimer(cfg.ShutdownDrain)
		select {
		case <-t.C:
		case <-drained:
			t.Stop()
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		log.Warn("http shutdown did not drain in time", "addr", ln.Addr().String(), "err", err)
		_ = srv.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return nil
}

// ErrBodyTooSlow is what reading a request body returns once the client
// has fallen below the minimum rate or paused too long; the connection is
// dropped after the answer.
var ErrBodyTooSlow = errors.New("request body arrived too slowly")

var (
	connsOpen = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_http_connections_open",
		Help: "Connections held by an HTTP listener, by listen address.",
	}, []string{"listener"})
	connsRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_http_connections_refused_total",
		Help: "Connections answered 503 because the listener was at its connection cap, by listen address.",
	}, []string{"listener"})
	slowBodies = promauto.NewCounter(prometheus.CounterOpts{
		Name: "docstream_http_slow_bodies_total",
		Help: "Requests whose body arrived below the minimum rate or paused too long, and were dropped.",
	})
)

// bodyDeadline keeps a read deadline on the connection while the handler
// reads a request body, moved forward as bytes arrive: at most
// BodyIdleTimeout from each read, and never later than the time by which
// the bytes so far should have arrived at MinBodyRate (after BodyGrace).
// http.Server's own ReadTimeout cannot do this: it is one fixed deadline
// for the whole request, which either lets a trickle hold the connection
// or cuts off a large upload on a slow link.
func bodyDeadline(cfg ServerConfig, h http.Handler) http.Handler {
	if cfg.BodyIdleTimeout <= 0 && cfg.MinBodyRate <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		// No reset when h returns: the server discards what is left of the
		// body under the same deadline, and sets its own for the next request.
		b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), cfg: cfg, start: time.Now()}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
		r.Body = b
		defer b.handlerReturned()
		h.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	cfg   ServerConfig
	start time.Time

	// Reads are sequential (io.Reader), possibly on another goroutine than
	// the handler's (a reverse proxy's transport), which may go on reading
	// after the handler has returned.
	n    int64
	slow bool
	// deadline is the current read's (Unix ns; 0 once the body is read),
	// for BodyTooSlow on the handler's goroutine.
	deadline atomic.Int64

	mu   sync.Mutex
	done bool // read to the end, or the handler returned: deadlines are no longer ours
}

// handlerReturned stops every change to the connection's deadline: it may
// already be reading the next request, under the server's own deadlines.
func (b *deadlineBody) handlerReturned() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// setDeadline sets the connection's read deadline to d unless the body is
// done; it reports whether it did.
func (b *deadlineBody) setDeadline(d time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	_ = b.rc.SetReadDeadline(d)
	return true
}

type bodyKey struct{}

// BodyTooSlow reports whether r's body broke the body rules, as a read
// returning ErrBodyTooSlow does. It is for a caller that saw only the
// request's context canceled: net/http cancels it on the same read
// timeout, and that may reach a reverse proxy first.
func BodyTooSlow(r *http.Request) bool {
	b, _ := r.Context().Value(bodyKey{}).(*deadlineBody)
	if b == nil {
		return false
	}
	d := b.deadline.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	now := time.Now()
	var deadline time.Time
	if b.cfg.BodyIdleTimeout > 0 {
		deadline = now.Add(b.cfg.BodyIdleTimeout)
	}
	if b.cfg.MinBodyRate > 0 {
		due := b.start.Add(b.cfg.BodyGrace + time.Duration(float64(b.n)/float64(b.cfg.MinBodyRate)*float64(time.Second)))
		if deadline.IsZero() || due.Before(deadline) {
			deadline = due
		}
	}
	if !deadline.After(now) && !b.isDone() {
		b.deadline.Store(deadline.UnixNano())
		return 0, b.tooSlow()
	}
	if !b.setDeadline(deadline) {
		return b.body.Read(p)
	}
	b.deadline.Store(deadline.UnixNano())
	n, err := b.body.Read(p)
	b.n += int64(n)
	var ne net.Error
	switch {
	case err == io.EOF:
		// The server's background read, which watches for the client going
		// away while the handler works, would otherwise hit the deadline
		// and cancel the request.
		b.deadline.Store(0)
		if b.setDeadline(time.Time{}) {
			b.handlerReturned()
		}
	case errors.As(err, &ne) && ne.Timeout():
		return n, b.tooSlow()
	}
	return n, err
}

func (b *deadlineBody) tooSlow() error {
	if !b.slow {
		b.slow = true
		slowBodies.Inc()
	}
	return ErrBodyTooSlow
}

func (b *deadlineBody) isDone() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// capListener holds at most max connections; over that it accepts and
// answers 503 itself.
type capListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	refusing atomic.Int64
	gauge    prometheus.Gauge
	refused  prometheus.Counter
	log      *slog.Logger
}

// maxRefusing bounds the goroutines answering over-cap connections; past
// it a flood is closed without an answer rather than piling up.
const maxRefusing = 1024

func newCapListener(ln net.Listener, max int, log *slog.Logger) *capListener {
	addr := ln.Addr().String()
	return &capListener{Listener: ln, max: int64(max), log: log,
		gauge: connsOpen.WithLabelValues(addr), refused: connsRefused.WithLabelValues(addr)}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			l.gauge.Inc()
			return &countedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Inc()
		if l.refusing.Add(1) > maxRefusing {
			l.refusing.Add(-1)
			_ = c.Close()
			continue
		}
		go l.refuse(c)
	}
}

var overCapResponse = func() string {
	body := `{"error":{"code":"unavailable","message":"too many connections; retry later","details":[]}}` + "\n"
	return "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// refuse answers 503 on c and closes it. What the client sent is read (a
// little, for a second) after the answer, so that closing does not reset
// the connection before the client has read the answer.
func (l *capListener) refuse(c net.Conn) {
	defer l.refusing.Add(-1)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, overCapResponse); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// countedConn gives its slot back when closed, whoever closes it (the
// server, or a handler that hijacked it for a WebSocket).
type countedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.gauge.Dec()
	})
	return c.Conn.Close()
}

// ReadFrom keeps the sendfile path of *net.TCPConn for file downloads.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// DefaultMaxUpload is the largest request body accepted by default, at the
// gateway and by the document service's uploads.
const DefaultMaxUpload int64 = 100 << 20
