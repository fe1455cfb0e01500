package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/bus/bustest"
	"github.com/docstream/docstream/internal/bus/kafka"
)

// No real Kafka broker can be installed here: these run against franz-go's
// kfake, an in-process implementation of the Kafka protocol.
func cluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func connect(t *testing.T, seeds []string, opts kafka.Options) *kafka.Bus {
	t.Helper()
	b, err := kafka.Connect(context.Background(), seeds, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestKafka(t *testing.T) {
	seeds := cluster(t)
	// One partition: the shared suite checks a total order per topic,
	// which Kafka gives per partition only. Kafka has no order across
	// topics.
	bustest.Run(t, bustest.Options{Resume: true}, func(t *testing.T) bus.Bus { return connect(t, seeds, kafka.Options{Partitions: 1}) })
}

func TestEventsOfOneRowStayInOrderAcrossPartitions(t *testing.T) {
	b := connect(t, cluster(t), kafka.Options{Partitions: 4})
	const rows, perRow = 8, 25
	var msgs []bus.Message
	for i := 0; i < perRow; i++ {
		for r := 0; r < rows; r++ {
			msgs = append(msgs, bus.Message{Topic: bus.TopicDocuments, Key: []byte(fmt.Sprintf(`{"id":"row%d"}`, r)),
				Value: []byte(fmt.Sprint(i))})
		}
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	next := map[string]int{}
	count := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Broadcast(ctx, bus.TopicDocuments, bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, got []bus.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range got {
				if want := fmt.Sprint(next[string(m.Key)]); string(m.Value) != want {
					t.Errorf("row %s: got event %s, want %s", m.Key, m.Value, want)
				}
				next[string(m.Key)]++
				count++
			}
			return nil
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := count
		mu.Unlock()
		if n == rows*perRow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d events", n, rows*perRow)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want string
		ok   bool
	}{
		{"kafka://a:9092,b:9092", "[a:9092 b:9092]", true},
		{"kafka://a:9092", "[a:9092]", true},
		{"kafka://", "", false},
		{"nats://a:4222", "", false},
	} {
		got, err := kafka.ParseURL(c.url)
		if (err == nil) != c.ok || (c.ok && fmt.Sprint(got) != c.want) {
			t.Errorf("ParseURL(%q) = %v, %v", c.url, got, err)
		}
	}
}

func TestResumeReadsBackTheMarkAndWhatWasStoredAfterIt(t *testing.T) {
	b := connect(t, cluster(t), kafka.Options{Partitions: 3})
	ctx := context.Background()
	ev := func(row string, commit uint64) bus.Message {
		return bus.Message{Topic: bus.TopicDocuments, Key: []byte(`{"id":"` + row + `"}`), Value: []byte("{}"),
			Headers: map[string]string{bus.HeaderLSN: fmt.Sprint(commit - 1), bus.HeaderCommitLSN: fmt.Sprint(commit)}}
	}
	topics := []string{bus.TopicDocuments, bus.TopicSignatures}

	r, err := b.Resume(ctx, topics, bus.TopicWatermarks)
	if err != nil {
		t.Fatal(err)
	}
	if r.HasMark || r.Tail != 0 || r.Stored(ev("a", 10)) {
		t.Fatalf("empty bus: %+v", r)
	}

	var before, after []bus.Message
	for i := 0; i < 30; i++ {
		before = append(before, ev(fmt.Sprint("row", i), uint64(100+i)))
	}
	if err := b.Publish(ctx, before...); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Message{Topic: bus.TopicWatermarks, Key: []byte("slot"), Value: []byte(`{"lsn":200}`),
		Headers: map[string]string{bus.HeaderLSN: "200"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		after = append(after, ev(fmt.Sprint("row", i), uint64(200+i)))
	}
	if err := b.Publish(ctx, after...); err != nil {
		t.Fatal(err)
	}

	r, err = b.Resume(ctx, topics, bus.TopicWatermarks)
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasMark || bus.Cursor(r.Mark) != 200 {
		t.Fatalf("mark = %+v, want the watermark at 200", r.Mark)
	}
	if r.Tail != len(after) || r.Last != 211 {
		t.Errorf("tail %d events up to %d, want %d up to 211", r.Tail, r.Last, len(after))
	}
	for _, m := range after {
		if !r.Stored(m) {
			t.Errorf("event %s at %s not reported stored", m.Key, m.Headers[bus.HeaderCommitLSN])
		}
	}
	if m := ev("row99", 212); r.Stored(m) {
		t.Error("an event never published is reported stored")
	}
}
