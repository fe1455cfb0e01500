package webhooks_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
	buskafka "github.com/docstream/docstream/internal/bus/kafka"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/testenv"
)

// kafkaBus is a Kafka bus on franz-go's in-process kfake (no broker can be
// installed here) with partitions per topic.
func kafkaBus(t *testing.T, partitions int) *buskafka.Bus {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b, err := buskafka.Connect(context.Background(), c.ListenAddrs(), buskafka.Options{Partitions: int32(partitions)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// The target follows a change stream the CDC engine publishes on Kafka
// (three partitions per topic): every event of ten documents (created,
// updated) and of their signatures reaches the endpoint once, and each
// document's own events in commit order (a document's events share a
// partition). Kafka gives no order across partitions or topics: a
// signature.created may come before its document's document.updated.
func TestDeliveriesOnTheKafkaBus(t *testing.T) {
	p := cdctest.New(t)
	kb := kafkaBus(t, 3)
	p.StartEngine(t, p.Config(), kb)
	e := &env{Pipeline: p, cfg: testConfig(t, nil), bus: kb}
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated, api.WebhookSignatureCreated})
	var docs []string
	for i := range 10 {
		id := e.insert(t, fmt.Sprintf("doc %d", i))
		e.Exec(t, `UPDATE documents.documents SET title = 'changed', version = version + 1 WHERE id = $1`, id)
		e.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES (gen_random_uuid(), $1::uuid, 's@x.com', 'S')`, id)
		docs = append(docs, id)
	}
	testenv.WaitFor(t, "30 events", func() bool { return len(rc.accepted()) >= 30 })
	testenv.WaitFor(t, "every queue empty", func() bool {
		var n int
		_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.deliveries WHERE status = 'pending'`).Scan(&n)
		return n == 0
	})
	hs := rc.accepted()
	if len(hs) != 30 {
		t.Fatalf("%d deliveries, want 30 (each event once)", len(hs))
	}
	ids := map[string]bool{}
	perDoc := map[string][]string{}
	for _, h := range hs {
		if ids[h.ID] {
			t.Errorf("%s delivered twice", h.ID)
		}
		ids[h.ID] = true
		if d := h.Payload.Data.Document; d != nil {
			perDoc[d.ID] = append(perDoc[d.ID], h.Payload.Type)
		}
		if s := h.Payload.Data.Signature; s != nil {
			perDoc[s.DocumentID+"/sig"] = append(perDoc[s.DocumentID+"/sig"], h.Payload.Type)
		}
	}
	for _, id := range docs {
		if got := perDoc[id]; !slices.Equal(got, []string{api.WebhookDocumentCreated, api.WebhookDocumentUpdated}) {
			t.Errorf("document %s: %v, want created then updated", id, got)
		}
		if got := perDoc[id+"/sig"]; len(got) != 1 {
			t.Errorf("document %s's signature: %v", id, got)
		}
	}
}

// Kafka orders a partition only: an event of a partition (here a topic)
// that lags behind another arrives after events committed later than it.
// It is delivered all the same: the fan-out keeps a cursor per partition
// on a bus without one order. The engine publishes to one Kafka; the
// target reads another, to which the test republishes the engine's
// events out of commit order: the signature, committed last, first.
func TestAnEventOfALaggingKafkaPartitionIsNotSkipped(t *testing.T) {
	p := cdctest.New(t)
	src, dst := kafkaBus(t, 1), kafkaBus(t, 1)
	p.StartEngine(t, p.Config(), src)
	e := &env{Pipeline: p, cfg: testConfig(t, nil), bus: dst}
	tg := e.start(t, nil)
	rc := newReceiver(t, nil)
	tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated, api.WebhookSignatureCreated})

	var mu sync.Mutex
	var seen []bus.Message
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Broadcast(ctx, bus.Topics(bus.TopicDocuments, bus.TopicSignatures), bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, ms []bus.Message) error {
			mu.Lock()
			seen = append(seen, ms...)
			mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	doc := e.insert(t, "lagging")
	e.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES (gen_random_uuid(), $1::uuid, 's@x.com', 'S')`, doc)
	var docMsg, sigMsg bus.Message
	testenv.WaitFor(t, "both events on the engine's Kafka", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen {
			switch m.Topic {
			case bus.TopicDocuments:
				docMsg = m
			case bus.TopicSignatures:
				sigMsg = m
			}
		}
		return docMsg.Topic != "" && sigMsg.Topic != ""
	})
	if bus.Cursor(sigMsg) <= bus.Cursor(docMsg) {
		t.Fatalf("the signature's commit LSN %d is not after the document's %d", bus.Cursor(sigMsg), bus.Cursor(docMsg))
	}
	republish := func(m bus.Message) {
		if err := dst.Publish(context.Background(), bus.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers}); err != nil {
			t.Fatal(err)
		}
	}
	republish(sigMsg)
	testenv.WaitFor(t, "the signature delivered", func() bool { return len(rc.accepted()) == 1 })
	republish(docMsg)
	testenv.WaitFor(t, "the lagging document's event delivered", func() bool { return len(rc.accepted()) == 2 })
	if got := rc.accepted()[1]; got.Payload.Type != api.WebhookDocumentCreated || got.Payload.Data.Document.ID != doc {
		t.Fatalf("second delivery %+v", got.Payload)
	}
	// Recorded before the stop: a delivery the receiver took but the
	// sender had not recorded yet is rightly sent again after a restart
	// (at least once), which is not what this test is about (it raced on
	// that in CI).
	testenv.WaitFor(t, "both deliveries recorded", func() bool {
		var n int
		_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.deliveries WHERE status = 'delivered'`).Scan(&n)
		return n == 2
	})
	// A restart reads the partitions again: nothing is delivered twice.
	tg.stop()
	tg2 := e.start(t, nil)
	// Counted before the insert: its event may be seen before the insert
	// returns.
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	e.insert(t, "after the restart")
	var next bus.Message
	testenv.WaitFor(t, "the next event on the engine's Kafka", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen[n:] {
			if m.Topic == bus.TopicDocuments {
				next = m
			}
		}
		return next.Topic != ""
	})
	republish(next)
	testenv.WaitFor(t, "the event after the restart", func() bool { return len(rc.accepted()) >= 3 })
	testenv.WaitFor(t, "every queue empty", func() bool {
		var n int
		_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.deliveries WHERE status = 'pending'`).Scan(&n)
		return n == 0
	})
	if n := len(rc.accepted()); n != 3 {
		t.Fatalf("%d deliveries after the restart, want 3 (none twice)", n)
	}
	_ = tg2
}
