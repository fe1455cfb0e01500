package realtime

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/apperr"
)

// client is one WebSocket connection subscribed to one document.
type client struct {
	h   *Hub
	ws  *websocket.Conn
	doc string
	// expires is when the token runs out (zero: never); the connection is
	// then closed with 1008.
	expires time.Time
	// viewer is whom the client watches as; set before it subscribes and
	// constant after (access.go).
	viewer viewer
	// recheck, when set (a connection opened with an API key), verifies
	// the credential again every Options.KeyRecheck: an Unauthenticated
	// answer (the key was revoked or expired) closes the connection with
	// 1008; any other failure (PostgreSQL out of reach) keeps it.
	recheck func(context.Context) error

	// queue holds the events waiting for the writer, one delivery each
	// (its encoded messages). Live fan-out only ever tries to send (never
	// blocks); a replay blocks on it.
	queue chan *delivery
	// control carries replies to the client's own pings; one at a time is
	// enough.
	control chan []byte

	kickOnce sync.Once
	kicked   chan struct{}
	why      closeCode

	// skip: live events at or below this bus position were already sent by
	// the replay. Written before inReplay is cleared (under Hub.mu) and
	// constant after.
	skip uint64
	// inReplay is guarded by Hub.mu.
	inReplay bool

	// mu guards rs, the replay's state shared with Dispatch.
	mu   sync.Mutex
	rs   replayState
	wake chan struct{}

	sent atomic.Int64

	// writing: a writer goroutine is running (poke).
	writing atomic.Bool
	// writeTimer bounds the write in progress (WriteTimeout): armed
	// before each write and stopped after, by the one running writer;
	// made at the first write.
	writeTimer *time.Timer
	// bgMu guards ended and timers; bg counts what runs aside (writer,
	// pings, rechecks, replay), which finish waits for.
	bgMu       sync.Mutex
	ended      bool
	timers     []*time.Timer
	stopReplay context.CancelFunc
	bg         sync.WaitGroup
	finished   chan struct{} // closed when finish is done
}

func newClient(h *Hub, ws *websocket.Conn, doc string, expires time.Time) *client {
	return &client{
		h:       h,
		ws:      ws,
		doc:     doc,
		expires: expires,
		queue:   make(chan *delivery, h.opts.QueueSize),
		control: make(chan []byte, 1),
		kicked:  make(chan struct{}),
		wake:    make(chan struct{}, 1),

		finished: make(chan struct{}),
	}
}

// kick asks the connection to close with why; the first reason wins. It
// never blocks (Dispatch kicks a slow client): finish runs aside.
func (c *client) kick(why closeCode) {
	c.kickOnce.Do(func() {
		c.why = why
		close(c.kicked)
		go c.finish()
	})
}

// deliver queues d, the live event at position pos, without blocking;
// nothing once the client is kicked (a revoked subscriber gets nothing
// after the revocation). It reports whether d was queued: the writer, or
// finish, will call d.done.
func (c *client) deliver(pos uint64, d *delivery) bool {
	if pos != 0 && pos <= c.skip || c.isKicked() {
		return false
	}
	select {
	case c.queue <- d:
	default:
		c.overflow()
		return false
	}
	c.poke()
	return true
}

func (c *client) isKicked() bool {
	select {
	case <-c.kicked:
		return true
	default:
		return false
	}
}

func (c *client) overflow() {
	select {
	case <-c.kicked:
	default:
		queueDrops.Inc()
		c.h.log.Info("closing slow websocket client", "document_id", c.doc, "queue", cap(c.queue))
		c.kick(closeSlow)
	}
}

var pongFrame = []byte(`{"type":"pong"}`)

// run serves the connection until it ends, then closes it with the reason
// it ended for. When the hub shuts down the connection is closed with 1001.
//
// An idle connection has one goroutine, this one, reading (the reader must
// run for pongs and close frames to be processed). A writer goroutine
// exists only while frames wait (poke), and pings, the token's expiry, the
// key's recheck and the hub's shutdown are timers and callbacks, not a
// goroutine waiting on them: a goroutine's stack was most of an idle
// connection's memory.
func (c *client) run(ctx context.Context, since *uint64) {
	o := c.h.opts
	c.ws.SetReadLimit(o.ReadLimit)
	stopShutdown := context.AfterFunc(c.h.stopped, func() { c.kick(closeShutdown) })
	defer stopShutdown()
	if !c.expires.IsZero() {
		t := time.AfterFunc(time.Until(c.expires), func() { c.kick(closeExpired) })
		defer t.Stop()
	}
	c.every(o.PingInterval, func() {
		// Ping waits for the pong, read by this goroutine's readLoop.
		pctx, cancel := context.WithTimeout(context.Background(), o.PongTimeout)
		defer cancel()
		if err := c.ws.Ping(pctx); err != nil && !c.isKicked() {
			reaped.Inc()
			c.kick(closeDead)
		}
	})
	if c.recheck != nil {
		c.every(o.KeyRecheck, func() {
			rctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
			defer cancel()
			if err := c.recheck(rctx); apperr.CodeOf(err) == apperr.Unauthenticated {
				c.kick(closeRevokedKey)
			}
		})
	}
	if since != nil {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c.bgMu.Lock()
		c.stopReplay = cancel // a kick ends the replay (finish)
		c.bgMu.Unlock()
		c.background(func() {
			defer cancel()
			if err := c.replay(rctx, *since); err != nil && rctx.Err() == nil {
				c.h.log.Warn("websocket replay failed", "document_id", c.doc, "err", err)
				c.kick(closeCode{code: websocket.StatusInternalError, reason: "replay failed"})
			}
		})
	}
	c.readLoop()
	<-c.finished
}

// finish closes a kicked connection: it leaves the hub, stops the timers,
// closes with the kick's reason (the close handshake needs readLoop, still
// running) and waits for what runs aside (writer, ping, replay).
func (c *client) finish() {
	c.h.unsubscribe(c)
	c.bgMu.Lock()
	c.ended = true
	for _, t := range c.timers {
		t.Stop()
	}
	if c.stopReplay != nil {
		c.stopReplay()
	}
	c.bgMu.Unlock()
	if c.why.now {
		_ = c.ws.CloseNow()
	} else {
		_ = c.ws.Close(c.why.code, c.why.reason)
	}
	c.bg.Wait()
	// What is still queued will never be written: the fan-out of those
	// events is done with this connection. Nothing is queued from now on
	// (Dispatch no longer sees the client; deliver refuses a kicked one).
	for {
		select {
		case d := <-c.queue:
			d.done()
		default:
			close(c.finished)
			return
		}
	}
}

// background runs f aside, unless the connection has ended; finish waits
// for it.
func (c *client) background(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.ended {
		return false
	}
	c.bg.Go(f)
	return true
}

// every runs f every d, one run at a time, until the connection ends.
func (c *client) every(d time.Duration, f func()) {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.ended {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.background(func() {
			f()
			c.bgMu.Lock()
			if !c.ended {
				t.Reset(d)
			}
			c.bgMu.Unlock()
		})
	})
	c.timers = append(c.timers, t)
}

// poke starts the writer if it is not running. Whoever queues a frame
// pokes after.
func (c *client) poke() {
	if c.writing.CompareAndSwap(false, true) {
		if !c.background(c.write) {
			c.writing.Store(false)
		}
	}
}

// write writes queued frames (replies to pings first) until none is left.
func (c *client) write() {
	for {
		select {
		case f := <-c.control:
			if !c.writeFrame(f) {
				return
			}
			continue
		default:
		}
		select {
		case d := <-c.queue:
			ok := true
			for _, f := range d.frames {
				if ok = c.writeFrame(f); !ok {
					break
				}
			}
			d.done()
			if !ok {
				return
			}
		default:
			c.writing.Store(false)
			// A frame queued after the look and before the Store
			// found the writer running and did not start one.
			if len(c.control) == 0 && len(c.queue) == 0 || !c.writing.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// writeFrame writes one frame. It returns false when the connection is
// kicked, after which the writer stays "running" (none is needed again):
// a kick (a revocation above all) wins over frames still queued, and a
// failed write kicks.
func (c *client) writeFrame(frame []byte) bool {
	if c.isKicked() {
		return false
	}
	// One timer per connection, re-armed per write, rather than a
	// context with a deadline per write: that allocated a context, a
	// timer and the library's AfterFunc registration for every frame,
	// 10,000 of each per event fanned out to 10,000 subscribers. A write
	// blocked past the timeout is ended by the kick closing the
	// connection, as the context's deadline did.
	if c.writeTimer == nil {
		c.writeTimer = time.AfterFunc(c.h.opts.WriteTimeout, c.writeTimedOut)
	} else {
		c.writeTimer.Reset(c.h.opts.WriteTimeout)
	}
	err := c.ws.Write(context.Background(), websocket.MessageText, frame)
	c.writeTimer.Stop()
	if err != nil {
		c.kick(closeCode{code: websocket.StatusGoingAway, now: true})
		return false
	}
	c.sent.Add(1)
	messagesSent.Inc()
	return true
}

// writeTimedOut drops a client that has not taken a frame within the
// write timeout. Closing the connection here ends the blocked write even
// when the client was kicked before (a full queue): finish's close
// handshake would wait behind that write.
func (c *client) writeTimedOut() {
	reaped.Inc()
	c.kick(closeCode{code: websocket.StatusGoingAway, now: true})
	_ = c.ws.CloseNow()
}

// readLoop handles what the client sends: {"type":"ping"} is answered with
// {"type":"pong"}; anything else is ignored. It ends when the connection
// closes.
func (c *client) readLoop() {
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				c.kick(closeNormal)
			} else {
				c.kick(closeCode{code: websocket.StatusGoingAway, now: true})
			}
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "ping" {
			select {
			case c.control <- pongFrame:
				c.poke()
			default: // a pong is already waiting: one answers both
			}
		}
	}
}
