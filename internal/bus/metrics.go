package bus

import "github.com/prometheus/client_golang/prometheus"

// Consumer metrics of the buses that watch their subscriptions (Watcher),
// for named subscriptions only (Named). They live here, not in a backend,
// because every backend feeds the same series. Vectors: a process without
// consumers exports none of them.
var (
	consumerPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_bus_consumer_pending",
		Help: "Messages the bus holds for a consumer that were not delivered to it yet (its lag), by consumer.",
	}, []string{"consumer"})
	consumerAckPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_bus_consumer_ack_pending",
		Help: "Messages delivered to a consumer and not acknowledged yet, by consumer.",
	}, []string{"consumer"})
	consumerProgress = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_bus_consumer_last_progress_timestamp_seconds",
		Help: "When a consumer last received a message or was seen caught up (Unix time), by consumer. Alert on time() minus this while pending > 0.",
	}, []string{"consumer"})
	consumerStalled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "docstream_bus_consumer_stalled",
		Help: "1 while a consumer has not progressed for the stall timeout although messages wait (or its stream is unavailable), by consumer.",
	}, []string{"consumer"})
	consumerResubscribes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_bus_consumer_resubscribes_total",
		Help: "Subscriptions the bus replaced because they were lost, stalled or failed, by consumer.",
	}, []string{"consumer"})
)

func init() {
	prometheus.MustRegister(consumerPending, consumerAckPending, consumerProgress, consumerStalled, consumerResubscribes)
}

// ExportConsumer sets the docstream_bus_consumer_* gauges of s; nothing
// for an unnamed subscription.
func ExportConsumer(s ConsumerState) {
	if s.Name == "" {
		return
	}
	stalled := 0.0
	if s.Stalled {
		stalled = 1
	}
	consumerStalled.WithLabelValues(s.Name).Set(stalled)
	consumerPending.WithLabelValues(s.Name).Set(float64(s.Pending))
	consumerAckPending.WithLabelValues(s.Name).Set(float64(s.AckPending))
	consumerProgress.WithLabelValues(s.Name).Set(float64(s.LastProgress.UnixMilli()) / 1000)
}

// CountResubscribe counts one replaced subscription of the consumer name
// (docstream_bus_consumer_resubscribes_total); nothing when name is "".
func CountResubscribe(name string) {
	if name != "" {
		consumerResubscribes.WithLabelValues(name).Inc()
	}
}
