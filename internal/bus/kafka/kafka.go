// Package kafka is the Apache Kafka backend of bus.Bus, on franz-go.
//
// Publish uses an idempotent producer with acks=all; the record key is the
// event key (the row's primary key), so franz-go's default partitioner
// (murmur2, as Kafka's Java client) keeps every event of a row in one
// partition, in order. Topics are created on first use when missing.
// Group is a Kafka consumer group (one per group and topic) with offsets
// committed after the handler succeeds; Broadcast is a group-less consumer
// of every partition, of one topic or several (in one client, with no order
// across topics).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/docstream/docstream/internal/bus"
)

// Options tune topic creation. The zero value is usable.
type Options struct {
	// Partitions of topics this client creates (default 6; the watermark
	// topic always gets 1, its events are one ordered series).
	Partitions int32
	// ReplicationFactor of created topics (default -1: the broker's default).
	ReplicationFactor int16
	// MaxAge sets retention.ms of created topics (default bus.DefaultMaxAge).
	MaxAge time.Duration
	// StallAfter is how long a subscription may go without progress while
	// records wait (or the brokers cannot tell its lag) before it is
	// replaced and reported stalled (default 30s). See watch.go.
	StallAfter time.Duration
	// RequestTimeout bounds each request the watchdog makes for a
	// subscription's offsets (default 5s).
	RequestTimeout time.Duration
	Log            *slog.Logger
}

// Bus is a bus.Bus on Kafka.
type Bus struct {
	seeds []string
	opts  Options
	prod  *kgo.Client
	adm   *kadm.Client

	mu     sync.Mutex
	topics map[string]bool

	watched bus.Registry[*watched] // running subscriptions (watch.go)
}

var _ bus.Bus = (*Bus)(nil)

// ParseURL turns kafka://host:port,host:port into seed brokers.
func ParseURL(url string) ([]string, error) {
	rest, ok := strings.CutPrefix(url, "kafka://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("kafka: url %q: want kafka://host:port[,host:port…]", url)
	}
	rest, _, _ = strings.Cut(rest, "/")
	return strings.Split(rest, ","), nil
}

// Connect creates the producer and checks the cluster is reachable.
func Connect(ctx context.Context, seeds []string, opts Options) (*Bus, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = 6
	}
	if opts.ReplicationFactor == 0 {
		opts.ReplicationFactor = -1
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = bus.DefaultMaxAge
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 30 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		// Idempotence is franz-go's default and requires acks=all; both are
		// spelled out because the no-loss guarantee depends on them.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	b := &Bus{seeds: seeds, opts: opts, prod: prod, adm: kadm.NewClient(prod), topics: map[string]bool{}}
	if err := prod.Ping(ctx); err != nil {
		prod.Close()
		return nil, fmt.Errorf("kafka: brokers %v unreachable: %w", seeds, err)
	}
	return b, nil
}

// ensureTopic creates topic once per process if it does not exist.
func (b *Bus) ensureTopic(ctx context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topics[topic] {
		return nil
	}
	partitions := b.opts.Partitions
	if topic == bus.TopicWatermarks {
		partitions = 1
	}
	retention := strconv.FormatInt(b.opts.MaxAge.Milliseconds(), 10)
	resp, err := b.adm.CreateTopic(ctx, partitions, b.opts.ReplicationFactor, map[string]*string{"retention.ms": &retention}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	b.topics[topic] = true
	return nil
}

// Publish produces msgs and returns once every one is acknowledged by all
// in-sync replicas.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		if err := b.ensureTopic(ctx, m.Topic); err != nil {
			return err
		}
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs[i] = r
	}
	if err := b.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka: produce: %w", err)
	}
	return nil
}

// Group consumes topic in the Kafka consumer group "<group>.<topic>",
// starting at the oldest retained offset for a new group. Offsets are
// committed after h succeeds; on error the same batch is handed to h again
// after a pause (the member keeps its partitions, so order holds). The
// subscription is watched (watch.go): lost or stalled, its client is
// replaced by a new member, which resumes from the group's committed
// offsets. Returns nil once ctx is done.
func (b *Bus) Group(ctx context.Context, topic, group string, opts bus.GroupOptions, h bus.Handler) error {
	if strings.Contains(topic, ",") {
		return fmt.Errorf("kafka: group %s: one topic per group consumer, got the list %q", group, topic)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 200 * time.Millisecond
	}
	if err := b.ensureTopic(ctx, topic); err != nil {
		return err
	}
	name := group + "." + topic
	w := b.watch(ctx, topic, group)
	defer b.unwatch(w)
	return b.subscribe(ctx, w, []string{topic}, name, func(context.Context) (*kgo.Client, error) {
		// Before the client exists: it may join the group and be assigned
		// partitions before NewClient returns.
		w.subscribed(nil, nil)
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(b.seeds...),
			kgo.ConsumerGroup(name),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.FetchMaxWait(opts.MaxWait),
			// Records of a batch being handled are not revoked under us.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { w.assigned(m) }),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { w.revoked(m) }),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { w.revoked(m) }),
		)
		if err != nil {
			return nil, fmt.Errorf("kafka: group client: %w", err)
		}
		w.setClient(cl)
		return cl, nil
	}, func(ctx context.Context, cl *kgo.Client) error {
		return b.poll(ctx, cl, w, opts.MaxBatch, bus.Start{}, func(ctx context.Context, recs []*kgo.Record, msgs []bus.Message) bool {
			if len(msgs) > 0 {
				if err := b.retry(ctx, topic, msgs, h); err != nil {
					return false // ctx done
				}
			}
			if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
				// Not fatal: the records come again (at-least-once).
				b.opts.Log.Warn("kafka: commit offsets", "topic", topic, "group", group, "err", err)
			}
			return true
		})
	})
}

// Broadcast reads every partition of topic from start without a group.
// StartPosition applies the offset to each partition (exact for
// single-partition topics such as cdc.watermarks). StartAfterLSN reads from
// the oldest retained record and skips those with an lsn at or below
// start.LSN: Kafka has no per-header index and the topics are kept for a
// bounded time, so the scan is bounded too.
//
// topic may list several topics (bus.Topics): one client consumes all of
// them. Kafka orders records only within a partition, so there is no order
// across the topics (nor across partitions of one topic), and Position is
// an offset of the record's own partition: StartPosition applies the same
// offset to every partition of every listed topic.
//
// The subscription is watched (watch.go): lost or stalled, its client is
// replaced by one that reads each partition right after the last record
// the handler took, so the subscriber misses nothing and sees nothing
// twice. Returns nil once ctx is done.
func (b *Bus) Broadcast(ctx context.Context, topic string, start bus.Start, h bus.Handler) error {
	topics, err := bus.SplitTopics(topic)
	if err != nil {
		return err
	}
	if start.Kind < bus.StartNew || start.Kind > bus.StartAfterLSN {
		return fmt.Errorf("kafka: unknown start kind %d", start.Kind)
	}
	for _, t := range topics {
		if err := b.ensureTopic(ctx, t); err != nil {
			return err
		}
	}
	w := b.watch(ctx, topic, "")
	defer b.unwatch(w)
	return b.subscribe(ctx, w, topics, "", func(ctx context.Context) (*kgo.Client, error) {
		// A replacement reads a partition it never took a record of (one
		// added since) from its start: all of it is new.
		from := start
		if w.started() {
			from = bus.Start{Kind: bus.StartBeginning}
		}
		at, err := b.startOffsets(ctx, topics, from)
		if err != nil {
			return nil, err
		}
		// Every partition at an exact offset: where the subscription
		// started or, for a replacement, right after what the handler took.
		parts := map[string]map[int32]kgo.Offset{}
		var reads []tp
		for k, off := range w.resumeAt(at) {
			if parts[k.topic] == nil {
				parts[k.topic] = map[int32]kgo.Offset{}
			}
			parts[k.topic][k.partition] = kgo.NewOffset().At(off)
			reads = append(reads, k)
		}
		// An offset past the end (StartPosition) waits at the end.
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...), kgo.ConsumePartitions(parts),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("kafka: broadcast client: %w", err)
		}
		w.subscribed(cl, reads)
		return cl, nil
	}, func(ctx context.Context, cl *kgo.Client) error {
		return b.poll(ctx, cl, w, 500, start, func(ctx context.Context, _ []*kgo.Record, msgs []bus.Message) bool {
			if len(msgs) > 0 {
				return b.retry(ctx, topic, msgs, h) == nil
			}
			return true
		})
	})
}

// startOffsets resolves start to an offset for every partition of topics.
func (b *Bus) startOffsets(ctx context.Context, topics []string, start bus.Start) (map[tp]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	list := b.adm.ListStartOffsets
	if start.Kind == bus.StartNew {
		list = b.adm.ListEndOffsets
	}
	offs, err := list(ctx, topics...)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %v: %w", topics, err)
	}
	at := map[tp]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		at[tp{o.Topic, o.Partition}] = o.Offset
		if start.Kind == bus.StartPosition {
			at[tp{o.Topic, o.Partition}] = max(int64(start.Position), o.Offset)
		}
	})
	return at, nil
}

// retry calls h until it succeeds or ctx is done (then it returns ctx.Err()).
func (b *Bus) retry(ctx context.Context, topic string, msgs []bus.Message, h bus.Handler) error {
	for {
		err := h(ctx, msgs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.opts.Log.Warn("bus handler failed; retrying batch", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// poll hands what cl fetches to deliver, which reports whether the
// handler took the batch, until ctx is done (nil) or the client fails.
func (b *Bus) poll(ctx context.Context, cl *kgo.Client, w *watched, maxBatch int, start bus.Start,
	deliver func(ctx context.Context, recs []*kgo.Record, msgs []bus.Message) bool) error {
	defer cl.AllowRebalance()
	for {
		fetches := cl.PollRecords(ctx, maxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errClientClosed
		}
		var fatal error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				b.opts.Log.Warn("kafka: fetch", "topic", topic, "partition", p, "err", err)
				var ke *kerr.Error
				if errors.As(err, &ke) && !ke.Retriable {
					fatal = fmt.Errorf("kafka: fetch %s/%d: %w", topic, p, err)
				}
			}
		})
		if fatal != nil {
			return fatal
		}
		recs := fetches.Records()
		msgs := make([]bus.Message, 0, len(recs))
		for _, r := range recs {
			m := toMessage(r)
			if start.Kind == bus.StartAfterLSN {
				if c := bus.Cursor(m); c != 0 && c <= start.LSN {
					continue
				}
			}
			msgs = append(msgs, m)
		}
		if len(recs) > 0 {
			// With msgs empty (all skipped) a group still commits them and
			// a broadcast moves past them.
			w.handling(recs, len(msgs))
			ok := deliver(ctx, recs, msgs)
			w.handled(recs, len(msgs), ok)
			if !ok {
				return nil // ctx done
			}
		}
		cl.AllowRebalance()
	}
}

func toMessage(r *kgo.Record) bus.Message {
	m := bus.Message{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: make(map[string]string, len(r.Headers)),
		Position: uint64(r.Offset), Time: r.Timestamp, Partition: r.Partition}
	for _, h := range r.Headers {
		m.Headers[h.Key] = string(h.Value)
	}
	return m
}

// Ping checks that a broker answers.
func (b *Bus) Ping(ctx context.Context) error {
	if err := b.prod.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// Close flushes buffered records and closes the producer.
func (b *Bus) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.prod.Flush(ctx)
	b.prod.Close()
	return err
}
