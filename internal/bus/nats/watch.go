package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/bus"
)

// Every subscription (Group, Broadcast) runs under a watchdog. A pull
// subscription can be lost without an error reaching the client: the node
// holding the stream restarts and the durable consumer is gone, or the
// client's pull requests expired on a server that went away, and the
// iterator just waits. The watchdog asks the server for the consumer's
// state every StallAfter/4 and replaces the subscription when
//
//   - the consumer no longer exists (re-created where the group was), or
//   - messages are pending and nothing was delivered for StallAfter, or
//   - the server could not answer for StallAfter (stream unavailable),
//
// logging why and counting it. The subscription is then Stalled (a
// readiness failure, see bus.CheckConsumers) until it progresses again.

// watched is the state of one subscription (all its successive consumers).
type watched struct {
	name       string // "" when unnamed: not reported
	group      bool
	stallAfter time.Duration
	mu         sync.Mutex
	st         bus.ConsumerState
	busy       int // batches in the handler
	// lastSeq is the stream sequence up to which everything is done: for a
	// broadcast, the last message its handler took; for a group, the
	// consumer's ack floor as last seen (other members' batches may be
	// unacknowledged above what this member acked). A lost group consumer
	// is re-created after it, a broadcast resumed after it.
	lastSeq uint64
}

func (b *Bus) watch(ctx context.Context, topic, group string) *watched {
	w := &watched{name: bus.ConsumerName(ctx), group: group != "", stallAfter: b.opts.StallAfter, st: bus.ConsumerState{Name: bus.ConsumerName(ctx), Topic: topic, Group: group, LastProgress: time.Now()}}
	if w.name == "" {
		return w
	}
	b.watched.Add(w)
	w.export()
	return w
}

func (b *Bus) unwatch(w *watched) {
	if w.name == "" {
		return
	}
	b.watched.Remove(w)
}

// Consumers implements bus.Watcher: every named subscription running now,
// by name.
func (b *Bus) Consumers() []bus.ConsumerState { return b.watched.Consumers() }

var _ bus.Watcher = (*Bus)(nil)

// State implements bus.Watched.
func (w *watched) State() bus.ConsumerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st
	s.Stalled = w.busy == 0 && time.Since(s.LastProgress) > w.stallAfter
	return s
}

// handling records a batch handed to the handler (progress; busy until
// handled is called).
func (w *watched) handling() {
	w.mu.Lock()
	w.busy++
	w.st.LastProgress = time.Now()
	w.mu.Unlock()
	w.export()
}

// handled records the end of a batch; upto is the last stream sequence of
// a broadcast batch the handler took (0 for a group or a failed batch).
func (w *watched) handled(upto uint64) {
	w.mu.Lock()
	w.busy--
	w.st.LastProgress = time.Now()
	w.lastSeq = max(w.lastSeq, upto)
	w.mu.Unlock()
}

// observed records the consumer's state as the server reports it.
func (w *watched) observed(info *jetstream.ConsumerInfo) {
	w.mu.Lock()
	w.st.Pending, w.st.AckPending = info.NumPending, info.NumAckPending
	if info.NumPending == 0 {
		w.st.LastProgress = time.Now() // caught up
	}
	if w.group {
		w.lastSeq = max(w.lastSeq, info.AckFloor.Stream)
	}
	w.mu.Unlock()
	w.export()
}

func (w *watched) resubscribed(reason error) {
	w.mu.Lock()
	w.st.Resubscribes++
	w.st.LastError = reason.Error()
	w.mu.Unlock()
	bus.CountResubscribe(w.name)
}

func (w *watched) failed(err error) {
	w.mu.Lock()
	w.st.LastError = err.Error()
	w.mu.Unlock()
}

func (w *watched) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSeq
}

// export feeds the docstream_bus_consumer_* metrics (bus.ExportConsumer).
func (w *watched) export() {
	if w.name == "" {
		return
	}
	bus.ExportConsumer(w.State())
}

// Reasons a watchdog ends a subscription.
var (
	errConsumerLost = errors.New("consumer deleted on the server")
	errStalled      = errors.New("no progress while messages are pending")
	errGap          = errors.New("a message was lost on the way")
)

// watchdog checks cons until ctx is done and cancels the subscription (with
// the reason as cause) when it is lost or stalled.
func (b *Bus) watchdog(ctx context.Context, cons jetstream.Consumer, w *watched, cancel context.CancelCauseFunc) {
	every := max(b.opts.StallAfter/4, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	infoOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ictx, stop := context.WithTimeout(ctx, min(b.opts.RequestTimeout, b.opts.StallAfter))
		info, err := cons.Info(ictx)
		stop()
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			cancel(errConsumerLost)
			return
		case err != nil:
			w.failed(err)
			w.export()
			if time.Since(infoOK) > b.opts.StallAfter {
				cancel(fmt.Errorf("no consumer state from the server for %v: %w", b.opts.StallAfter, err))
				return
			}
			continue
		}
		infoOK = time.Now()
		w.observed(info)
		if s := w.State(); s.Stalled && s.Pending > 0 {
			cancel(errStalled)
			return
		}
	}
}
