package realtime

import (
	"context"
	"sync"

	"github.com/docstream/docstream/internal/bus"
)

// Gap-free reconnect (?since=<lsn>).
//
// A reconnecting client must get every event of its document after the LSN
// it last handled, then the live ones, with no gap and no duplicate. Per
// topic (bus positions totally order a topic):
//
//  1. The client subscribes *in replay*, under the hub's lock. The live
//     consumer has dispatched everything up to some position B (boundary)
//     and will show this client every event after B: events of its
//     document are buffered, not sent. If the live consumer has not
//     dispatched anything yet, B is learnt from the first live event
//     (its position - 1). If since >= the LSN at B, nothing is missing on
//     this topic and the replay of it is skipped altogether.
//  2. A private broadcast subscription reads the topic from the first event
//     with lsn > since (bus.StartAfterLSN) and sends the document's events;
//     seen is the position of the last event it handled (any document).
//  3. Once B is known and the replay has reached it (seen >= B, or it
//     receives an event after B), the replay of that topic stops.
//     Everything up to seen was sent by the replay and everything after B
//     is delivered live, so buffered and later live events at positions
//     <= seen are dropped (skip = seen) and the rest are sent. No position
//     is sent twice and none is missed.
//  4. When every topic has caught up, the client leaves replay under the
//     hub's lock: the remaining buffer is flushed and Dispatch delivers to
//     it directly from then on.
//
// Until B is known (a fresh instance, no live traffic yet) the replay
// subscription itself keeps delivering new events, so nothing is lost.
// Only the replay goroutine writes replayed and buffered events into the
// queue while the client is in replay, which keeps them in order; it
// blocks on a full queue (the bus waits) rather than dropping the client,
// while live events wait in the bounded buffer.
//
// The cursor is bus.Cursor (the commit LSN); skipping by it (steps 1 and 2)
// needs it not to decrease along a topic, which holds as the CDC engine
// publishes in commit order.

// replayTopic is the replay state of one topic of one client, guarded by
// client.mu.
type replayTopic struct {
	boundary uint64  // live delivery covers every position after it...
	known    bool    // ...once known
	buf      []Event // live events of the client's document since subscribing
	seen     uint64  // last position the replay handled
	done     bool    // caught up: live delivery takes over
}

// noteLive is Dispatch's side of a replay: it is shown every live event of
// topic i while the client is in replay.
func (c *client) noteLive(i int, ev Event) {
	c.mu.Lock()
	st := &c.rs[i]
	wake := false
	if !st.known && ev.Position != 0 {
		st.boundary, st.known, wake = ev.Position-1, true, true
	}
	if ev.DocumentID == c.doc && len(ev.Frames) > 0 {
		if len(st.buf) >= c.h.opts.QueueSize {
			c.mu.Unlock()
			c.overflow()
			return
		}
		st.buf, wake = append(st.buf, ev), true
	}
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

type replayItem struct {
	i  int
	ev Event
}

// replay runs the replay of both topics after since and hands the client
// over to live delivery. It returns nil when done or when ctx is done.
func (c *client) replay(ctx context.Context, since uint64) error {
	b := c.h.opts.Bus
	items := make(chan replayItem)
	errc := make(chan error, len(topics))
	var stop [len(topics)]context.CancelFunc
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, t := range topics {
		sctx, cancel := context.WithCancel(ctx)
		stop[i] = cancel
		defer cancel()
		wg.Go(func() {
			err := b.Broadcast(sctx, t, bus.Start{Kind: bus.StartAfterLSN, LSN: since}, func(hctx context.Context, msgs []bus.Message) error {
				for _, m := range msgs {
					ev, err := Decode(m)
					if err != nil {
						c.h.log.Warn("replay: skipping undecodable event", "topic", t, "position", m.Position, "err", err)
					}
					select {
					case items <- replayItem{i, ev}:
					case <-hctx.Done():
						return nil
					}
				}
				return nil
			})
			if err != nil && sctx.Err() == nil {
				errc <- err
			}
		})
	}

	remaining := 0
	c.mu.Lock()
	for i := range topics {
		if c.rs[i].done {
			stop[i]()
		} else {
			remaining++
		}
	}
	c.mu.Unlock()
	for remaining > 0 {
		var frames [][]byte
		select {
		case <-ctx.Done():
			return nil
		case <-c.kicked:
			return nil
		case err := <-errc:
			return err
		case it := <-items:
			c.mu.Lock()
			st := &c.rs[it.i]
			switch {
			case st.done:
				// A straggler from a subscription being stopped.
			case st.known && it.ev.Position > st.boundary:
				frames = c.finishTopicLocked(it.i)
				stop[it.i]()
				remaining--
			default:
				st.seen = it.ev.Position
				if it.ev.DocumentID == c.doc {
					frames = it.ev.Frames
				}
				if st.known && st.seen >= st.boundary {
					frames = append(frames, c.finishTopicLocked(it.i)...)
					stop[it.i]()
					remaining--
				}
			}
			c.mu.Unlock()
		case <-c.wake:
			c.mu.Lock()
			for i := range topics {
				st := &c.rs[i]
				if !st.done && st.known && st.seen >= st.boundary {
					frames = append(frames, c.finishTopicLocked(i)...)
					stop[i]()
					remaining--
				} else if st.done {
					frames = append(frames, c.takeBufferedLocked(i)...)
				}
			}
			c.mu.Unlock()
		}
		for _, f := range frames {
			select {
			case c.queue <- f:
			case <-c.kicked:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	}

	// Hand over to Dispatch. Holding the hub's lock, no event is being
	// dispatched: what is buffered now is all that live delivery showed us.
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range topics {
		for _, f := range c.takeBufferedLocked(i) {
			select {
			case c.queue <- f:
			default:
				c.overflow()
			}
		}
	}
	if _, ok := c.h.replaying[c]; ok {
		delete(c.h.replaying, c)
		c.inReplay = false
	}
	return nil
}

// finishTopicLocked ends the replay of topic i and returns the buffered
// frames to send.
func (c *client) finishTopicLocked(i int) [][]byte {
	st := &c.rs[i]
	st.done = true
	c.skip[i] = st.seen
	return c.takeBufferedLocked(i)
}

// takeBufferedLocked empties topic i's buffer (once done), keeping what the
// replay did not already send.
func (c *client) takeBufferedLocked(i int) [][]byte {
	st := &c.rs[i]
	if !st.done {
		return nil
	}
	var frames [][]byte
	for _, ev := range st.buf {
		if ev.Position > c.skip[i] {
			frames = append(frames, ev.Frames...)
		}
	}
	st.buf = nil
	return frames
}
