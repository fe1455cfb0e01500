package nats_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/bus/bustest"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/localstack"
)

func embedded(t *testing.T, dir string) *busnats.Bus {
	t.Helper()
	b, err := busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestEmbedded(t *testing.T) {
	bustest.Run(t, bustest.Options{OrderAcrossTopics: true, Resume: true}, func(t *testing.T) bus.Bus { return embedded(t, t.TempDir()) })
}

func TestExternalServer(t *testing.T) {
	srv, err := localstack.StartNATSServer(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	bustest.Run(t, bustest.Options{OrderAcrossTopics: true, Resume: true}, func(t *testing.T) bus.Bus {
		b, err := busnats.Connect(context.Background(), srv.URL(), busnats.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

func TestEmbeddedServerListensForOtherProcessesAndKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := embedded(t, filepath.Join(dir, "nats"))
	if b.URL() == "" {
		t.Fatal("embedded server reports no URL")
	}
	msg := bus.Message{Topic: bus.TopicDocuments, Key: []byte(`{"id":"a"}`), Value: []byte(`{"x":1}`),
		Headers: map[string]string{bus.HeaderLSN: "42", bus.HeaderOp: "c"}}
	if err := b.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	// Another client attaches over TCP, as `events tail` does.
	other, err := busnats.Connect(context.Background(), b.URL(), busnats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := first(t, other, bus.TopicDocuments)
	_ = other.Close()
	if string(got.Value) != `{"x":1}` || got.Headers[bus.HeaderLSN] != "42" {
		t.Fatalf("other process read %+v", got)
	}

	// The file store survives a restart of the embedded server.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := embedded(t, filepath.Join(dir, "nats"))
	if got := first(t, b2, bus.TopicDocuments); string(got.Value) != `{"x":1}` {
		t.Fatalf("after restart read %s", got.Value)
	}
}

func TestRepublishedChangeIsDroppedByDedup(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx := context.Background()
	for i := 0; i < 3; i++ { // the same change published three times (CDC restarts)
		err := b.Publish(ctx, bus.Message{Topic: bus.TopicSignatures, Key: []byte(`{"id":"s"}`), Value: []byte(`{"v":1}`),
			Headers: map[string]string{bus.HeaderLSN: "100"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, bus.Message{Topic: bus.TopicSignatures, Key: []byte(`{"id":"s"}`), Value: []byte(`{"v":2}`),
		Headers: map[string]string{bus.HeaderLSN: "200"}}); err != nil {
		t.Fatal(err)
	}
	ch := make(chan bus.Message, 10)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = b.Broadcast(cctx, bus.TopicSignatures, bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ch <- m
			}
			return nil
		})
	}()
	var lsns []string
	for len(lsns) < 2 {
		select {
		case m := <-ch:
			lsns = append(lsns, m.Headers[bus.HeaderLSN])
		case <-time.After(30 * time.Second):
			t.Fatalf("got %v", lsns)
		}
	}
	if lsns[0] != "100" || lsns[1] != "200" {
		t.Fatalf("stream holds lsns %v, want [100 200] (duplicates dropped)", lsns)
	}
}

func TestStartAfterLSNBeyondTheEndWaitsForNewMessages(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if err := b.Publish(ctx, bus.Message{Topic: bus.TopicDocuments, Value: []byte("x"),
			Headers: map[string]string{bus.HeaderLSN: strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ch := make(chan bus.Message, 10)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = b.Broadcast(cctx, bus.TopicDocuments, bus.Start{Kind: bus.StartAfterLSN, LSN: 5}, func(_ context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ch <- m
			}
			return nil
		})
	}()
	time.Sleep(200 * time.Millisecond)
	if err := b.Publish(ctx, bus.Message{Topic: bus.TopicDocuments, Value: []byte("y"),
		Headers: map[string]string{bus.HeaderLSN: "6"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.Headers[bus.HeaderLSN] != "6" {
			t.Fatalf("first after lsn 5 = %s", m.Headers[bus.HeaderLSN])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no message after lsn 5")
	}
}

func TestBroadcastOverTopicsOfTwoStreamsIsRefused(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := b.Broadcast(ctx, bus.Topics(bus.TopicDocuments, "audit.log"), bus.Start{Kind: bus.StartBeginning},
		func(context.Context, []bus.Message) error { return nil })
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "one stream") {
		t.Fatalf("err = %v, want a refusal naming the streams", err)
	}
}

func first(t *testing.T, b bus.Bus, topic string) bus.Message {
	t.Helper()
	ch := make(chan bus.Message, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = b.Broadcast(ctx, topic, bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, msgs []bus.Message) error {
			select {
			case ch <- msgs[0]:
			default:
			}
			return nil
		})
	}()
	select {
	case m := <-ch:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message")
		return bus.Message{}
	}
}

// A group member that stops gives back what it had pulled but not handled,
// so the next member gets it at once rather than after AckWait (30 s).
func TestStoppedGroupMemberGivesBackItsPrefetchedMessages(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx := context.Background()
	const n = 200
	msgs := make([]bus.Message, n)
	for i := range msgs {
		msgs[i] = bus.Message{Topic: bus.TopicDocuments, Key: []byte(strconv.Itoa(i)), Value: []byte("v"),
			Headers: map[string]string{bus.HeaderLSN: strconv.Itoa(i + 1)}}
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Member A handles one batch of 10, then stops while more are prefetched.
	actx, stopA := context.WithCancel(ctx)
	handled := map[string]bool{}
	doneA := make(chan error, 1)
	go func() {
		doneA <- b.Group(actx, bus.TopicDocuments, "g", bus.GroupOptions{MaxBatch: 10, MaxWait: time.Millisecond}, func(_ context.Context, ms []bus.Message) error {
			for _, m := range ms {
				handled[string(m.Key)] = true
			}
			stopA()
			return nil
		})
	}()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if len(handled) == 0 || len(handled) >= n {
		t.Fatalf("member A handled %d messages", len(handled))
	}
	// Member B must get everything else well before A's messages would
	// time out.
	bctx, stopB := context.WithTimeout(ctx, 10*time.Second)
	defer stopB()
	got := map[string]bool{}
	_ = b.Group(bctx, bus.TopicDocuments, "g", bus.GroupOptions{MaxBatch: 50, MaxWait: time.Millisecond}, func(_ context.Context, ms []bus.Message) error {
		for _, m := range ms {
			got[string(m.Key)] = true
		}
		if len(got)+len(handled) >= n {
			stopB()
		}
		return nil
	})
	for i := 0; i < n; i++ {
		k := strconv.Itoa(i)
		if !handled[k] && !got[k] {
			t.Fatalf("message %s not redelivered within 10 s (%d handled by A, %d by B)", k, len(handled), len(got))
		}
	}
}
