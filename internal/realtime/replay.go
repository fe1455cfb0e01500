package realtime

import (
	"context"
	"sync"

	"github.com/docstream/docstream/internal/bus"
)

// Gap-free reconnect (?since=<lsn>).
//
// A reconnecting client must get every event of its document committed
// after the LSN it last handled, then the live ones, with no gap and no
// duplicate. The live consumer and a replay each read cdc.documents,
// cdc.signatures and the signing workflow's topics through ONE
// subscription, in commit order, and bus positions are one space across
// the topics (one JetStream stream), so a
// single boundary position decides who sends what:
//
//  1. The client subscribes *in replay*, under the hub's lock. The live
//     consumer has dispatched everything up to some position B (boundary)
//     and will show this client every event after B: events of its
//     document are buffered, not sent. If the live consumer has not
//     dispatched anything yet, B is learnt from the first live event (its
//     position - 1). If since >= the cursor of the event at B, nothing is
//     missing and there is no replay at all.
//  2. A private broadcast subscription reads both topics from the first
//     event with cursor > since (bus.StartAfterLSN) and sends the
//     document's events; seen is the position of the last event it handled
//     (any document).
//  3. Once B is known and the replay has reached it (seen >= B, or it
//     receives an event after B), the replay stops. Everything up to seen
//     was sent by the replay and everything after B is delivered live, so
//     buffered and later live events at positions <= seen are dropped
//     (skip = seen) and the rest are sent. No position is sent twice and
//     none is missed.
//  4. The client leaves replay under the hub's lock: the remaining buffer
//     is flushed and Dispatch delivers to it directly from then on.
//
// Until B is known (a fresh instance, no live traffic yet) the replay
// subscription itself keeps delivering new events, so nothing is lost.
// Only the replay goroutine writes replayed and buffered events into the
// queue while the client is in replay, which keeps them in order; it
// blocks on a full queue (the bus waits) rather than dropping the client,
// while live events wait in the bounded buffer.
//
// The cursor is bus.Cursor (the commit LSN); skipping by it (steps 1 and 2)
// needs it not to decrease along the subscription, which holds as the CDC
// engine publishes both topics in commit order into one stream. (On Kafka,
// which orders neither across topics nor across partitions, positions are
// not one space and this hand-over is not exact.)

// replayState is the replay state of one client, guarded by client.mu.
type replayState struct {
	boundary uint64  // live delivery covers every position after it...
	known    bool    // ...once known
	buf      []Event // live events of the client's document since subscribing
	seen     uint64  // last position the replay handled
	// readers are those of the last replayed event of the document that
	// carried them (hasReaders: there was one).
	readers    []string
	hasReaders bool
}

// noteLive is Dispatch's side of a replay: it is shown every live event
// while the client is in replay.
func (c *client) noteLive(ev Event) {
	c.mu.Lock()
	st := &c.rs
	wake := false
	if !st.known && ev.Position != 0 {
		st.boundary, st.known, wake = ev.Position-1, true, true
	}
	if len(ev.Frames) > 0 && c.wants(ev) {
		if len(st.buf) >= c.h.opts.QueueSize {
			c.mu.Unlock()
			c.overflow()
			return
		}
		st.buf = append(st.buf, ev)
	}
	c.mu.Unlock()
	if wake {
		// The replay may already be past the boundary just learnt.
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// replay sends the document's events committed after since, then hands the
// client over to live delivery. It returns nil when done or when ctx is
// done.
func (c *client) replay(ctx context.Context, since uint64) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	items := make(chan Event)
	errc := make(chan error, 1)
	wg.Go(func() {
		err := c.h.opts.Bus.Broadcast(sctx, subscription, bus.Start{Kind: bus.StartAfterLSN, LSN: since}, bus.NewDedup("realtime-replay").Wrap(func(hctx context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ev, err := Decode(m)
				if err != nil {
					c.h.log.Warn("replay: skipping undecodable event", "topic", m.Topic, "position", m.Position, "err", err)
				}
				select {
				case items <- ev:
				case <-hctx.Done():
					return nil
				}
			}
			return nil
		}))
		if err != nil && sctx.Err() == nil {
			errc <- err
		}
	})

	for caughtUp := false; !caughtUp; {
		var out *delivery
		select {
		case <-ctx.Done():
			return nil
		case <-c.kicked:
			return nil
		case err := <-errc:
			return err
		case ev := <-items:
			c.mu.Lock()
			st := &c.rs
			if st.known && ev.Position > st.boundary {
				// Live delivery has (or will have) shown us this one.
				caughtUp = true
			} else {
				st.seen = ev.Position
				// History from while the subscriber was not a reader
				// stays untold. An event without readers (a signature, a
				// signing request or recipient) is judged by the readers
				// of the document's last event replayed before it, when
				// the replay has seen one.
				if c.wants(ev) {
					if ev.HasReaders {
						st.readers, st.hasReaders = ev.Readers, true
					}
					if len(ev.Frames) > 0 && c.viewer.mayViewEvent(ev) && (ev.HasReaders || !st.hasReaders || c.viewer.mayView(st.readers)) {
						out = &delivery{frames: ev.Frames}
					}
				}
				caughtUp = st.known && st.seen >= st.boundary
			}
			c.mu.Unlock()
		case <-c.wake:
			c.mu.Lock()
			caughtUp = c.rs.known && c.rs.seen >= c.rs.boundary
			c.mu.Unlock()
		}
		if out != nil && !c.send(ctx, out) {
			return nil
		}
	}
	stop()

	// Still in replay, so Dispatch does not read skip yet; clearing
	// inReplay under the hub's lock below publishes it.
	c.mu.Lock()
	c.skip = c.rs.seen
	c.mu.Unlock()
	// Send what live delivery buffered meanwhile, blocking like the replay,
	// until the buffer is momentarily empty.
	for {
		c.mu.Lock()
		buffered := c.takeBufferedLocked()
		c.mu.Unlock()
		if len(buffered) == 0 {
			break
		}
		if !c.send(ctx, buffered...) {
			return nil
		}
	}

	// Hand over to Dispatch. Holding the hub's lock, no event is being
	// dispatched: what is buffered now is all that live delivery showed us.
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.takeBufferedLocked() {
		select {
		case c.queue <- d:
		default:
			c.overflow() // kicks once; the rest is dropped with the connection
		}
	}
	c.poke()
	if _, ok := c.h.replaying[c]; ok {
		delete(c.h.replaying, c)
		c.inReplay = false
	}
	return nil
}

// send queues deliveries, waiting for room; false when the client is
// kicked or ctx is done.
func (c *client) send(ctx context.Context, ds ...*delivery) bool {
	for _, d := range ds {
		select {
		case c.queue <- d:
			c.poke()
		case <-c.kicked:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// takeBufferedLocked empties the buffer of live events, keeping what the
// replay did not already send (positions after skip). Their fan-out was
// observed without this client (it was in replay): they are not timed.
func (c *client) takeBufferedLocked() []*delivery {
	var out []*delivery
	for _, ev := range c.rs.buf {
		if ev.Position > c.skip {
			out = append(out, &delivery{frames: ev.Frames})
		}
	}
	c.rs.buf = nil
	return out
}
