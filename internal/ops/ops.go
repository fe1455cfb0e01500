// Package ops builds GET /ops, the gateway's one answer about the state of
// the pipeline (CDC slot and lag, bus position and backlogs, the indexer's
// applied LSN and lag, realtime connections) and of every service
// (readiness, request rates) for the web application's operations page.
//
// Nothing is stored: each call reads the services' own /health/ready and
// /metrics (Prometheus text, parsed with expfmt) and the realtime
// service's /stats, at the addresses the module table gives (Targets), in
// parallel and each bounded by a timeout. A target that does not answer
// is reported as unreachable and the rest is still answered. When several
// modules run in one process they share one metrics registry, so a
// per-service figure is read only from its own module's address (by its
// service label) and a per-consumer one is the same wherever it is read.
// The modules of the view's own process (Target.Local) are not scraped
// over HTTP: their shared registry is gathered once per call, where
// scraping each would render and parse the same registry once per module
// (nine times in `docstream dev`, most of a call's CPU).
//
// Access: admin-only in required mode (auth.Principal.MayAdminister),
// open in open mode (`docstream dev`'s default). The answer
// holds no document data, but addresses, slot names and error texts are
// an operator's business.
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
)

// Target is one module's HTTP address: Name is the module's name (also
// the service label of its HTTP metrics), URL its base URL.
type Target struct {
	Name string
	URL  string
	// Local says the module runs in the view's own process: its metrics
	// are Config.Gatherer's (its readiness is still read at URL).
	Local bool
}

// Config configures the ops view.
type Config struct {
	Targets []Target
	// Timeout bounds reading one target (default 2 s).
	Timeout time.Duration
	// Client reads the targets (default: a plain http.Client).
	Client *http.Client
	// Gatherer is the metrics registry of the view's own process, read
	// for Local targets (default: prometheus.DefaultGatherer, the one
	// every module's /metrics serves).
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
}

// Module names the view looks for among the targets.
const (
	cdcModule       = "cdc"
	indexerModule   = "indexer"
	realtimeModule  = "realtime"
	indexerConsumer = api.IndexerConsumer
)

// Ops gathers the view; it keeps the previous sample of each service's
// request counters to give rates.
type Ops struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	prev map[string]sample
}

type sample struct {
	at               time.Time
	requests, errors float64
}

// New returns the ops view over cfg's targets.
func New(cfg Config) *Ops {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Ops{cfg: cfg, log: cfg.Log, prev: map[string]sample{}}
}

// scrape is what one target answered.
type scrape struct {
	health  *api.Health
	metrics map[string]*dto.MetricFamily
	stats   *api.RealtimeStats
	err     error
}

// Gather reads every target and builds the view.
func (o *Ops) Gather(ctx context.Context) api.Ops {
	local, localErr := o.gatherLocal()
	scrapes := make([]scrape, len(o.cfg.Targets))
	var wg sync.WaitGroup
	for i, t := range o.cfg.Targets {
		wg.Go(func() {
			if t.Local {
				scrapes[i] = o.scrapeLocal(ctx, t, local, localErr)
			} else {
				scrapes[i] = o.scrape(ctx, t)
			}
		})
	}
	wg.Wait()
	now := time.Now().UTC()
	out := api.Ops{GeneratedAt: now, Services: []api.OpsService{}}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, t := range o.cfg.Targets {
		s := scrapes[i]
		svc := api.OpsService{Name: t.Name, URL: t.URL, Ready: "unreachable"}
		if s.health != nil {
			svc.Ready, svc.Checks = s.health.Status, s.health.Checks
		}
		if s.err != nil {
			svc.Error = s.err.Error()
		}
		if s.metrics != nil {
			o.serviceMetrics(&svc, t, s.metrics, now)
			consumers(&out.Bus, s.metrics)
		}
		switch t.Name {
		case cdcModule:
			cdcView(&out.CDC, s.metrics)
		case indexerModule:
			if v, ok := gauge(s.metrics, "docstream_indexer_applied_lsn", nil); ok && v > 0 {
				out.Indexer.AppliedLSN = ptr(uint64(v))
			}
		case realtimeModule:
			if st := s.stats; st != nil {
				out.Realtime = api.OpsRealtime{Connections: ptr(st.TotalConnections), ListSubscribers: ptr(st.ListSubscribers),
					Documents: ptr(st.DocumentsWithSubscribers)}
				if st.Consumer.Position > 0 {
					out.Bus.Position, out.Bus.LSN, out.Bus.LastEventAt = ptr(st.Consumer.Position), ptr(st.Consumer.LSN), st.Consumer.LastEventAt
				}
			}
		}
		out.Services = append(out.Services, svc)
	}
	if c, ok := out.Bus.Consumers[indexerConsumer]; ok {
		out.Indexer.Pending = ptr(c.Pending)
	}
	if a, c := out.Indexer.AppliedLSN, out.CDC.ConfirmedLSN; a != nil && c != nil {
		// The indexer may be ahead of what the engine has confirmed to
		// PostgreSQL (it confirms after publishing): that is no lag.
		lag := uint64(0)
		if *c > *a {
			lag = *c - *a
		}
		out.Indexer.LagBytes = &lag
	}
	return out
}

// serviceMetrics fills svc's request figures from its own module's
// metrics (its service label, its listener's port).
func (o *Ops) serviceMetrics(svc *api.OpsService, t Target, fams map[string]*dto.MetricFamily, now time.Time) {
	var reqs, errs float64
	found := false
	if f := fams["docstream_http_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "service") != t.Name {
				continue
			}
			found = true
			v := m.GetCounter().GetValue()
			reqs += v
			if code, _ := strconv.Atoi(label(m, "code")); code >= 500 {
				errs += v
			}
		}
	}
	if found {
		svc.Requests, svc.Errors = ptr(reqs), ptr(errs)
		if p, ok := o.prev[t.Name]; ok && now.Sub(p.at) > 0 && reqs >= p.requests {
			secs := now.Sub(p.at).Seconds()
			svc.RequestsPerSecond = ptr(round((reqs - p.requests) / secs))
			svc.ErrorsPerSecond = ptr(round((errs - p.errors) / secs))
		}
		o.prev[t.Name] = sample{at: now, requests: reqs, errors: errs}
	}
	if v, ok := gauge(fams, "docstream_http_requests_in_flight", map[string]string{"service": t.Name}); ok {
		svc.InFlight = ptr(v)
	}
	if u, err := url.Parse(t.URL); err == nil {
		if f := fams["docstream_http_connections_open"]; f != nil {
			for _, m := range f.GetMetric() {
				if _, port, err := net.SplitHostPort(label(m, "listener")); err == nil && port == u.Port() {
					svc.ConnectionsOpen = ptr(m.GetGauge().GetValue())
				}
			}
		}
	}
}

// cdcView reads the engine's slot metrics (one slot: the engine's).
func cdcView(c *api.OpsCDC, fams map[string]*dto.MetricFamily) {
	if fams == nil {
		return
	}
	if f := fams["docstream_cdc_confirmed_lsn"]; f != nil {
		for _, m := range f.GetMetric() {
			c.Slot = label(m, "slot")
			if v := m.GetGauge().GetValue(); v > 0 {
				c.ConfirmedLSN = ptr(uint64(v))
			}
		}
	}
	if v, ok := gauge(fams, "docstream_cdc_active", nil); ok {
		c.Active = ptr(v == 1)
	}
	if v, ok := gauge(fams, "docstream_cdc_slot_lag_bytes", nil); ok {
		c.SlotLagBytes = ptr(v)
	}
	if v, ok := gauge(fams, "docstream_cdc_slot_retained_wal_bytes", nil); ok {
		c.RetainedWALBytes = ptr(v)
	}
	if f := fams["docstream_cdc_events_published_total"]; f != nil {
		var n float64
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
		c.EventsPublished = ptr(n)
	}
}

// consumers adds the bus consumers' backlogs found in fams.
func consumers(b *api.OpsBus, fams map[string]*dto.MetricFamily) {
	f := fams["docstream_bus_consumer_pending"]
	if f == nil {
		return
	}
	if b.Consumers == nil {
		b.Consumers = map[string]api.OpsConsumer{}
	}
	for _, m := range f.GetMetric() {
		name := label(m, "consumer")
		sel := map[string]string{"consumer": name}
		c := api.OpsConsumer{Pending: m.GetGauge().GetValue()}
		c.AckPending, _ = gauge(fams, "docstream_bus_consumer_ack_pending", sel)
		st, _ := gauge(fams, "docstream_bus_consumer_stalled", sel)
		c.Stalled = st == 1
		b.Consumers[name] = c
	}
}

// gatherLocal reads the process's own registry once, when a target is
// Local. A collector's error leaves the families that were gathered (as
// promhttp serves them with ContinueOnError).
func (o *Ops) gatherLocal() (map[string]*dto.MetricFamily, error) {
	if !slices.ContainsFunc(o.cfg.Targets, func(t Target) bool { return t.Local }) {
		return nil, nil
	}
	got, err := o.cfg.Gatherer.Gather()
	fams := make(map[string]*dto.MetricFamily, len(got))
	for _, f := range got {
		fams[f.GetName()] = f
	}
	if err != nil {
		err = fmt.Errorf("gather this process's metrics: %w", err)
	}
	return fams, err
}

// scrapeLocal reads a Local target's readiness at its address and takes
// its metrics from the process's registry, gathered once for all.
func (o *Ops) scrapeLocal(ctx context.Context, t Target, fams map[string]*dto.MetricFamily, err error) scrape {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	s := o.ready(ctx, t)
	if s.err != nil {
		return s
	}
	s.metrics, s.err = fams, err
	o.realtimeStats(ctx, t, &s)
	return s
}

func (o *Ops) scrape(ctx context.Context, t Target) scrape {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	s := o.ready(ctx, t)
	if s.err != nil {
		return s
	}
	err := o.get(ctx, t.URL+"/metrics", func(r io.Reader) error {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(r)
		s.metrics = fams
		return err
	})
	if err != nil {
		s.err = err
	}
	o.realtimeStats(ctx, t, &s)
	return s
}

// ready reads t's /health/ready. It answers 503 with the same body when a
// critical check fails: that is a state to show, not a failure to read it.
func (o *Ops) ready(ctx context.Context, t Target) scrape {
	var h api.Health
	if err := o.get(ctx, t.URL+"/health/ready", func(r io.Reader) error { return json.NewDecoder(r).Decode(&h) }); err != nil {
		return scrape{err: err}
	}
	return scrape{health: &h}
}

// realtimeStats adds the realtime service's /stats to s.
func (o *Ops) realtimeStats(ctx context.Context, t Target, s *scrape) {
	if t.Name == realtimeModule {
		var st api.RealtimeStats
		if err := o.get(ctx, t.URL+"/stats", func(r io.Reader) error { return json.NewDecoder(r).Decode(&st) }); err == nil {
			s.stats = &st
		} else if s.err == nil {
			s.err = err
		}
	}
}

// get reads url's body with decode (a 2xx, or the readiness 503).
func (o *Ops) get(ctx context.Context, url string, decode func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4, application/json")
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusServiceUnavailable {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := decode(io.LimitReader(resp.Body, 16<<20)); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// Handler serves GET /ops: admin-only in required mode, open in open mode
// (dev included). a checks the credential itself, so the route is
// protected whether or not the gateway authenticates (--auth-at-gateway).
func (o *Ops) Handler(a *auth.Authenticator) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a != nil && a.Mode() == auth.ModeRequired && !auth.FromContext(r.Context()).MayAdminister() {
			httpx.RespondErr(w, r, o.log, apperr.E(apperr.Forbidden, "the operations view is for administrators"))
			return
		}
		httpx.Respond(w, http.StatusOK, o.Gather(r.Context()))
	})
	return a.Middleware(h)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// gauge is the value of the first gauge of family name whose labels
// include sel.
func gauge(fams map[string]*dto.MetricFamily, name string, sel map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range sel {
			if label(m, k) != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func round(v float64) float64 { return math.Round(v*100) / 100 }

func ptr[T any](v T) *T { return &v }

// Pattern is the route the gateway serves the view at.
const Pattern = "GET /ops"

// Routes lists the view's route, for the public client's test that each
// route has a method.
func Routes() []string { return []string{Pattern} }
