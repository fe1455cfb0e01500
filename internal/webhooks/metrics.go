package webhooks

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	deliveredTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_webhooks_delivered_total", Help: "Deliveries an endpoint answered 2xx, by endpoint id.",
	}, []string{"endpoint"})
	failedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_webhooks_failed_total", Help: "Deliveries parked as failed (a 4xx that cannot succeed, a refused address, or retries ran out), by endpoint id.",
	}, []string{"endpoint"})
	skippedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_webhooks_skipped_total", Help: "Deliveries skipped because the endpoint's owner may not view the document, by endpoint id.",
	}, []string{"endpoint"})
	attemptsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_webhooks_attempts_total", Help: "HTTP requests made to endpoints, by endpoint id and answer (status code, or error).",
	}, []string{"endpoint", "code"})
	pendingGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_webhooks_pending", Help: "Deliveries waiting (queued or for a retry), by endpoint id, as last counted (every 5 s).",
	}, []string{"endpoint"})
	oldestGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_webhooks_oldest_pending_seconds", Help: "Age of the oldest undelivered delivery, by endpoint id (0: none), as last counted.",
	}, []string{"endpoint"})
	attemptSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "docstream_webhooks_attempt_seconds", Help: "Duration of one delivery attempt.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	})
	latencySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "docstream_webhooks_latency_seconds", Help: "From a change's commit to its endpoint's 2xx.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 14),
	})
	fanoutSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "docstream_webhooks_fanout_seconds", Help: "Duration of one fan-out transaction (a batch of change events into deliveries).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_webhooks_events_total", Help: "Change events seen by the fan-out, by result: stored, ignored (no webhook event: a snapshot read, a share), invalid.",
	}, []string{"result"})
	fanoutLSN = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_webhooks_fanout_commit_lsn", Help: "Commit LSN of the last change this process fanned out.",
	})
)

var registerMetrics sync.Once

// RegisterMetrics registers the target's metrics with the default
// registry, once per process (the module table calls it).
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(deliveredTotal, failedTotal, skippedTotal, attemptsTotal, pendingGauge, oldestGauge,
			attemptSeconds, latencySeconds, fanoutSeconds, eventsTotal, fanoutLSN)
	})
}
