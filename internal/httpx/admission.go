package httpx

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/logging"
)

// Class is a route's cost class for admission control. Each class has its
// own in-flight bound and queue, so an expensive class saturates and sheds
// on its own while the cheap one keeps its slots.
type Class string

// The route classes.
const (
	Read   Class = "read"   // a key lookup or a page of rows: microseconds of CPU
	Search Class = "search" // full-text search: milliseconds of CPU each
	Write  Class = "write"  // waits on fsync and a commit more than on CPU
)

// ClassLimit bounds one class: at most Limit requests in flight, at most
// Queue more waiting, none waiting longer than MaxWait. Limit 0 means no
// bound.
type ClassLimit struct {
	Limit   int
	Queue   int
	MaxWait time.Duration
}

// minDefaultQueue is the least default queue of a class.
const minDefaultQueue = 64

// AdmissionConfig holds the per-class bounds each service applies to its
// routes (the same bounds in every service; each service counts its own).
type AdmissionConfig struct {
	Read, Search, Write ClassLimit
	// RetryAfter is the Retry-After sent with a shed request.
	RetryAfter time.Duration
}

// RegisterFlags registers --admission-* with their defaults, scaled by the
// cores this process may use (GOMAXPROCS). Searches are CPU-bound, so two
// per core keep the cores busy without stretching each search; reads and
// writes mostly wait on PostgreSQL (and writes on fsync), so they get more
// slots, still below the default query pool. A shed answer never waits
// longer than the class's max wait. The queue holds at least
// minDefaultQueue: a client's 64 connections are concurrency, not
// overload, and wait their turn rather than being shed for the queue's
// length (issue 16; with 4 × 4 search slots on 2 cores, 32 connections
// were shed).
func (c *AdmissionConfig) RegisterFlags(fs *pflag.FlagSet) {
	cores := runtime.GOMAXPROCS(0)
	class := func(l *ClassLimit, name string, perCore int, what string) {
		fs.IntVar(&l.Limit, "admission-"+name+"-limit", perCore*cores, fmt.Sprintf("requests of the %s class (%s) served at once by each service (default %d per core); 0: no bound", name, what, perCore))
		fs.IntVar(&l.Queue, "admission-"+name+"-queue", max(4*perCore*cores, minDefaultQueue), fmt.Sprintf("requests of the %s class waiting for a slot, beyond which they are shed (503 + Retry-After) at once (default 4 × the limit, at least %d)", name, minDefaultQueue))
		fs.DurationVar(&l.MaxWait, "admission-"+name+"-max-wait", 100*time.Millisecond, "longest a "+name+" request waits for a slot before it is shed")
	}
	class(&c.Read, "read", 8, "GETs of documents and signatures")
	class(&c.Search, "search", 2, "/search, /suggest, /aggregations")
	class(&c.Write, "write", 8, "creates, updates, deletes")
	fs.DurationVar(&c.RetryAfter, "admission-retry-after", time.Second, "Retry-After sent with a request shed by admission control")
}

var (
	admissionInFlight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_admission_in_flight",
		Help: "Requests holding an admission slot, by service and route class.",
	}, []string{"service", "class"})
	admissionQueued = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_admission_queued",
		Help: "Requests waiting for an admission slot, by service and route class.",
	}, []string{"service", "class"})
	admissionShed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_admission_shed_total",
		Help: "Requests shed with 503 + Retry-After, by service, route class and reason (queue_full, max_wait).",
	}, []string{"service", "class", "reason"})
	admissionWait = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "docstream_admission_queue_wait_seconds",
		Help:    "Time admitted or shed requests waited in the queue, by service and route class.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"service", "class"})
)

// Admission is admission control for one service: a gate per route class.
// A nil *Admission admits everything.
type Admission struct {
	service    string
	retryAfter string
	limits     map[Class]ClassLimit

	mu    sync.Mutex
	gates map[Class]*gate // made by the first Wrap of each class
}

// NewAdmission returns the gates of service under cfg.
func NewAdmission(service string, cfg AdmissionConfig) *Admission {
	retry := max(1, int(cfg.RetryAfter.Round(time.Second)/time.Second))
	return &Admission{service: service, retryAfter: strconv.Itoa(retry), gates: map[Class]*gate{},
		limits: map[Class]ClassLimit{Read: cfg.Read, Search: cfg.Search, Write: cfg.Write}}
}

func (a *Admission) gate(class Class) *gate {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.gates[class]
	if g == nil {
		g = newGate(a.service, class, a.limits[class])
		a.gates[class] = g
	}
	return g
}

// Wrap admits requests to h under class: each holds a slot while h runs,
// waits for one in a short queue, or is answered 503 + Retry-After at once
// when the queue is full or the wait would pass MaxWait. Routes that hold a
// connection without using CPU (WebSocket upgrades, event streams) are not
// wrapped; a handler that waits on something else for a while gives its
// slot back with Outside.
func (a *Admission) Wrap(class Class, h http.Handler) http.Handler {
	if a == nil {
		return h
	}
	if a.limits[class].Limit <= 0 {
		return h
	}
	g := a.gate(class)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.acquire(r.Context()) {
			a.shed(w, r)
			return
		}
		s := &slot{g: g, retryAfter: a.retryAfter, held: true}
		defer s.release()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), slotKey{}, s)))
	})
}

// errBusy is the answer to a shed request; RespondErr adds Retry-After.
var errBusy = apperr.E(apperr.Unavailable, "the server is busy; retry after the time in Retry-After")

func (a *Admission) shed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", a.retryAfter)
	// Not logged: under overload that would be a line per shed request;
	// the shed counter says it.
	RespondErr(w, r, logging.Discard(), errBusy)
}

// Outside runs wait (a bounded wait on something other than this process's
// CPU, such as the indexer catching up to a min_lsn) without holding the
// request's admission slot, then takes a slot again. If none is free within
// the class's bounds it returns an error to answer with RespondErr (503,
// Retry-After). Outside a wrapped handler it just runs wait.
func Outside(ctx context.Context, w http.ResponseWriter, wait func()) error {
	s, _ := ctx.Value(slotKey{}).(*slot)
	if s == nil {
		wait()
		return nil
	}
	s.release()
	wait()
	if !s.g.acquire(ctx) {
		w.Header().Set("Retry-After", s.retryAfter)
		return errBusy
	}
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
	return nil
}

type slotKey struct{}

// slot is the admission slot a request holds while its handler runs.
type slot struct {
	g          *gate
	retryAfter string
	mu         sync.Mutex
	held       bool
}

func (s *slot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held = false
		s.g.release()
	}
}

// gate is one class's bound: slots is a semaphore of Limit, queue one of
// Queue (the waiting room).
type gate struct {
	limit      ClassLimit
	slots      chan struct{}
	queue      chan struct{}
	inUse      atomic.Int64
	peak       atomic.Int64
	waiting    atomic.Int64
	peakQueued atomic.Int64
	maxWait    atomic.Int64 // longest queue wait seen, in nanoseconds

	inFlight, queued prometheus.Gauge
	queueFull, timed prometheus.Counter
	wait             prometheus.Observer
}

func newGate(service string, class Class, l ClassLimit) *gate {
	c := string(class)
	return &gate{
		limit:     l,
		slots:     make(chan struct{}, max(l.Limit, 0)),
		queue:     make(chan struct{}, max(l.Queue, 0)),
		inFlight:  admissionInFlight.WithLabelValues(service, c),
		queued:    admissionQueued.WithLabelValues(service, c),
		queueFull: admissionShed.WithLabelValues(service, c, "queue_full"),
		timed:     admissionShed.WithLabelValues(service, c, "max_wait"),
		wait:      admissionWait.WithLabelValues(service, c),
	}
}

func (g *gate) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		g.admitted()
		return true
	default:
	}
	select {
	case g.queue <- struct{}{}:
	default:
		g.queueFull.Inc()
		return false
	}
	g.queued.Inc()
	raise(&g.peakQueued, g.waiting.Add(1))
	start := time.Now()
	t := time.NewTimer(g.limit.MaxWait)
	defer func() {
		t.Stop()
		// Counted out before the queue place is given back: the other
		// order let the next request count itself in first, so the peak
		// read Queue+1 (TestOverloadIsShedCleanlyThroughTheGateway, under
		// load).
		g.waiting.Add(-1)
		<-g.queue
		g.queued.Dec()
		d := time.Since(start)
		g.wait.Observe(d.Seconds())
		raise(&g.maxWait, int64(d))
	}()
	select {
	case g.slots <- struct{}{}:
		g.admitted()
		return true
	case <-t.C:
		g.timed.Inc()
		return false
	case <-ctx.Done():
		return false
	}
}

func (g *gate) admitted() {
	raise(&g.peak, g.inUse.Add(1))
	g.inFlight.Inc()
}

// raise sets v to n if n is larger.
func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

func (g *gate) release() {
	g.inUse.Add(-1)
	g.inFlight.Dec()
	<-g.slots
}

// ClassStats is what one class's gate has seen since it was made.
type ClassStats struct {
	PeakInFlight int64 // most requests holding a slot at once
	PeakQueued   int64 // most requests waiting for one at once
	// MaxQueueWait is the longest wait in the queue, admitted or shed, by
	// the wall clock: the decision is made by MaxWait, but on a starved
	// machine the request may wait for a core after it.
	MaxQueueWait time.Duration
}

// Stats reports each class's peak in flight and longest queue wait.
func (a *Admission) Stats() map[Class]ClassStats {
	out := map[Class]ClassStats{}
	if a == nil {
		return out
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for c, g := range a.gates {
		out[c] = ClassStats{PeakInFlight: g.peak.Load(), PeakQueued: g.peakQueued.Load(), MaxQueueWait: time.Duration(g.maxWait.Load())}
	}
	return out
}
