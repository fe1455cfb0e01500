package realtime

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fanoutSeconds is the server's share of a fan-out: per event, from
// Dispatch until the last subscriber's write of it returned (its frames
// handed to the kernel). What a client then takes to read them is not in
// it. Which subscribers count:
//
//   - every subscriber the event was queued to live, on a document's
//     stream or the list feed;
//   - a subscriber whose queue was full is closed with 1013 and not waited
//     for; a client that reads slowly is waited for until its write
//     returns, so a long tail here points at slow clients, and lasts until
//     they are dropped (queue full, or --realtime-write-timeout);
//   - a subscriber whose connection ends with the event still queued
//     (kicked, revoked, write failed, shutdown) counts as done when it ends;
//   - clients catching up through a replay (?since=) are not counted: the
//     event reaches them from the replay's buffer later.
//
// An event no subscriber got is not observed (most documents are watched
// by no one; their events would bury the figure in zeros).
var fanoutSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name: "docstream_realtime_fanout_seconds",
	Help: "Per event with at least one live subscriber: time from dispatch until the last subscriber's write of it returned " +
		"(frames handed to the kernel; a subscriber dropped first counts when its connection ends). Clients' reading is not included.",
	Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12), // 0.5 ms to 12 s (past the default write timeout)
})

// delivery is one event's frames on their way to its subscribers. Dispatch
// makes one per event and queues the same pointer to every subscriber, so
// a queue slot is one pointer and timing the fan-out costs a subscriber
// one atomic add when its write is done.
type delivery struct {
	frames [][]byte
	// start is when Dispatch began; zero for a delivery whose fan-out
	// is not observed (replayed and buffered ones).
	start time.Time
	// pending is the number of subscribers Dispatch queued the delivery
	// to (added once, when it is done with all of them: launched) less
	// those whose write is done. Writers may finish first and take it
	// below zero; it reaches zero exactly once, after launched, when the
	// last of them is done.
	pending atomic.Int64
}

// liveDelivery is the delivery of ev's frames dispatched at start.
func liveDelivery(ev Event, start time.Time) *delivery {
	return &delivery{frames: ev.Frames, start: start}
}

// launched records that d was queued to n subscribers.
func (d *delivery) launched(n int) {
	if n > 0 && d.pending.Add(int64(n)) == 0 {
		d.observe()
	}
}

// done records that one subscriber is done with d: its write returned, or
// its connection ended before the write.
func (d *delivery) done() {
	if !d.start.IsZero() && d.pending.Add(-1) == 0 {
		d.observe()
	}
}

func (d *delivery) observe() { fanoutSeconds.Observe(time.Since(d.start).Seconds()) }
