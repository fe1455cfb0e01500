package cdc_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc"
)

// lossyBus is the embedded NATS bus except that one asynchronous publish
// of change events is lost: its messages never reach the server and its
// wait fails only once the batch sent behind it is stored (as when a
// connection drops with a batch in flight and the client reconnects), so
// the engine holds acks past the lost batch when it learns of the loss.
type lossyBus struct {
	*busnats.Bus
	stored func(bus.Message) bool // whether the server stored m (the test's collector saw it)

	mu        sync.Mutex
	calls     int
	loseAt    int // the call of PublishAsync with change events to lose
	lost      []bus.Message
	behind    []bus.Message // the change events of the call after it
	overtaken bool          // the batch behind was stored before the lost one failed
}

func (l *lossyBus) PublishAsync(ctx context.Context, msgs ...bus.Message) (func(context.Context) error, error) {
	l.mu.Lock()
	if len(msgs) > 0 && msgs[0].Topic == bus.TopicDocuments {
		l.calls++
		switch l.calls {
		case l.loseAt:
			l.lost = append(l.lost, msgs...)
			l.mu.Unlock()
			return l.failOnceOvertaken, nil
		case l.loseAt + 1:
			for _, m := range msgs {
				if m.Topic == bus.TopicDocuments {
					l.behind = append(l.behind, m)
				}
			}
		}
	}
	l.mu.Unlock()
	return l.Bus.PublishAsync(ctx, msgs...)
}

// failOnceOvertaken is the lost publish's wait: it polls until the last
// event of the batch behind it is stored (or the publish times out), then
// fails.
func (l *lossyBus) failOnceOvertaken(ctx context.Context) error {
	for {
		l.mu.Lock()
		behind := l.behind
		l.mu.Unlock()
		if len(behind) > 0 && l.stored(behind[len(behind)-1]) {
			l.mu.Lock()
			l.overtaken = true
			l.mu.Unlock()
			return errors.New("lossy bus: publish lost")
		}
		select {
		case <-ctx.Done():
			return errors.New("lossy bus: publish lost (and nothing sent behind it was stored)")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestAFailedAsyncPublishNeverLetsTheSlotPassIt loses one batch among
// several in flight and checks that nothing is lost: the engine confirms
// no position past the failed batch, even though the batches behind it
// were acked first, so it restarts from the slot before the batch and
// publishes it again. An engine that confirmed past it would never
// publish those rows.
func TestAFailedAsyncPublishNeverLetsTheSlotPassIt(t *testing.T) {
	f := newFixture(t)
	c := collect(t, f.Bus, bus.TopicDocuments)
	lossy := &lossyBus{Bus: f.Bus, loseAt: 3, stored: func(m bus.Message) bool {
		return slices.ContainsFunc(c.topic(bus.TopicDocuments), func(got bus.Message) bool { return keyID(got) == keyID(m) })
	}}
	cfg := f.Config()
	cfg.Snapshot = cdc.SnapshotNever
	cfg.MaxBatch = 500 // several batches in the publish window
	f.StartEngine(t, cfg, lossy)

	ctx := context.Background()
	var ids []string
	for range 40 {
		tx := make([]string, 250)
		for i := range tx {
			tx[i] = uuid.Must(uuid.NewV7()).String()
		}
		if _, err := f.Pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by)
			SELECT id, 'doc', 'w@example.com' FROM unnest($1::uuid[]) AS id`, tx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tx...)
	}
	waitAll(t, c, bus.TopicDocuments, ids)
	lossy.mu.Lock()
	defer lossy.mu.Unlock()
	if len(lossy.lost) == 0 {
		t.Fatal("no publish was lost: the test did not exercise the failure")
	}
	if !lossy.overtaken {
		t.Fatal("the lost publish failed before the batch behind it was stored: the out-of-order case did not happen")
	}
	t.Logf("%d events of one batch lost in flight; all %d rows reached the bus after the engine restarted from its slot", len(lossy.lost), len(ids))
}
