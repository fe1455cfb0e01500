package signature

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
)

var pendingUpdates = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "docstream_signature_status_updates_pending",
	Help: "Document status updates waiting in the outbox for the document service, as last counted by a reconciler poll.",
})

// ReconcilerOptions tune the Reconciler.
type ReconcilerOptions struct {
	// Interval between polls of the outbox when there was nothing to do.
	Interval time.Duration
	// Batch is how many due updates one poll claims.
	Batch int
	// Lease is how long a claimed update is left alone by other pollers;
	// it must exceed one gRPC call's deadline.
	Lease time.Duration
	// MaxBackoff caps the delay between attempts of one update (the delay
	// doubles from Interval on each failed attempt).
	MaxBackoff time.Duration
}

func (o *ReconcilerOptions) defaults(callTimeout time.Duration) {
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Lease < 2*callTimeout {
		o.Lease = max(30*time.Second, 2*callTimeout)
	}
}

// Reconciler applies the status updates left pending in the outbox: those
// whose inline attempt found the document service down, and those of a
// process that stopped before finishing them. Its only state is the outbox
// in PostgreSQL, so it resumes after a restart, and several instances may
// run at once (rows are claimed with FOR UPDATE SKIP LOCKED and a lease).
type Reconciler struct {
	svc  *Service
	opts ReconcilerOptions
}

// NewReconciler returns a reconciler applying updates through svc.
// Interval and MaxBackoff must be > 0 (Config.Validate).
func NewReconciler(svc *Service, opts ReconcilerOptions) *Reconciler {
	opts.defaults(svc.opts.CallTimeout)
	return &Reconciler{svc: svc, opts: opts}
}

// Run polls until ctx is done. A claimed update whose attempt is cut short
// by shutdown stays in the outbox and is retried when its lease ends.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := r.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			r.svc.log.WarnContext(ctx, "reconcile status updates", "err", err)
		}
		if pending, err := r.svc.store.Pending(ctx); err == nil {
			pendingUpdates.Set(float64(pending))
		}
		wait := r.opts.Interval
		if n == r.opts.Batch {
			wait = 0 // a full batch: more are probably due
		}
		t.Reset(wait)
	}
}

// Poll claims one batch of due updates and attempts each once, returning how
// many it claimed.
func (r *Reconciler) Poll(ctx context.Context) (int, error) {
	due, err := r.svc.store.Claim(ctx, r.opts.Batch, r.opts.Lease)
	if err != nil {
		return 0, err
	}
	for _, u := range due {
		// One attempt per poll; the outbox row carries the backoff.
		r.svc.apply(ctx, "reconciler", u, noRetry, r.backoff(u.Attempts))
	}
	return len(due), nil
}

// noRetry makes apply attempt once.
var noRetry = retry.BackoffFunc(func() (time.Duration, bool) { return 0, true })

// backoff is the delay after the attempts-th failed attempt: Interval
// doubling, capped at MaxBackoff.
func (r *Reconciler) backoff(attempts int) time.Duration {
	d := r.opts.Interval
	for i := 1; i < attempts && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}
