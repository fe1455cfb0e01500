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
//  1. The client subscribes *in replay*: from that moment Dispatch shows it
//     every live event of the topic. The position of the first one is
//     firstLive; events of its document are buffered, not sent. Live
//     delivery is contiguous from firstLive on.
//  2. A private broadcast subscription reads the topic from the first event
//     with lsn > since (bus.StartAfterLSN) and sends the document's events;
//     seen is the position of the last event it handled (any document).
//  3. As soon as firstLive is known and the replay has reached it (the
//     replay receives an event at position >= firstLive, or seen >=
//     firstLive already when the first live event shows up), the replay of
//     that topic stops. Everything up to seen was sent by the replay;
//     everything from firstLive on is (or will be) delivered live; so the
//     buffered and later live events at positions <= seen are dropped
//     (skip = seen) and the rest are sent. No position is sent twice and
//     none is missed.
//  4. When every topic has caught up, the client leaves replay under the
//     hub's lock: the remaining buffer is flushed and Dispatch delivers to
//     it directly from then on.
//
// Until live traffic appears on a topic, the replay subscription itself
// keeps delivering new events, so a quiet system loses nothing either.
// Only this goroutine writes replayed and buffered events into the queue
// while the client is in replay, which keeps them in order; it blocks on a
// full queue (the bus waits) rather than dropping the client, while live
// events wait in the bounded buffer.

// replayTopic is the replay state of one topic of one client, guarded by
// client.mu.
type replayTopic struct {
	firstLive uint64  // position of the first live event after subscribing; 0: none yet
	buf       []Event // live events of the client's document since subscribing
	seen      uint64  // last position the replay handled
	done      bool    // caught up: live delivery takes over
}

// noteLive is Dispatch's side of a replay: it is shown every live event of
// topic i while the client is in replay.
func (c *client) noteLive(i int, ev Event) {
	c.mu.Lock()
	st := &c.rs[i]
	wake := false
	if st.firstLive == 0 && ev.Position != 0 {
		st.firstLive, wake = ev.Position, true
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

	remaining := len(topics)
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
			case st.firstLive != 0 && it.ev.Position >= st.firstLive:
				frames = c.finishTopicLocked(it.i)
				stop[it.i]()
				remaining--
			default:
				st.seen = it.ev.Position
				if it.ev.DocumentID == c.doc {
					frames = it.ev.Frames
				}
			}
			c.mu.Unlock()
		case <-c.wake:
			c.mu.Lock()
			for i := range topics {
				st := &c.rs[i]
				if !st.done && st.firstLive != 0 && st.seen >= st.firstLive {
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
