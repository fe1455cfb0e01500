package realtime

import (
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/docstream/docstream/internal/testenv"
)

// fanoutSamples reads docstream_realtime_fanout_seconds: how many events
// it observed and the sum of their times, in seconds.
func fanoutSamples(tb testing.TB) (uint64, float64) {
	tb.Helper()
	var m dto.Metric
	if err := fanoutSeconds.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// Each event dispatched to subscribers is observed once, from Dispatch to
// the last subscriber's write; an event nobody watches is not observed.
func TestFanOutTimeIsObservedOncePerEvent(t *testing.T) {
	const clients, events = 20, 10
	s := startServer(t, serverOpts{open: true})
	doc := uuid.NewString()
	subs := make([]*websocket.Conn, 0, clients)
	for range clients {
		subs = append(subs, s.dial(t, doc, "", 0))
	}
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == clients })
	count, sum := fanoutSamples(t)

	began := time.Now()
	for n := uint64(1); n <= events; n++ {
		s.hub.Dispatch(titleEvent(t, doc, n))
		// Unwatched: no sample.
		s.hub.Dispatch(titleEvent(t, uuid.NewString(), n))
	}
	for _, c := range subs {
		for n := uint64(1); n <= events; n++ {
			if m := readMsg(t, c); m.LSN != n {
				t.Fatalf("got lsn %d, want %d", m.LSN, n)
			}
		}
	}
	// A client can read a frame before the server's write call has
	// returned: the last sample may lag the last read.
	testenv.WaitFor(t, "a sample per event", func() bool { c, _ := fanoutSamples(t); return c >= count+events })
	elapsed := time.Since(began).Seconds()
	gotCount, gotSum := fanoutSamples(t)
	if gotCount != count+events {
		t.Fatalf("%d samples for %d events", gotCount-count, events)
	}
	// Each sample is a time within the test's own: above zero, and no
	// more than from the first Dispatch to now.
	if d := gotSum - sum; d <= 0 || d > events*elapsed {
		t.Fatalf("samples sum to %v s over %d events in %v s", d, events, elapsed)
	}
}

// A subscriber that stops reading is waited for until it is dropped; then
// every event is still observed exactly once, including those left in its
// queue when its connection ended and those dispatched while its queue was
// full (not queued to it: not waited for).
func TestFanOutTimeCountsADroppedSubscriberOnce(t *testing.T) {
	s := startServer(t, serverOpts{hub: Options{QueueSize: 8, WriteTimeout: 2 * time.Second}, sendBuffer: 4096})
	doc := uuid.NewString()
	_ = s.dial(t, doc, "", 4096) // never reads
	normal := s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	count, _ := fanoutSamples(t)

	n := dispatchUntilCutOff(t, s, doc, normal)
	for range 5 {
		n++
		s.hub.Dispatch(titleEvent(t, doc, n))
		readMsg(t, normal)
	}
	// The slow client's blocked write ends with the write timeout; what
	// was queued behind it is then done with.
	testenv.WaitFor(t, "a sample per event", func() bool { c, _ := fanoutSamples(t); return c >= count+n })
	if got, _ := fanoutSamples(t); got != count+n {
		t.Fatalf("%d samples for %d events", got-count, n)
	}
}
