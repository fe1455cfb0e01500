// Package bustest is the behaviour every bus.Bus backend must show, as a
// test suite the backends' tests run against a real server (or kfake).
package bustest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/bus"
)

// wait is how long a test waits for an asynchronous delivery.
const wait = 30 * time.Second

// Run runs the suite. open returns a fresh bus on an empty server, or on a
// server where topic names passed by the suite are unused (each subtest
// uses its own topics).
func Run(t *testing.T, open func(t *testing.T) bus.Bus) {
	t.Run("published messages reach a broadcast from the beginning in order with key and headers", func(t *testing.T) {
		b := open(t)
		topic := uniqueTopic()
		publishN(t, b, topic, 1, 50)
		got := collect(t, b, topic, bus.Start{Kind: bus.StartBeginning}, 50)
		for i, m := range got {
			n := i + 1
			if string(m.Value) != value(n) || string(m.Key) != key(n) || m.Headers[bus.HeaderLSN] != strconv.Itoa(n*10) || m.Headers[bus.HeaderOp] != "c" {
				t.Fatalf("message %d = key %q value %q headers %v", i, m.Key, m.Value, m.Headers)
			}
			if m.Topic != topic {
				t.Fatalf("topic = %q, want %q", m.Topic, topic)
			}
			if i > 0 && m.Position <= got[i-1].Position {
				t.Fatalf("positions not increasing: %d after %d", m.Position, got[i-1].Position)
			}
		}
	})

	t.Run("a broadcast from new sees only later messages", func(t *testing.T) {
		b := open(t)
		topic := uniqueTopic()
		publishN(t, b, topic, 1, 5)
		ch, stop := subscribe(t, b, topic, bus.Start{Kind: bus.StartNew})
		defer stop()
		// The subscription is live once a message published now arrives;
		// publish until then (idempotent values past 5 only).
		deadline := time.Now().Add(wait)
		n := 6
		for {
			publishN(t, b, topic, n, n)
			select {
			case m := <-ch:
				if lsn, _ := strconv.Atoi(m.Headers[bus.HeaderLSN]); lsn <= 50 {
					t.Fatalf("broadcast from new delivered old message lsn %d", lsn)
				}
				return
			case <-time.After(500 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("no message on a StartNew broadcast")
			}
			n++
		}
	})

	t.Run("a broadcast from a position starts at that message", func(t *testing.T) {
		b := open(t)
		topic := uniqueTopic()
		publishN(t, b, topic, 1, 10)
		all := collect(t, b, topic, bus.Start{Kind: bus.StartBeginning}, 10)
		got := collect(t, b, topic, bus.Start{Kind: bus.StartPosition, Position: all[4].Position}, 6)
		if string(got[0].Value) != value(5) {
			t.Fatalf("first from position = %s, want %s", got[0].Value, value(5))
		}
	})

	t.Run("a broadcast after an LSN starts at the first message above it", func(t *testing.T) {
		b := open(t)
		topic := uniqueTopic()
		other := uniqueTopic()
		for i := 1; i <= 100; i++ {
			publishN(t, b, topic, i, i)
			publishN(t, b, other, i, i) // interleaved topic of the same family
		}
		for _, c := range []struct{ after, first uint64 }{{0, 10}, {500, 510}, {505, 510}, {990, 1000}} {
			got := collect(t, b, topic, bus.Start{Kind: bus.StartAfterLSN, LSN: c.after}, 1)
			if got[0].Headers[bus.HeaderLSN] != strconv.FormatUint(c.first, 10) {
				t.Fatalf("after lsn %d: first lsn %s, want %d", c.after, got[0].Headers[bus.HeaderLSN], c.first)
			}
		}
	})

	t.Run("a group shares messages among members, redelivers on error and resumes", func(t *testing.T) {
		b := open(t)
		topic := uniqueTopic()
		const n = 200
		publishN(t, b, topic, 1, n)

		var mu sync.Mutex
		seen := map[string]int{}
		var failed atomic.Bool
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for member := 0; member < 2; member++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := b.Group(ctx, topic, "g1", bus.GroupOptions{MaxBatch: 20, MaxWait: 50 * time.Millisecond}, func(ctx context.Context, msgs []bus.Message) error {
					if len(msgs) > 20 {
						t.Errorf("batch of %d > MaxBatch 20", len(msgs))
					}
					// The first batch fails once: it must come back.
					if failed.CompareAndSwap(false, true) {
						return errors.New("transient")
					}
					mu.Lock()
					defer mu.Unlock()
					for _, m := range msgs {
						seen[string(m.Value)]++
					}
					return nil
				})
				if err != nil {
					t.Errorf("group: %v", err)
				}
			}()
		}
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
		cancel()
		wg.Wait()

		// A restarted member gets only what was published since.
		publishN(t, b, topic, n+1, n+3)
		got := make(chan bus.Message, 10)
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		go func() {
			_ = b.Group(ctx, topic, "g1", bus.GroupOptions{}, func(ctx context.Context, msgs []bus.Message) error {
				for _, m := range msgs {
					got <- m
				}
				return nil
			})
		}()
		for i := n + 1; i <= n+3; i++ {
			select {
			case m := <-got:
				if string(m.Value) != value(i) {
					t.Fatalf("after resume got %s, want %s", m.Value, value(i))
				}
			case <-time.After(wait):
				t.Fatalf("group did not resume with message %d", i)
			}
		}
	})

	t.Run("ping succeeds on a live bus", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

var topicSeq atomic.Int64

func uniqueTopic() string {
	return fmt.Sprintf("cdc.test%d_%d", time.Now().UnixNano()%1e9, topicSeq.Add(1))
}

func key(n int) string   { return fmt.Sprintf(`{"id":"k%d"}`, n%7) }
func value(n int) string { return fmt.Sprintf(`{"n":%d}`, n) }

// publishN publishes messages from..to (inclusive) with lsn = 10*n.
func publishN(t *testing.T, b bus.Bus, topic string, from, to int) {
	t.Helper()
	var msgs []bus.Message
	for n := from; n <= to; n++ {
		msgs = append(msgs, bus.Message{Topic: topic, Key: []byte(key(n)), Value: []byte(value(n)),
			Headers: map[string]string{bus.HeaderLSN: strconv.Itoa(n * 10), bus.HeaderOp: "c"}})
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func subscribe(t *testing.T, b bus.Bus, topic string, start bus.Start) (<-chan bus.Message, func()) {
	ch := make(chan bus.Message, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := b.Broadcast(ctx, topic, start, func(ctx context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				ch <- m
			}
			return nil
		})
		if err != nil {
			t.Errorf("broadcast: %v", err)
		}
	}()
	return ch, func() { cancel(); <-done }
}

// collect reads n messages from a broadcast.
func collect(t *testing.T, b bus.Bus, topic string, start bus.Start, n int) []bus.Message {
	t.Helper()
	ch, stop := subscribe(t, b, topic, start)
	defer stop()
	var out []bus.Message
	for len(out) < n {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-time.After(wait):
			t.Fatalf("got %d of %d messages", len(out), n)
		}
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
