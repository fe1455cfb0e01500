// Package realtime is the WebSocket service: clients subscribe to one
// document at /ws/{document_id} and receive its change events, mapped from
// the CDC topics to the reference's messages.
//
// Every instance is a broadcast consumer of cdc.documents, cdc.signatures,
// cdc.signing_requests and cdc.signing_recipients (no shared group), so every instance sees every event and
// clients may connect to any of them. One subscription covers both topics,
// so a document's events reach its clients in commit order. A client that reconnects with
// ?since=<lsn> first gets the events it missed, replayed from the bus, then
// the live ones, with neither gap nor duplicate (see replay.go).
//
// Each connection has a bounded send queue. Fan-out never blocks: a client
// whose queue is full is closed with 1013 (try again later) while the others
// keep receiving.
package realtime

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
)

var (
	connectionsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_realtime_connections",
		Help: "Open WebSocket connections.",
	})
	documentsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_realtime_documents",
		Help: "Documents with at least one subscriber.",
	})
	listGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_realtime_list_connections",
		Help: "Open WebSocket connections to the document list feed (WS /ws).",
	})
	queueDrops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docstream_realtime_queue_drops_total",
		Help: "Connections closed with 1013 because their send queue was full.",
	})
	reaped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docstream_realtime_reaped_total",
		Help: "Connections dropped because a ping got no pong in time or a write timed out.",
	})
	messagesSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docstream_realtime_messages_sent_total",
		Help: "Messages written to WebSocket clients.",
	})
	revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docstream_realtime_revoked_total",
		Help: "Subscriptions closed with 1008 because the document's readers no longer include the subscriber.",
	})
	eventsConsumed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_realtime_events_total",
		Help: "Change events consumed from the bus, by topic.",
	}, []string{"topic"})
)

// topics are what the hub consumes, all through one subscription (so in
// commit order across them; see Consume).
var topics = [...]string{bus.TopicDocuments, bus.TopicSignatures, bus.TopicSigningRequests, bus.TopicSigningRecipients}

// subscription is the Broadcast topic argument covering topics.
var subscription = bus.Topics(topics[:]...)

func ours(topic string) bool {
	for _, t := range topics {
		if t == topic {
			return true
		}
	}
	return false
}

// Options tune a Hub. Start from DefaultConfig().Hub: every duration and
// size must be > 0 (Config.Validate).
type Options struct {
	// Bus is consumed by Consume and read by replays (?since=). Without it
	// the hub only fans out what Dispatch is given, and ?since= is refused.
	Bus bus.Bus
	// QueueSize is how many events may wait for one connection before it
	// is closed with 1013 (an event is one message or, rarely, two: a
	// status and a title changed together).
	QueueSize int
	// WriteTimeout bounds one write to a client; a client
	// that does not take a message in that time is dropped.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings each client and
	// PongTimeout how long it waits for the pong before dropping the
	// connection as dead.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// ReadLimit is the largest message a client may send.
	ReadLimit int64
	// KeyRecheck is how often a connection opened with an API key
	// verifies its key again, so that a key revoked while its WebSocket is
	// open stops delivery (1008 "credential revoked") within the key
	// verifier's cache lifetime (--apikey-cache-ttl) plus this. Zero: 1 s.
	// A JWT cannot be revoked; its connection ends at its expiry.
	KeyRecheck time.Duration
	Log        *slog.Logger // nil: discard
}

// Hub keeps the subscriptions and fans events out to them.
type Hub struct {
	opts Options
	log  *slog.Logger

	// mu guards docs, replaying and every client's inReplay. Dispatch holds
	// it shared; (un)subscribing and ending a replay hold it exclusively, so
	// a client is handled exactly once per event.
	mu        sync.RWMutex
	docs      map[string]map[*client]struct{}
	list      map[*client]struct{} // subscribers of the list feed (WS /ws)
	replaying map[*client]struct{}
	// lastPos and lastLSN are those of the last event dispatched (0: none
	// since start). Positions are one space across the topics (one
	// subscription).
	lastPos uint64
	lastLSN uint64

	total    atomic.Int64
	clients  sync.WaitGroup
	consumer consumerState
	dedup    *bus.Dedup // repeats of events already dispatched (by LSN)
	// stopped is cancelled by Shutdown: every connection ends with 1001
	// (each has a context.AfterFunc on it, not a goroutine waiting).
	stopped context.Context
	stop    context.CancelFunc
}

// NewHub returns a hub; start Consume to feed it from the bus.
func NewHub(opts Options) *Hub {
	stopped, stop := context.WithCancel(context.Background())
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.KeyRecheck <= 0 {
		opts.KeyRecheck = time.Second
	}
	return &Hub{
		opts:      opts,
		log:       opts.Log,
		docs:      map[string]map[*client]struct{}{},
		list:      map[*client]struct{}{},
		replaying: map[*client]struct{}{},
		dedup:     bus.NewDedup("realtime"),
		stopped:   stopped,
		stop:      stop,
	}
}

// Run consumes the bus (if the hub has one) until ctx is done, then closes
// every connection with 1001 going away (Wait waits for them).
func (h *Hub) Run(ctx context.Context) error {
	defer h.Shutdown()
	if h.opts.Bus == nil {
		<-ctx.Done()
		return nil
	}
	return h.Consume(ctx)
}

// Shutdown closes every connection, present and future, with 1001.
func (h *Hub) Shutdown() { h.stop() }

// Dispatch fans ev out to the subscribers of its document without blocking:
// a subscriber whose queue is full is closed with 1013. Events must be
// dispatched in bus order, by one goroutine at a time (Consume).
func (h *Hub) Dispatch(ev Event) {
	if !ours(ev.Topic) {
		return
	}
	start := time.Now()
	h.consumer.observe(ev)
	h.mu.RLock()
	defer h.mu.RUnlock()
	// The one dispatcher writes these; subscribe reads them under the
	// exclusive lock, i.e. between two dispatches.
	if ev.Position != 0 {
		h.lastPos = ev.Position
		h.lastLSN = ev.LSN
	}
	// A change of the document's readers that leaves a subscriber out
	// ends its subscription before anything of the event reaches it, in
	// replay or not (access.go).
	if ev.HasReaders {
		for c := range h.docs[ev.DocumentID] {
			if !c.viewer.mayView(ev.Readers) {
				revoked.Inc()
				c.kick(closeRevoked)
			}
		}
	}
	// Clients still replaying see every event (to learn where live
	// delivery begins) and buffer their document's; see replay.go.
	for c := range h.replaying {
		c.noteLive(ev)
	}
	if len(ev.Frames) == 0 {
		return
	}
	d := liveDelivery(ev, start)
	n := 0
	for c := range h.docs[ev.DocumentID] {
		if !c.inReplay && c.deliver(ev.Position, d) {
			n++
		}
	}
	for c := range h.list {
		if !c.inReplay && c.wants(ev) && c.deliver(ev.Position, d) {
			n++
		}
	}
	d.launched(n)
}

// subscribe adds c to its document. A client reconnecting after since is
// also put in the replaying set, in the same critical section, so it sees
// every live event from now on; it reports whether a replay is needed
// (see replay.go).
func (h *Hub) subscribe(c *client, since *uint64) bool {
	replay := false
	h.mu.Lock()
	if since != nil {
		c.mu.Lock()
		switch {
		case h.lastPos == 0:
			replay = true // boundary learnt from the first live event
		case *since >= h.lastLSN:
			// Nothing committed after since has been dispatched: live
			// delivery alone covers the rest.
		default:
			c.rs.boundary, c.rs.known = h.lastPos, true
			replay = true
		}
		c.mu.Unlock()
	}
	if c.doc == "" {
		h.list[c] = struct{}{}
		listGauge.Inc()
	} else {
		subs := h.docs[c.doc]
		if subs == nil {
			subs = map[*client]struct{}{}
			h.docs[c.doc] = subs
			documentsGauge.Inc()
		}
		subs[c] = struct{}{}
	}
	if replay {
		c.inReplay = true
		h.replaying[c] = struct{}{}
	}
	h.mu.Unlock()
	h.total.Add(1)
	connectionsGauge.Inc()
	return replay
}

func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	if _, ok := h.list[c]; ok {
		delete(h.list, c)
		listGauge.Dec()
		h.total.Add(-1)
		connectionsGauge.Dec()
	}
	if subs := h.docs[c.doc]; c.doc != "" && subs != nil {
		if _, ok := subs[c]; ok {
			delete(subs, c)
			h.total.Add(-1)
			connectionsGauge.Dec()
		}
		if len(subs) == 0 {
			delete(h.docs, c.doc)
			documentsGauge.Dec()
		}
	}
	delete(h.replaying, c)
	c.inReplay = false
	h.mu.Unlock()
}

// Connections is the number of open connections.
func (h *Hub) Connections() int { return int(h.total.Load()) }

// Wait blocks until every connection has finished (after the hub's context
// passed to Serve is done, each one is closed with 1001).
func (h *Hub) Wait() { h.clients.Wait() }

// Stats is what GET /stats reports.
type Stats = api.RealtimeStats

// Stats snapshots the hub. Per-document counts are included up to
// maxDocs documents (the busiest are not picked: it is a sample).
func (h *Hub) Stats(maxDocs int) Stats {
	h.mu.RLock()
	s := Stats{
		TotalConnections:         int(h.total.Load()),
		DocumentsWithSubscribers: len(h.docs),
		ListSubscribers:          len(h.list),
		Replaying:                len(h.replaying),
	}
	if maxDocs > 0 {
		s.Documents = map[string]int{}
		for id, subs := range h.docs {
			if len(s.Documents) >= maxDocs {
				break
			}
			s.Documents[id] = len(subs)
		}
	}
	h.mu.RUnlock()
	s.Consumer = h.consumer.snapshot()
	return s
}

// closeCode is why a connection is being closed.
type closeCode struct {
	code   websocket.StatusCode
	reason string
	now    bool // no close handshake: the peer is gone or stuck
}

var (
	closeSlow       = closeCode{code: websocket.StatusTryAgainLater, reason: "slow consumer: send queue full"}
	closeExpired    = closeCode{code: websocket.StatusPolicyViolation, reason: "token expired"}
	closeRevokedKey = closeCode{code: websocket.StatusPolicyViolation, reason: "credential revoked"}
	closeShutdown   = closeCode{code: websocket.StatusGoingAway, reason: "server shutting down"}
	closeDead       = closeCode{code: websocket.StatusGoingAway, reason: "no pong", now: true}
	closeNormal     = closeCode{code: websocket.StatusNormalClosure}
)

var registerMetrics sync.Once

// RegisterMetrics puts this package's metrics on the default registry
// (served by every /metrics). The app calls it when it starts the target,
// so a process exports the metrics of the targets it runs and no others (a
// CDC-only process has no docstream_document_redis_up to alert on). Safe
// to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(connectionsGauge, documentsGauge, listGauge, queueDrops, reaped, messagesSent, revoked, eventsConsumed, fanoutSeconds)
	})
}
