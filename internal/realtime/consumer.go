package realtime

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
)

// ConsumerStats is the state of the live consumer.
type ConsumerStats = api.ConsumerStats

type consumerState struct {
	mu sync.Mutex
	s  ConsumerStats
}

func (c *consumerState) observe(ev Event) {
	now := time.Now().UTC()
	c.mu.Lock()
	c.s.Position, c.s.Events, c.s.LastEventAt = ev.Position, c.s.Events+1, &now
	if c.s.EventsByTopic == nil {
		c.s.EventsByTopic = map[string]uint64{}
	}
	c.s.EventsByTopic[ev.Topic]++
	if ev.LSN != 0 {
		c.s.LSN = ev.LSN
	}
	c.mu.Unlock()
}

func (c *consumerState) set(state string, err error) {
	c.mu.Lock()
	c.s.State, c.s.Error = state, ""
	if err != nil {
		c.s.Error = err.Error()
	}
	c.mu.Unlock()
}

func (c *consumerState) snapshot() ConsumerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Topics = slices.Clone(topics[:])
	if s.State == "" {
		s.State = "idle"
	}
	s.EventsByTopic = make(map[string]uint64, len(topics))
	for _, t := range topics {
		s.EventsByTopic[t] = c.s.EventsByTopic[t]
	}
	return s
}

func (c *consumerState) position() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Position
}

// Consume feeds the hub from the bus: ONE broadcast subscription over
// cdc.documents and cdc.signatures, starting with what is published from
// now on (a client that needs older events asks with ?since=). One
// subscription, not one per topic, so that a document's events reach its
// clients in commit order across the topics: the signature service commits
// a signature and then the document's new status in two transactions, and
// two racing subscriptions could deliver them the other way round. On NATS
// both topics are one stream, delivered in commit order with one position
// space; Kafka has no order across topics (see bus.Bus.Broadcast).
//
// Each instance consumes everything, so each instance's clients get every
// event. Repeats of events already dispatched (the same change published
// again) are dropped by LSN (bus.Dedup), so a client never gets one twice. A subscription that fails is resumed right after the last position
// it delivered, so no event is skipped. Blocks until ctx is done.
func (h *Hub) Consume(ctx context.Context) error {
	if h.opts.Bus == nil {
		return errors.New("realtime: no bus to consume")
	}
	st := &h.consumer
	start := bus.Start{Kind: bus.StartNew}
	backoff := 500 * time.Millisecond
	for {
		st.set("running", nil)
		err := h.opts.Bus.Broadcast(bus.Named(ctx, ConsumerName), subscription, start, h.dedup.Wrap(func(ctx context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ev, err := Decode(m)
				if err != nil {
					h.log.Warn("realtime: skipping undecodable event", "topic", m.Topic, "position", m.Position, "err", err)
				}
				eventsConsumed.WithLabelValues(m.Topic).Inc()
				h.Dispatch(ev)
			}
			return nil
		}))
		if ctx.Err() != nil {
			st.set("stopped", nil)
			return nil
		}
		if err == nil {
			err = errors.New("subscription ended")
		}
		h.log.Warn("realtime: bus subscription failed; resuming", "topics", subscription, "err", err, "in", backoff)
		st.set("retrying", err)
		if p := st.position(); p > 0 {
			start = bus.Start{Kind: bus.StartPosition, Position: p + 1}
		}
		select {
		case <-ctx.Done():
			st.set("stopped", nil)
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// ConsumerName names the live subscription in readiness and the
// docstream_bus_consumer_* metrics.
const ConsumerName = "realtime"

// Ready reports whether the live subscription is running and progressing
// (readiness): an instance whose stream is unavailable or whose
// subscription stalled pushes nothing to its clients.
func (h *Hub) Ready(ctx context.Context) error {
	if s := h.consumer.snapshot(); s.State != "running" {
		return errors.New("consumer of " + subscription + " " + s.State + ": " + s.Error)
	}
	if h.opts.Bus != nil {
		if err := h.opts.Bus.Ping(ctx); err != nil {
			return err
		}
		return bus.CheckConsumers(h.opts.Bus, ConsumerName)
	}
	return nil
}
