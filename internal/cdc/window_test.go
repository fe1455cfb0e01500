package cdc_test

import (
	"context"
	"errors"
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
// wait fails a moment later, after the batches sent behind it were stored
// and acked (as when a connection drops with a batch in flight and the
// client reconnects).
type lossyBus struct {
	*busnats.Bus
	mu     sync.Mutex
	calls  int
	loseAt int // the call of PublishAsync with change events to lose
	lost   []bus.Message
}

func (l *lossyBus) PublishAsync(ctx context.Context, msgs ...bus.Message) (func(context.Context) error, error) {
	l.mu.Lock()
	if len(msgs) > 0 && msgs[0].Topic == bus.TopicDocuments {
		l.calls++
		if l.calls == l.loseAt {
			l.lost = append(l.lost, msgs...)
			l.mu.Unlock()
			return func(context.Context) error {
				time.Sleep(300 * time.Millisecond)
				return errors.New("lossy bus: publish lost")
			}, nil
		}
	}
	l.mu.Unlock()
	return l.Bus.PublishAsync(ctx, msgs...)
}

// TestAFailedAsyncPublishNeverLetsTheSlotPassIt loses one batch among
// several in flight and checks that nothing is lost: the engine confirms
// no position past the failed batch, even though the batches behind it
// were acked first, so it restarts from the slot before the batch and
// publishes it again. An engine that confirmed past it would never
// publish those rows.
func TestAFailedAsyncPublishNeverLetsTheSlotPassIt(t *testing.T) {
	f := newFixture(t)
	lossy := &lossyBus{Bus: f.Bus, loseAt: 3}
	c := collect(t, f.Bus, bus.TopicDocuments)
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
	t.Logf("%d events of one batch lost in flight; all %d rows reached the bus after the engine restarted from its slot", len(lossy.lost), len(ids))
}
