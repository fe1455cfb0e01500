package cdc

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/docstream/docstream/internal/bus"
)

// Metrics of every engine in the process, on the default registry (served
// by httpx.Routes' /metrics).
var (
	eventsPublished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_cdc_events_published_total",
		Help: "Change events acknowledged by the bus, by topic and op.",
	}, []string{"topic", "op"})
	publishLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_cdc_publish_batch_seconds",
		Help:    "Time from handing a batch of events to the bus to its acknowledgement.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	eventsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_cdc_events_skipped_total",
		Help: "Replayed change events not published again because the bus already holds them, by reason: before_mark (transaction before the bus's last watermark), stored (found among the events after it).",
	}, []string{"reason"})
	confirmedLSN = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_confirmed_lsn",
		Help: "Last LSN confirmed to PostgreSQL, by slot.",
	}, []string{"slot"})
	slotLagBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_slot_lag_bytes",
		Help: "pg_current_wal_lsn() - confirmed_flush_lsn of the slot: WAL retained for this engine.",
	}, []string{"slot"})
	slotRetainedBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_slot_retained_wal_bytes",
		Help: "pg_current_wal_lsn() - restart_lsn of the slot: WAL it keeps from being recycled.",
	}, []string{"slot"})
	active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_cdc_active",
		Help: "1 while this process's engine holds the slot's lock and captures (the active engine), 0 while it is a standby or restarting. Exactly one engine per slot should read 1.",
	})
	slotSafeBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_slot_safe_wal_bytes",
		Help: "safe_wal_size of the slot: WAL that can still be written before max_slot_wal_keep_size invalidates it (-1: unlimited). Alert well above 0.",
	}, []string{"slot"})
)

func observePublish(msgs []bus.Message, d time.Duration) {
	publishLatency.Observe(d.Seconds())
	for _, m := range msgs {
		eventsPublished.WithLabelValues(m.Topic, m.Headers[bus.HeaderOp]).Inc()
	}
}

var registerMetrics sync.Once

// RegisterMetrics puts this package's metrics on the default registry
// (served by every /metrics). The app calls it when it starts the target,
// so a process exports the metrics of the targets it runs and no others (a
// CDC-only process has no docstream_document_redis_up to alert on). Safe
// to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(active, eventsPublished, publishLatency, eventsSkipped, confirmedLSN, slotLagBytes, slotRetainedBytes, slotSafeBytes)
	})
}
