package nats

import (
	"context"
	"fmt"

	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/docstream/docstream/internal/bus"
)

// fastMin is the smallest publish sent as a fast-ingest batch. A batch
// costs round trips of its own (its first message waits for the server's
// first ack, its commit for the commit ack), so a handful of messages (a
// watermark, a trickle of small transactions) gain little from it. 64 is
// a round figure, not a measured break-even; the CDC engine's batches
// under load are up to --cdc-max-batch (1,000) events.
const fastMin = 64

// fastIngest reports whether msgs go out as one JetStream fast-ingest batch
// (ADR-50, nats-server 2.14+): the bus is the embedded server's (whose
// version is known, and whose streams it made allow batched publishing),
// there are enough messages, and they all belong to one stream that allows
// it. Anything else takes the per-message path: an external server, even
// one whose operator allowed batches, since the path is tested on the
// embedded single node only.
func (b *Bus) fastIngest(ctx context.Context, msgs []bus.Message) bool {
	if !b.opts.batchPublish || len(msgs) < fastMin {
		return false
	}
	var name string    // the stream of the messages so far
	var checked string // the topic last looked up
	allowed := false
	for _, m := range msgs {
		if m.Topic == checked {
			continue
		}
		s, err := b.stream(ctx, m.Topic)
		if err != nil {
			return false // the per-message path reports it
		}
		cfg := s.CachedInfo().Config
		if name != "" && cfg.Name != name {
			return false
		}
		name, checked, allowed = cfg.Name, m.Topic, cfg.AllowBatchPublish
	}
	return allowed
}

// publishFast sends msgs as one fast-ingest batch in gap-fail mode: the
// server stores them in order, stops at the first it cannot store, drops a
// duplicate message ID as a plain publish does, and acks the batch once,
// with the number of messages it went through. wait commits the batch and
// succeeds only when that number is len(msgs).
func (b *Bus) publishFast(ctx context.Context, msgs []bus.Message) (wait func(context.Context) error, err error) {
	fp, err := jetstreamext.NewFastPublisher(b.js, jetstreamext.FastPublishFlowControl{
		Flow:               500,
		MaxOutstandingAcks: 8,
		AckTimeout:         b.opts.PublishTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: fast publish: %w", err)
	}
	for _, m := range msgs {
		if _, err := fp.AddMsg(natsMsg(m)); err != nil {
			return nil, fmt.Errorf("nats: fast publish %s: %w", m.Topic, err)
		}
	}
	// A batch whose wait is never called (its publisher gave up on it: the
	// CDC engine after an earlier batch failed) is closed once ctx is done,
	// so its ack subscription does not outlive it.
	stop := context.AfterFunc(ctx, func() { _, _ = fp.Close(ctx) })
	return func(wctx context.Context) error {
		if !stop() {
			return fmt.Errorf("nats: fast publish abandoned: %w", context.Cause(ctx))
		}
		ack, err := fp.Close(wctx)
		if err != nil {
			return fmt.Errorf("nats: fast publish commit: %w", err)
		}
		if ack.BatchSize != uint64(len(msgs)) {
			return fmt.Errorf("nats: fast publish: stream %s went through %d of %d messages", ack.Stream, ack.BatchSize, len(msgs))
		}
		if b.syncer != nil {
			return b.syncer.Sync()
		}
		return nil
	}, nil
}
