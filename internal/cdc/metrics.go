package cdc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/docstream/docstream/internal/bus"
)

// Metrics of every engine in the process, on the default registry (served
// by httpx.Routes' /metrics).
var (
	eventsPublished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_cdc_events_published_total",
		Help: "Change events acknowledged by the bus, by topic and op.",
	}, []string{"topic", "op"})
	publishLatency = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "docstream_cdc_publish_batch_seconds",
		Help:    "Time from handing a batch of events to the bus to its acknowledgement.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	eventsSkipped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_cdc_events_skipped_total",
		Help: "Replayed change events not published again because the bus already holds them, by reason: before_mark (transaction before the bus's last watermark), stored (found among the events after it).",
	}, []string{"reason"})
	confirmedLSN = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_confirmed_lsn",
		Help: "Last LSN confirmed to PostgreSQL, by slot.",
	}, []string{"slot"})
	slotLagBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_slot_lag_bytes",
		Help: "pg_current_wal_lsn() - confirmed_flush_lsn of the slot: WAL retained for this engine.",
	}, []string{"slot"})
	slotRetainedBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_cdc_slot_retained_wal_bytes",
		Help: "pg_current_wal_lsn() - restart_lsn of the slot: WAL it keeps from being recycled.",
	}, []string{"slot"})
	slotSafeBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
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
