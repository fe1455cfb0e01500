// Package nats is the NATS JetStream backend of bus.Bus: embedded in-process
// (StartEmbedded, the dev/all default) or an external server or cluster
// (Connect with a nats:// URL).
//
// Layout on JetStream: one stream per topic family, named after the first
// token of the topic upper-cased (topics cdc.* live in stream "CDC" with
// subjects "cdc.>"). A topic is a subject, so per-subject order is the
// per-topic order, and a broadcast over several topics of one family (one
// consumer filtering on their subjects) gets them in stream order. The message key travels in the "key" header (JetStream
// has no key), and a message carrying an lsn header is published with the
// JetStream message ID topic|lsn|key, so a change re-published after a CDC
// crash is dropped by the stream's duplicate window.
package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/bus"
)

// HeaderKey carries bus.Message.Key.
const HeaderKey = "key"

// Options tune the streams this client creates. The zero value is usable.
type Options struct {
	// MaxAge is how long a stream keeps messages (default bus.DefaultMaxAge). Applied
	// when this client creates or updates the stream of a topic family.
	MaxAge time.Duration
	// Duplicates is the JetStream dedup window (default 2 minutes): a
	// re-published change with the same topic, LSN and key inside it is
	// dropped.
	Duplicates time.Duration
	// Replicas of each stream and durable consumer (default 1; use 3 on a
	// cluster). A stream with more replicas (scaled by an operator) keeps
	// them: see stream.go.
	Replicas int
	// PublishTimeout bounds the wait for the acknowledgement of each
	// published message (default 5s). A message whose stream lost its
	// leader gets none; failing it then lets the publisher retry (the CDC
	// engine restarts from its slot, the dedup window drops repeats) on the
	// newly elected leader instead of waiting out the caller's deadline.
	PublishTimeout time.Duration
	// RequestTimeout bounds each JetStream API request (default 5s): stream
	// and consumer lookups, creation, state.
	RequestTimeout time.Duration
	// StallAfter is how long a subscription may go without progress while
	// messages wait (or its stream is unavailable) before it is replaced
	// and reported stalled (default 30s). See watch.go.
	StallAfter time.Duration
	Log        *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = bus.DefaultMaxAge
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Minute
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.StallAfter <= 0 {
		o.StallAfter = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Bus is a bus.Bus on JetStream.
type Bus struct {
	nc   *natsgo.Conn
	js   jetstream.JetStream
	opts Options
	url  string

	mu      sync.Mutex
	streams map[string]jetstream.Stream // by family, once ensured (stream.go)

	watched bus.Registry[*watched] // running subscriptions (watch.go)

	// shutdown stops what Close must stop besides the connection (the
	// embedded server).
	shutdown func()
	// syncer, when set, makes a publish durable before it counts as
	// acknowledged (embedded server, SyncBatch).
	syncer *syncer
}

var _ bus.Bus = (*Bus)(nil)

// Connect attaches to an external NATS server or cluster (nats://host:port,
// comma-separated for several seeds).
func Connect(ctx context.Context, url string, opts Options) (*Bus, error) {
	opts.defaults()
	nc, err := natsgo.Connect(url,
		natsgo.Name("docstream"),
		natsgo.MaxReconnects(-1),
		natsgo.RetryOnFailedConnect(false),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	b, err := newBus(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.url = url
	return b, nil
}

func newBus(ctx context.Context, nc *natsgo.Conn, opts Options) (*Bus, error) {
	// Unacked publishes allowed at once: room for the CDC engine's pipeline
	// (a few batches of up to 1,000 events by default) without stalling.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(opts.PublishTimeout), jetstream.WithDefaultTimeout(opts.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	b := &Bus{nc: nc, js: js, opts: opts, streams: map[string]jetstream.Stream{}}
	// Fail now, not on first publish, when JetStream is off on the server.
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("nats: jetstream not available: %w", err)
	}
	return b, nil
}

// URL is the nats:// URL other processes can use to reach the same server
// ("" for an embedded server that does not listen).
func (b *Bus) URL() string { return b.url }

// family is the stream name and subject wildcard of topic's family.
func family(topic string) (name, subjects string, err error) {
	first, _, _ := strings.Cut(topic, ".")
	// A comma would be a list of topics (bus.Topics), which only Broadcast takes.
	if first == "" || strings.ContainsAny(topic, " *>,") {
		return "", "", fmt.Errorf("nats: invalid topic %q", topic)
	}
	return strings.ToUpper(first), first + ".>", nil
}

// stream returns the stream holding topic, ensured (created or reconciled,
// see stream.go) once per process and then known without a request.
func (b *Bus) stream(ctx context.Context, topic string) (jetstream.Stream, error) {
	name, subjects, err := family(topic)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.streams[name]; ok {
		return s, nil
	}
	s, err := b.ensureStream(ctx, name, subjects)
	if err != nil {
		return nil, fmt.Errorf("nats: stream %s: %w", name, err)
	}
	b.streams[name] = s
	return s, nil
}

// MsgID is the JetStream message ID of m: topic|lsn|key when m carries an
// lsn header (a CDC change), else "" (no dedup).
func MsgID(m bus.Message) string {
	lsn := m.Headers[bus.HeaderLSN]
	if lsn == "" {
		return ""
	}
	return m.Topic + "|" + lsn + "|" + string(m.Key)
}

// Publish sends msgs pipelined on one connection (so per-topic order is
// kept) and returns once JetStream has stored every one of them. A duplicate
// (already stored inside the dedup window) counts as stored.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	wait, err := b.PublishAsync(ctx, msgs...)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// PublishAsync sends msgs as Publish does but returns once they are sent,
// with wait, which returns once JetStream has stored every one of them (or
// ctx is done); on the embedded server with SyncBatch, once they are also
// on disk (see sync.go). Messages of a later call from the same goroutine follow
// those of an earlier one on the connection, so a caller can send the next
// batch while the previous one is still being stored: the CDC engine does,
// to keep JetStream busy between batches.
//
// The CDC engine calls this for every captured row, so the per-message work
// is kept small: the stream is looked up once per run of one topic, and the
// headers (the message's, its key and its JetStream message ID) are built
// straight into one header map over one backing slice.
func (b *Bus) PublishAsync(ctx context.Context, msgs ...bus.Message) (wait func(context.Context) error, err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var checked string // the topic whose stream is known to exist
	for _, m := range msgs {
		if m.Topic != checked || checked == "" {
			if _, err := b.stream(ctx, m.Topic); err != nil {
				return nil, err
			}
			checked = m.Topic
		}
		n := len(m.Headers) + 2
		vals := make([]string, 0, n)
		h := make(natsgo.Header, n)
		set := func(k, v string) {
			vals = append(vals, v)
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
		for k, v := range m.Headers {
			set(k, v)
		}
		if len(m.Key) > 0 {
			set(HeaderKey, string(m.Key))
		}
		if id := MsgID(m); id != "" {
			set(jetstream.MsgIDHeader, id) // what jetstream.WithMsgID sets
		}
		f, err := b.js.PublishMsgAsync(&natsgo.Msg{Subject: m.Topic, Data: m.Value, Header: h})
		if err != nil {
			return nil, fmt.Errorf("nats: publish %s: %w", m.Topic, err)
		}
		futures = append(futures, f)
	}
	return func(ctx context.Context) error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("nats: publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if b.syncer != nil && len(futures) > 0 {
			return b.syncer.Sync()
		}
		return nil
	}, nil
}

// GroupCaughtUp reports whether the durable consumer of group on topic has
// nothing left to deliver and nothing delivered unacknowledged, as the
// server counts at the time of the call: every message stored on topic
// before the call was handled (a group member acks only after its handler
// succeeded). The indexer asks it to trust a watermark at once on a topic
// that gets no traffic (internal/indexer). An error when the consumer does
// not exist.
func (b *Bus) GroupCaughtUp(ctx context.Context, topic, group string) (bool, error) {
	s, err := b.stream(ctx, topic)
	if err != nil {
		return false, err
	}
	// Asked while a batch handler waits (the indexer's watermarks): only
	// the consumer's leader answers, so bounded like a publish.
	rctx, cancel := context.WithTimeout(ctx, b.attemptTimeout())
	defer cancel()
	cons, err := s.Consumer(rctx, consumerName(group, topic)) // fetches its info
	if err != nil {
		return false, fmt.Errorf("nats: consumer %s: %w", consumerName(group, topic), err)
	}
	info := cons.CachedInfo()
	return info.NumPending == 0 && info.NumAckPending == 0, nil
}

// consumerName makes a durable name from group and topic (names may not
// hold dots): one durable per (group, topic).
func consumerName(group, topic string) string {
	r := strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_")
	return r.Replace(group + "__" + topic)
}

// Group consumes topic with the durable pull consumer named after group
// and topic, explicit ack. A new group starts at the oldest retained
// message. Handler success acks the batch; an error naks it with a delay
// so it comes back. The subscription is watched (watch.go): lost or
// stalled, it is replaced, and a consumer deleted on the server is created
// again after its last known ack floor. Returns nil once ctx is done.
func (b *Bus) Group(ctx context.Context, topic, group string, opts bus.GroupOptions, h bus.Handler) error {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 200 * time.Millisecond
	}
	if _, _, err := family(topic); err != nil {
		return err
	}
	w := b.watch(ctx, topic, group)
	defer b.unwatch(w)
	nak := func(m jetstream.Msg) { _ = m.Nak() }
	deliver := func(ctx context.Context, batch []jetstream.Msg, msgs []bus.Message) {
		if err := h(ctx, msgs); err != nil {
			if ctx.Err() == nil {
				b.opts.Log.Warn("bus handler failed; batch will be redelivered", "topic", topic, "group", group, "err", err)
			}
			for _, m := range batch {
				_ = m.NakWithDelay(time.Second)
			}
			return
		}
		for _, m := range batch {
			_ = m.Ack()
		}
	}
	return b.subscribe(ctx, w, func(ctx context.Context) (jetstream.Consumer, error) {
		return b.groupConsumer(ctx, topic, group, opts, w.position())
	}, func(ctx context.Context, cons jetstream.Consumer) error {
		return b.consume(ctx, cons, w, opts.MaxBatch, opts.MaxWait, 0, nak, deliver)
	})
}

// groupConsumer returns the durable consumer of group on topic, creating
// it when missing (after stream sequence after, when known: a consumer lost
// on the server resumes where it was, not from the start) and updating
// only the settings docstream owns when it exists.
func (b *Bus) groupConsumer(ctx context.Context, topic, group string, opts bus.GroupOptions, after uint64) (jetstream.Consumer, error) {
	s, err := b.stream(ctx, topic)
	if err != nil {
		return nil, err
	}
	name := consumerName(group, topic)
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// How long a member that died holding messages keeps them. A member
		// that stops cleanly gives its unprocessed messages back at once.
		AckWait: 30 * time.Second,
		// Enough in flight for a full batch plus the client's prefetch.
		MaxAckPending: 4 * opts.MaxBatch,
		// As many as the stream has (at least --bus-replicas once the
		// stream is ensured): a consumer on one node would stop the group
		// when that node does, however many copies the stream has.
		Replicas: s.CachedInfo().Config.Replicas,
	}
	rctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	// The lookup is answered by the consumer's leader only: during an
	// election it is bounded like a publish, so the subscription is tried
	// again soon instead of after the API's whole timeout.
	lctx, lcancel := context.WithTimeout(rctx, b.attemptTimeout())
	cur, err := s.Consumer(lctx, name)
	lcancel()
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if after > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
			b.opts.Log.Warn("bus consumer missing on the server; creating it again after its last ack floor", "consumer", name, "from_seq", after+1)
		}
		cons, err := s.CreateConsumer(rctx, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) { // another member was first
			return s.Consumer(rctx, name)
		}
		if err != nil {
			return nil, fmt.Errorf("nats: consumer %s: %w", name, err)
		}
		return cons, nil
	case err != nil:
		return nil, fmt.Errorf("nats: consumer %s: %w", name, err)
	}
	have := cur.CachedInfo().Config
	if have.AckWait == cfg.AckWait && have.MaxAckPending == cfg.MaxAckPending && have.Replicas >= cfg.Replicas && have.FilterSubject == cfg.FilterSubject {
		return cur, nil
	}
	// Where it starts is fixed at creation; the rest is docstream's.
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
	cfg.Replicas = max(cfg.Replicas, have.Replicas)
	cons, err := s.UpdateConsumer(rctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: %w", name, err)
	}
	return cons, nil
}

// subscribe runs one subscription after another until ctx is done
// (bus.Resubscribe): open makes the consumer, run consumes it under the
// watchdog.
func (b *Bus) subscribe(ctx context.Context, w *watched, open func(context.Context) (jetstream.Consumer, error),
	run func(context.Context, jetstream.Consumer) error) error {
	return bus.Resubscribe(ctx, bus.Subscriber[jetstream.Consumer]{
		Name: w.name, Topic: w.st.Topic, Group: w.st.Group, StallAfter: b.opts.StallAfter, Log: b.opts.Log,
		Open: open, Run: run,
		Watch: func(ctx context.Context, cons jetstream.Consumer, cancel context.CancelCauseFunc) {
			b.watchdog(ctx, cons, w, cancel)
		},
		Resubscribed: w.resubscribed,
	})
}

// OrderedAcrossTopics reports that a Broadcast over several topics hands
// them over in one order, the order they were published in (see
// Broadcast): a consumer may keep one cursor over all of them. Kafka's
// bus has no such method: it orders a partition only.
func (b *Bus) OrderedAcrossTopics() bool { return true }

// Broadcast reads topic with an ephemeral, unacked consumer from start
// (broadcastConsumer). A handler error retries the same batch after a
// pause, so the subscriber still sees every message in order. The subscription is
// watched (watch.go): lost or stalled, it is replaced by one starting right
// after the last message the handler took. Returns nil once ctx is done.
//
// topic may list several topics (bus.Topics); they must share one stream
// (one family, e.g. cdc.*). One ordered consumer then filters on all of
// them, so their messages arrive in stream order (the order they were
// published in; commit order for CDC) and Position is one sequence space.
// On a server older than 2.10 (one filter subject per consumer) the
// consumer filters on the family's wildcard and the other topics are
// dropped here: same order, more traffic.
func (b *Bus) Broadcast(ctx context.Context, topic string, start bus.Start, h bus.Handler) error {
	subjects, err := bus.SplitTopics(topic)
	if err != nil {
		return err
	}
	fam, _, err := family(subjects[0])
	if err != nil {
		return err
	}
	for _, t := range subjects[1:] {
		f, _, err := family(t)
		if err != nil {
			return err
		}
		if f != fam {
			return fmt.Errorf("nats: broadcast over %q: %s is in stream %s, %s in stream %s; one subscription can only cover topics of one stream",
				topic, subjects[0], fam, t, f)
		}
	}
	if start.Kind < bus.StartNew || start.Kind > bus.StartAfterLSN {
		return fmt.Errorf("nats: unknown start kind %d", start.Kind)
	}
	var afterLSN uint64 // what consume skips: repeats at or below a StartAfterLSN
	if start.Kind == bus.StartAfterLSN {
		afterLSN = start.LSN
	}
	var only map[string]bool // subjects to keep when the server filters less
	w := b.watch(ctx, topic, "")
	defer b.unwatch(w)
	deliver := func(ctx context.Context, _ []jetstream.Msg, msgs []bus.Message) {
		if only != nil {
			msgs = slices.DeleteFunc(msgs, func(m bus.Message) bool { return !only[m.Topic] })
			if len(msgs) == 0 {
				return
			}
		}
		for ctx.Err() == nil {
			err := h(ctx, msgs)
			if err == nil {
				return
			}
			b.opts.Log.Warn("bus broadcast handler failed; retrying batch", "topic", topic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return b.subscribe(ctx, w, func(ctx context.Context) (jetstream.Consumer, error) {
		// A replacement subscription resumes right after the last message
		// the handler took, so the subscriber misses nothing and sees
		// nothing twice.
		from := start
		if p := w.position(); p > 0 {
			from = bus.Start{Kind: bus.StartPosition, Position: p + 1}
		}
		cons, filtered, err := b.broadcastConsumer(ctx, subjects, from, w.name)
		if filtered != nil {
			only = filtered
		}
		return cons, err
	}, func(ctx context.Context, cons jetstream.Consumer) error {
		defer b.deleteConsumer(fam, cons.CachedInfo().Name)
		// The consumer acks nothing: there is nothing to give back.
		return b.consume(ctx, cons, w, 500, 0, afterLSN, func(jetstream.Msg) {}, deliver)
	})
}

// broadcastConsumer creates the consumer of one broadcast subscription over
// subjects (of one stream) from start: an ephemeral pull consumer that acks
// nothing (one replica, in memory, removed by the server once unused for
// a while, and by deleteConsumer when the subscription ends). only is set
// when the server filters on the family's wildcard and the other topics
// must be dropped here.
//
// It is not nats.go's ordered consumer on purpose. That one re-creates its
// consumer itself when anything goes wrong, retrying without end while it
// holds the lock its Info takes: during a leader election the watchdog's
// Info call then waited as long as the retries did, so the subscription
// could neither be observed nor replaced and stayed reported stalled (the
// indexer's watermarks consumer, after the stream leader's node died).
// Here every failure ends the subscription, and subscribe makes the next
// one after the last message the handler took, under a watchdog whose Info
// call is a plain bounded request. What the ordered consumer added, a check
// that no message was lost on the way, is consume's sequence check.
func (b *Bus) broadcastConsumer(ctx context.Context, subjects []string, start bus.Start, label string) (cons jetstream.Consumer, only map[string]bool, err error) {
	s, err := b.stream(ctx, subjects[0])
	if err != nil {
		return nil, nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Name:          ephemeralName(label),
		AckPolicy:     jetstream.AckNonePolicy,
		MemoryStorage: true,
		Replicas:      1,
		// A process that died leaves its consumer behind for this long.
		InactiveThreshold: max(4*b.opts.StallAfter, time.Minute),
	}
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	switch start.Kind {
	case bus.StartNew:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case bus.StartBeginning:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case bus.StartPosition:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = max(start.Position, 1)
	case bus.StartAfterLSN:
		rctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
		seq, err := b.seekLSN(rctx, s, subjects, start.LSN)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = seq
	default:
		return nil, nil, fmt.Errorf("nats: unknown start kind %d", start.Kind)
	}
	rctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	cons, err = s.CreateConsumer(rctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
		// nats-server before 2.10 takes one filter subject: it ignored the
		// list and created a consumer of the whole stream. Remove that one
		// and filter on the family's wildcard, which keeps stream order;
		// the other topics are dropped here.
		b.deleteConsumer(s.CachedInfo().Config.Name, cfg.Name) // the stream's name
		_, wildcard, _ := family(subjects[0])
		cfg.Name, cfg.FilterSubjects, cfg.FilterSubject = ephemeralName(label), nil, wildcard
		only = map[string]bool{}
		for _, t := range subjects {
			only[t] = true
		}
		cons, err = s.CreateConsumer(rctx, cfg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("nats: consumer on %s: %w", strings.Join(subjects, ","), err)
	}
	return cons, only, nil
}

// ephemeralName names a broadcast's consumer after the subscription
// (bus.Named), so an operator listing the stream's consumers sees whose it
// is, plus a random suffix.
func ephemeralName(label string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	if label == "" {
		label = "broadcast"
	}
	return consumerName(label, hex.EncodeToString(r[:]))
}

// deleteConsumer removes a broadcast's consumer once its subscription
// ended, within one bounded request; a consumer it fails to remove goes
// away by itself after its inactive threshold.
func (b *Bus) deleteConsumer(stream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), min(b.opts.RequestTimeout, 2*time.Second))
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, stream, name)
}

// attemptTimeout bounds a request only a stream's or consumer's leader
// answers, on a path that is retried: like one publish attempt, so a leader
// election costs about its own length.
func (b *Bus) attemptTimeout() time.Duration {
	return min(b.opts.RequestTimeout, b.opts.PublishTimeout)
}

// seekLSN returns the stream sequence to start from to get the first
// message on one of subjects whose cursor (bus.Cursor) is greater than lsn.
// The CDC engine publishes in commit order, so along the stream the cursor
// of "the next message on subjects at or after sequence s" never decreases
// as s grows: a binary search over sequences finds the point in O(log n)
// probes. A probe is one direct get per subject (the next message on it at
// or after s), keeping the lowest sequence: JetStream's get-next takes a
// single subject, and a family wildcard would also match topics outside
// the filter. (Messages re-published after a crash outside the dedup window
// can break the order locally; consume skips anything at or below lsn for
// that reason.)
func (b *Bus) seekLSN(ctx context.Context, s jetstream.Stream, subjects []string, lsn uint64) (uint64, error) {
	// Only the stream's leader answers this. A stream electing a leader
	// answers nothing, so the question is bounded like a publish: a CDC
	// engine restarting during an election fails fast and tries again,
	// instead of waiting the API's whole timeout (5 s of a failover).
	ictx, cancel := context.WithTimeout(ctx, b.attemptTimeout())
	info, err := s.Info(ictx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("nats: stream info: %w", err)
	}
	lo, hi := info.State.FirstSeq, info.State.LastSeq+1
	if info.State.Msgs == 0 {
		return hi, nil
	}
	// Invariant: every sequence < lo leads to a cursor <= lsn; hi leads to > lsn (or the end).
	for lo < hi {
		mid := lo + (hi-lo)/2
		var next *jetstream.RawStreamMsg
		for _, subj := range subjects {
			m, err := s.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subj))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("nats: seek lsn: %w", err)
			}
			if next == nil || m.Sequence < next.Sequence {
				next = m
			}
		}
		if next == nil {
			hi = mid // nothing on subjects from mid on
			continue
		}
		got := bus.Cursor(bus.Message{Headers: map[string]string{
			bus.HeaderLSN: next.Header.Get(bus.HeaderLSN), bus.HeaderCommitLSN: next.Header.Get(bus.HeaderCommitLSN)}})
		if got > lsn {
			hi = mid
		} else {
			lo = next.Sequence + 1
		}
	}
	return lo, nil
}

// consume pulls from cons and hands batches to deliver: it waits for a
// first message, then gathers more for up to maxWait (0: only what is
// already buffered) until maxBatch.
func (b *Bus) consume(ctx context.Context, cons jetstream.Consumer, w *watched, maxBatch int, maxWait time.Duration, afterLSN uint64,
	release func(jetstream.Msg), deliver func(ctx context.Context, raw []jetstream.Msg, msgs []bus.Message)) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * maxBatch))
	if err != nil {
		return fmt.Errorf("nats: consume: %w", err)
	}
	// Messages' Next blocks without a context: Drain unblocks it, after
	// handing over what the client had already pulled, so that release can
	// give those back (a group member naks them: another member, or this
	// one after a restart, gets them at once instead of after AckWait).
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()

	// A reader goroutine feeds a channel so the batching below can wait with
	// a timer; it is owned by this function and ends when the iterator is
	// drained or stopped.
	ch := make(chan jetstream.Msg, maxBatch)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		next := uint64(1) // a broadcast's consumer sequence expected next
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					errc <- err
				}
				return
			}
			if !w.group {
				// A broadcast's consumer acks nothing, so a message lost on
				// the way (a pull answered to a connection that was gone)
				// is never sent again: a gap in its consumer sequence ends
				// the subscription, and the next one starts after the last
				// message the handler took.
				md, err := m.Metadata()
				if err != nil || md.Sequence.Consumer != next {
					got := uint64(0)
					if md != nil {
						got = md.Sequence.Consumer
					}
					errc <- fmt.Errorf("%w: consumer sequence %d, want %d", errGap, got, next)
					return
				}
				next++
			}
			if ctx.Err() != nil {
				release(m)
				continue
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				release(m)
			}
		}
	}()
	defer func() {
		it.Drain()
		wg.Wait()
		for m := range ch {
			release(m)
		}
	}()

	for {
		var raw []jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				select {
				case err := <-errc:
					if ctx.Err() == nil {
						return fmt.Errorf("nats: consume: %w", err)
					}
				default:
				}
				return nil
			}
			raw = append(raw, m)
		}
		var timer <-chan time.Time
		var t *time.Timer
		if maxWait > 0 {
			t = time.NewTimer(maxWait)
			timer = t.C
		}
	gather:
		for len(raw) < maxBatch {
			select {
			case m, ok := <-ch:
				if !ok {
					break gather
				}
				raw = append(raw, m)
				continue
			default:
			}
			if timer == nil {
				break
			}
			select {
			case m, ok := <-ch:
				if !ok {
					break gather
				}
				raw = append(raw, m)
			case <-timer:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		if t != nil {
			t.Stop()
		}
		msgs := make([]bus.Message, 0, len(raw))
		keep := raw[:0:0]
		for _, m := range raw {
			bm := toMessage(m)
			if afterLSN > 0 {
				if c := bus.Cursor(bm); c != 0 && c <= afterLSN {
					_ = m.Ack()
					continue
				}
			}
			msgs = append(msgs, bm)
			keep = append(keep, m)
		}
		if len(msgs) > 0 {
			w.handling()
			deliver(ctx, keep, msgs)
			var upto uint64
			if !w.group && ctx.Err() == nil {
				upto = msgs[len(msgs)-1].Position
			}
			w.handled(upto)
		}
	}
}

func toMessage(m jetstream.Msg) bus.Message {
	bm := bus.Message{Topic: m.Subject(), Value: m.Data(), Headers: map[string]string{}}
	for k, v := range m.Headers() {
		if len(v) == 0 {
			continue
		}
		if k == HeaderKey {
			bm.Key = []byte(v[0])
			continue
		}
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		bm.Headers[k] = v[0]
	}
	if md, err := m.Metadata(); err == nil {
		bm.Position = md.Sequence.Stream
		bm.Time = md.Timestamp
	}
	return bm
}

// Ping checks the connection and JetStream with a round trip.
func (b *Bus) Ping(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return errors.New("nats: not connected")
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return nil
}

// Close flushes and closes the connection and stops an embedded server.
func (b *Bus) Close() error {
	err := b.nc.Drain()
	// Drain is asynchronous; Close after it returns, for a clean shutdown.
	for i := 0; i < 100 && !b.nc.IsClosed(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	b.nc.Close()
	if b.shutdown != nil {
		b.shutdown()
	}
	if errors.Is(err, natsgo.ErrConnectionClosed) {
		err = nil
	}
	return err
}
