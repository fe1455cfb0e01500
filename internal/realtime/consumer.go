package realtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/docstream/docstream/internal/bus"
)

// ConsumerStats is the state of the live consumer of one topic.
type ConsumerStats struct {
	State       string     `json:"state"` // idle (not started), running, retrying, stopped
	Position    uint64     `json:"position"`
	LSN         uint64     `json:"lsn"`
	Events      uint64     `json:"events"`
	LastEventAt *time.Time `json:"last_event_at,omitempty"`
	Error       string     `json:"error,omitempty"`
}

type consumerState struct {
	mu sync.Mutex
	s  ConsumerStats
}

func (c *consumerState) observe(ev Event) {
	now := time.Now().UTC()
	c.mu.Lock()
	c.s.Position, c.s.Events, c.s.LastEventAt = ev.Position, c.s.Events+1, &now
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
	if s.State == "" {
		s.State = "idle"
	}
	return s
}

func (c *consumerState) position() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Position
}

// Consume feeds the hub from the bus: one broadcast subscription per topic,
// starting with what is published from now on (a client that needs older
// events asks with ?since=). Each instance consumes everything, so each
// instance's clients get every event. A subscription that fails is resumed
// right after the last position it delivered, so no event is skipped.
// Blocks until ctx is done.
func (h *Hub) Consume(ctx context.Context) error {
	if h.opts.Bus == nil {
		return errors.New("realtime: no bus to consume")
	}
	var wg sync.WaitGroup
	for i, t := range topics {
		wg.Go(func() { h.consumeTopic(ctx, i, t) })
	}
	wg.Wait()
	return nil
}

func (h *Hub) consumeTopic(ctx context.Context, i int, topic string) {
	st := &h.consumers[i]
	start := bus.Start{Kind: bus.StartNew}
	backoff := 500 * time.Millisecond
	for {
		st.set("running", nil)
		err := h.opts.Bus.Broadcast(ctx, topic, start, func(ctx context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ev, err := Decode(m)
				if err != nil {
					h.log.Warn("realtime: skipping undecodable event", "topic", topic, "position", m.Position, "err", err)
				}
				eventsConsumed.WithLabelValues(topic).Inc()
				h.Dispatch(ev)
			}
			return nil
		})
		if ctx.Err() != nil {
			st.set("stopped", nil)
			return
		}
		if err == nil {
			err = errors.New("subscription ended")
		}
		h.log.Warn("realtime: bus subscription failed; resuming", "topic", topic, "err", err, "in", backoff)
		st.set("retrying", err)
		if p := st.position(); p > 0 {
			start = bus.Start{Kind: bus.StartPosition, Position: p + 1}
		}
		select {
		case <-ctx.Done():
			st.set("stopped", nil)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Ready reports whether both live subscriptions are running (readiness).
func (h *Hub) Ready(ctx context.Context) error {
	for i, t := range topics {
		if s := h.consumers[i].snapshot(); s.State != "running" {
			return errors.New(t + " consumer " + s.State + ": " + s.Error)
		}
	}
	if h.opts.Bus != nil {
		return h.opts.Bus.Ping(ctx)
	}
	return nil
}
