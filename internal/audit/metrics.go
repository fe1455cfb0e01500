package audit

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// Counted when written in the caller's transaction: an entry whose
	// transaction then rolls back was counted too (the audit package sees
	// no commit), which a failed change makes rare.
	entriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_audit_entries_appended_total",
		Help: "Audit entries written, by entry type (counted in the writing transaction, before its commit).",
	}, []string{"type"})
	verificationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_audit_verifications_total",
		Help: "Trails verified by GET /documents/{id}/audit/verify, by result (valid, invalid).",
	}, []string{"result"})
	signSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_audit_checkpoint_sign_seconds",
		Help:    "Time to put a head or sealed checkpoint in canonical form and sign it (Ed25519).",
		Buckets: prometheus.ExponentialBuckets(5e-6, 2.5, 12),
	})
)

var registerMetrics sync.Once

// RegisterMetrics puts the audit metrics on the default registry (served
// by /metrics) once per process: the document and signature targets, which
// append and verify, call it. Safe to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() { prometheus.MustRegister(entriesTotal, verificationsTotal, signSeconds) })
}

// CountVerification counts one verification served, by its result.
func CountVerification(r *Result) {
	result := "invalid"
	if r.Valid {
		result = "valid"
	}
	verificationsTotal.WithLabelValues(result).Inc()
}

func observeSign(start time.Time) { signSeconds.Observe(time.Since(start).Seconds()) }
