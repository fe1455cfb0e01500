package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/docstream/docstream/api"
)

var (
	upstreamRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_gateway_upstream_requests_total",
		Help: "Requests sent to upstreams, by service, upstream and outcome (ok; busy: 503/429 with Retry-After; failed: transport error or 5xx).",
	}, []string{"service", "upstream", "outcome"})
	upstreamAvailable = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_gateway_upstream_available",
		Help: "1 when the upstream is healthy and not ejected, else 0.",
	}, []string{"service", "upstream"})
	retriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_gateway_retries_total",
		Help: "Idempotent requests retried on another upstream after a connection error or a busy answer, by service.",
	}, []string{"service"})
	panicTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_gateway_panic_total",
		Help: "Upstream picks made in panic mode (fewer available upstreams than the panic threshold: all are used), by service; a busy answer's look for another upstream counts too.",
	}, []string{"service"})
)

// errNoUpstream means every upstream of the service is unhealthy, ejected
// or already tried for this request.
var errNoUpstream = errors.New("no healthy upstream")

// upstream is one URL of a service with its health state. Active health
// (from the checker) and passive ejection (from proxied failures) are
// independent: an upstream is used only when healthy and not ejected.
type upstream struct {
	url      *url.URL
	inflight atomic.Int64

	mu            sync.Mutex
	healthy       bool
	checkOK       int // consecutive successful active checks
	checkFail     int // consecutive failed active checks
	lastCheck     time.Time
	lastCheckErr  string
	failures      int // consecutive failed proxied requests
	ejectedUntil  time.Time
	lastProxyErr  string
	totalRequests int64
	totalFailures int64
}

func (u *upstream) available(now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.healthy && !now.Before(u.ejectedUntil)
}

// pool balances one service's requests over its upstreams.
type pool struct {
	svc       Service
	ups       []*upstream
	next      atomic.Uint64
	transport http.RoundTripper
	checker   *http.Client
	now       func() time.Time
	// ejectMu makes "is it the last available upstream?" and the ejection
	// one step, so two upstreams failing at once cannot both be ejected.
	ejectMu sync.Mutex
}

func newPool(svc Service, transport http.RoundTripper) *pool {
	p := &pool{svc: svc, transport: transport, now: time.Now,
		checker: &http.Client{Transport: transport, Timeout: svc.HealthCheck.Timeout}}
	for _, raw := range svc.Upstreams {
		u, _ := url.Parse(raw) // validated
		u.Path = ""
		// Optimistic until the first check says otherwise, so a gateway that
		// starts before its upstreams are probed does not refuse traffic.
		p.ups = append(p.ups, &upstream{url: u, healthy: true})
		upstreamAvailable.WithLabelValues(svc.Name, u.Host).Set(1)
	}
	return p
}

// pick returns an available upstream not in tried, or nil. Below the panic
// threshold every upstream counts as available.
func (p *pool) pick(tried []*upstream) *upstream {
	now := p.now()
	n := len(p.ups)
	panicking := p.panicking(now)
	if panicking {
		panicTotal.WithLabelValues(p.svc.Name).Inc()
	}
	start := int(p.next.Add(1) - 1)
	var best *upstream
	for i := range n {
		u := p.ups[(start+i)%n]
		if slices.Contains(tried, u) || (!panicking && !u.available(now)) {
			continue
		}
		if p.svc.Balance == BalanceRoundRobin {
			return u
		}
		// least_requests: fewest in flight; ties go to the round-robin order.
		if best == nil || u.inflight.Load() < best.inflight.Load() {
			best = u
		}
	}
	return best
}

// panicking reports whether fewer than the panic threshold's share of the
// upstreams are available.
func (p *pool) panicking(now time.Time) bool {
	t := p.svc.PanicThreshold
	if t == nil || *t == 0 {
		return false
	}
	avail := 0
	for _, u := range p.ups {
		if u.available(now) {
			avail++
		}
	}
	return avail*100 < *t*len(p.ups)
}

// othersAvailable counts the available upstreams other than u.
func (p *pool) othersAvailable(u *upstream, now time.Time) int {
	n := 0
	for _, o := range p.ups {
		if o != u && o.available(now) {
			n++
		}
	}
	return n
}

// Outcomes of a proxied request, for passive health.
const (
	outcomeOK     = "ok"
	outcomeBusy   = "busy"   // shed with Retry-After: working as designed
	outcomeFailed = "failed" // transport error or a real 5xx
)

// recordResult feeds passive health: failures in a row eject the upstream
// for the configured time, unless it is the last available one (ejecting
// it would turn a struggling service into a dead one); a success resets the
// count and a busy answer leaves it as it is.
func (p *pool) recordResult(u *upstream, outcome, errText string) {
	u.mu.Lock()
	u.totalRequests++
	due := false
	switch outcome {
	case outcomeFailed:
		u.totalFailures++
		u.failures++
		u.lastProxyErr = errText
		due = p.svc.Passive.Failures > 0 && u.failures >= p.svc.Passive.Failures
	case outcomeOK:
		u.failures = 0
	}
	u.mu.Unlock()
	if due {
		p.eject(u)
	}
	upstreamRequests.WithLabelValues(p.svc.Name, u.url.Host, outcome).Inc()
	p.publish(u)
}

// eject takes u out for the ejection time unless no other upstream is
// available; its failure count then keeps growing and it is reconsidered
// at its next failure.
func (p *pool) eject(u *upstream) {
	p.ejectMu.Lock()
	defer p.ejectMu.Unlock()
	now := p.now()
	if p.othersAvailable(u, now) == 0 {
		return
	}
	u.mu.Lock()
	u.ejectedUntil = now.Add(p.svc.Passive.Ejection)
	u.failures = 0
	u.mu.Unlock()
}

func (p *pool) publish(u *upstream) {
	v := 0.0
	if u.available(p.now()) {
		v = 1
	}
	upstreamAvailable.WithLabelValues(p.svc.Name, u.url.Host).Set(v)
}

// runChecks probes every upstream each interval until ctx is done.
func (p *pool) runChecks(ctx context.Context) {
	h := p.svc.HealthCheck
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, u := range p.ups {
			wg.Go(func() { p.check(ctx, u) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *pool) check(ctx context.Context, u *upstream) {
	h := p.svc.HealthCheck
	err := p.probe(ctx, u.url.JoinPath(h.Path).String())
	if ctx.Err() != nil {
		return // shutting down; not the upstream's fault
	}
	u.mu.Lock()
	u.lastCheck = p.now()
	if err != nil {
		u.lastCheckErr = err.Error()
		u.checkOK = 0
		u.checkFail++
		if u.checkFail >= h.UnhealthyThreshold {
			u.healthy = false
		}
	} else {
		u.lastCheckErr = ""
		u.checkFail = 0
		u.checkOK++
		if u.checkOK >= h.HealthyThreshold {
			u.healthy = true
		}
	}
	u.mu.Unlock()
	p.publish(u)
}

func (p *pool) probe(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := p.checker.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d", p.svc.HealthCheck.Path, resp.StatusCode)
	}
	return nil
}

// status is the admin view of the pool's upstreams.
func (p *pool) status() []api.Upstream {
	now := p.now()
	out := make([]api.Upstream, 0, len(p.ups))
	for _, u := range p.ups {
		avail := u.available(now)
		u.mu.Lock()
		s := api.Upstream{URL: u.url.String(), Available: avail, Healthy: u.healthy,
			InFlight: u.inflight.Load(), LastCheckErr: u.lastCheckErr, LastProxyErr: u.lastProxyErr,
			TotalRequests: u.totalRequests, TotalFailures: u.totalFailures}
		if now.Before(u.ejectedUntil) {
			t := u.ejectedUntil
			s.EjectedUntil = &t
		}
		if !u.lastCheck.IsZero() {
			t := u.lastCheck
			s.LastCheck = &t
		}
		u.mu.Unlock()
		out = append(out, s)
	}
	return out
}
