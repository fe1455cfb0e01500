package realtime

import (
	"context"
	"encoding/json"
	"errors"
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

	// queue holds encoded messages for the writer. Live fan-out only ever
	// tries to send (never blocks); a replay blocks on it.
	queue chan []byte
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
}

func newClient(h *Hub, ws *websocket.Conn, doc string, expires time.Time) *client {
	return &client{
		h:       h,
		ws:      ws,
		doc:     doc,
		expires: expires,
		queue:   make(chan []byte, h.opts.QueueSize),
		control: make(chan []byte, 1),
		kicked:  make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
}

// kick asks the connection to close with why; the first reason wins.
func (c *client) kick(why closeCode) {
	c.kickOnce.Do(func() {
		c.why = why
		close(c.kicked)
	})
}

// deliver queues a live event without blocking; nothing once the client
// is kicked (a revoked subscriber gets nothing after the revocation).
func (c *client) deliver(ev Event) {
	if ev.Position != 0 && ev.Position <= c.skip || c.isKicked() {
		return
	}
	for _, f := range ev.Frames {
		select {
		case c.queue <- f:
		default:
			c.overflow()
			return
		}
	}
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
// it ended for. When the hub shuts down (or ctx, the request's, is done)
// the connection is closed with 1001.
func (c *client) run(ctx context.Context, since *uint64) {
	c.ws.SetReadLimit(c.h.opts.ReadLimit)
	var wg sync.WaitGroup
	// The reader must run for pongs (and close frames) to be processed.
	// Its context is not cancelled on kick: cancelling a Read closes the
	// connection at once, before the close frame could be written.
	wg.Go(func() { c.readLoop() })
	if since != nil {
		rctx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			defer cancel()
			if err := c.replay(rctx, *since); err != nil && rctx.Err() == nil {
				c.h.log.Warn("websocket replay failed", "document_id", c.doc, "err", err)
				c.kick(closeCode{code: websocket.StatusInternalError, reason: "replay failed"})
			}
		})
		defer cancel()
	}
	c.writeLoop(ctx)
	c.h.unsubscribe(c)
	if c.why.now {
		_ = c.ws.CloseNow()
	} else {
		_ = c.ws.Close(c.why.code, c.why.reason)
	}
	wg.Wait()
}

// writeLoop writes queued messages, pings the client and watches the
// token's expiry until the connection is kicked or ctx is done.
func (c *client) writeLoop(ctx context.Context) {
	o := c.h.opts
	ping := time.NewTicker(o.PingInterval)
	defer ping.Stop()
	var expiry <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expiry = t.C
	}
	var recheck <-chan time.Time
	if c.recheck != nil {
		t := time.NewTicker(o.KeyRecheck)
		defer t.Stop()
		recheck = t.C
	}
	var pinging, checking atomic.Bool
	var pings sync.WaitGroup
	defer pings.Wait()
	for {
		var frame []byte
		select {
		case <-c.kicked:
			return
		case <-ctx.Done():
			c.kick(closeShutdown)
			return
		case <-c.h.shutdown:
			c.kick(closeShutdown)
			return
		case <-expiry:
			c.kick(closeExpired)
			return
		case <-recheck:
			// Aside, as the ping: a key not in the verifier's cache costs
			// a query, and messages keep flowing meanwhile.
			if checking.CompareAndSwap(false, true) {
				pings.Go(func() {
					defer checking.Store(false)
					rctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
					defer cancel()
					if err := c.recheck(rctx); apperr.CodeOf(err) == apperr.Unauthenticated {
						c.kick(closeRevokedKey)
					}
				})
			}
			continue
		case <-ping.C:
			// Ping waits for the pong (read by readLoop); do it aside so
			// messages keep flowing meanwhile.
			if pinging.CompareAndSwap(false, true) {
				pings.Go(func() {
					defer pinging.Store(false)
					pctx, cancel := context.WithTimeout(context.Background(), o.PongTimeout)
					defer cancel()
					if err := c.ws.Ping(pctx); err != nil {
						select {
						case <-c.kicked:
						default:
							reaped.Inc()
							c.kick(closeDead)
						}
					}
				})
			}
			continue
		case frame = <-c.control:
		case frame = <-c.queue:
		}
		if c.isKicked() {
			// select picks among ready cases at random: a kick (a
			// revocation above all) wins over frames still queued.
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
		err := c.ws.Write(wctx, websocket.MessageText, frame)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				reaped.Inc()
			}
			c.kick(closeCode{code: websocket.StatusGoingAway, now: true})
			return
		}
		c.sent.Add(1)
		messagesSent.Inc()
	}
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
			default: // a pong is already waiting: one answers both
			}
		}
	}
}
