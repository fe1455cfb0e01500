package nats_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/localstack"
)

// changes are the CDC events of lsns from to to (inclusive), one row each.
func changes(from, to int) []bus.Message {
	var msgs []bus.Message
	for i := from; i <= to; i++ {
		msgs = append(msgs, change(i))
	}
	return msgs
}

// storedLSNs is the lsn header of every message of stream name, in stream
// order.
func storedLSNs(t *testing.T, js jetstream.JetStream, name string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lsns []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		lsns = append(lsns, m.Header.Get(bus.HeaderLSN))
	}
	return lsns
}

func lsnsOf(msgs []bus.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Headers[bus.HeaderLSN])
	}
	return out
}

// The embedded bus sends a CDC batch as one fast-ingest batch. A change
// re-published after a crash must still be dropped by its message ID,
// wherever it falls in the batch (first, middle, last), and the rest stored
// in order: the engine relies on it.
func TestAFastBatchDropsRepublishedChangesAndStoresTheRestInOrder(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx := context.Background()
	js := operator(t, b.URL())
	if err := b.Publish(ctx, changes(1, 100)...); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "CDC")
	if err != nil {
		t.Fatal(err)
	}
	if !s.CachedInfo().Config.AllowBatchPublish {
		t.Fatal("the embedded bus's stream does not allow fast-ingest batches")
	}
	// The first 100 again, then new ones, with repeats in the middle and
	// at the end.
	again := append(changes(1, 100), changes(101, 150)...)
	again = append(again, changes(120, 130)...)
	again = append(again, changes(151, 200)...)
	again = append(again, changes(199, 200)...)
	if err := b.Publish(ctx, again...); err != nil {
		t.Fatalf("a batch with repeats: %v", err)
	}
	if got, want := storedLSNs(t, js, "CDC"), lsnsOf(changes(1, 200)); !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages %v..., want lsns 1001..1200 once each, in order", len(got), got[:min(len(got), 5)])
	}
}

// A batch the server stops in the middle (a message it refuses) must fail
// the publish: the CDC engine must not count the batch acknowledged.
func TestAFastBatchTheServerStopsFailsThePublish(t *testing.T) {
	b := embedded(t, t.TempDir())
	ctx := context.Background()
	msgs := changes(1, 100)
	// JetStream refuses a message that expects another stream.
	msgs[50].Headers = map[string]string{bus.HeaderLSN: strconv.Itoa(1050), jetstream.ExpectedStreamHeader: "OTHER"}
	if err := b.Publish(ctx, msgs...); err == nil {
		t.Fatal("a batch whose 51st message was refused was acknowledged")
	}
	if got := storedLSNs(t, operator(t, b.URL()), "CDC"); len(got) >= 100 {
		t.Fatalf("stream holds %d messages of a batch stopped at the 51st", len(got))
	}
}

// An external server (its version unknown, its streams the operator's)
// gets per-message publishes, with the same dedup, and its stream is not
// given allow_batched.
func TestAStreamWithoutBatchedPublishingTakesThePerMessagePath(t *testing.T) {
	srv, err := localstack.StartNATSServer(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b := connect(t, srv.URL(), busnats.Options{})
	ctx := context.Background()
	if err := b.Publish(ctx, changes(1, 100)...); err != nil {
		t.Fatal(err)
	}
	js := operator(t, srv.URL())
	s, err := js.Stream(ctx, "CDC")
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().Config.AllowBatchPublish {
		t.Fatal("an external server's stream was given allow_batched: only the embedded server's version is known")
	}
	if err := b.Publish(ctx, changes(1, 150)...); err != nil {
		t.Fatal(err)
	}
	if got, want := storedLSNs(t, js, "CDC"), lsnsOf(changes(1, 150)); !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages, want lsns 1001..1150 once each, in order", len(got))
	}
}
