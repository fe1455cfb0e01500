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

// Options say what a backend promises beyond what every backend must do.
type Options struct {
	// OrderAcrossTopics: a broadcast over several topics of one family
	// (bus.Topics) delivers their messages in the order they were
	// published, with positions increasing across the topics (NATS: one
	// stream per family). Kafka orders only within a partition.
	OrderAcrossTopics bool
	// Resume: the backend is a bus.Resumer (the CDC engine's read-back of
	// its high-water mark); the suite checks it.
	Resume bool
}

// Run runs the suite. open returns a fresh bus on an empty server, or on a
// server where topic names passed by the suite are unused (each subtest
// uses its own topics).
func Run(t *testing.T, opts Options, open func(t *testing.T) bus.Bus) {
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

	// Topics of one family, interleaved: n%3 == 1 goes to a, 0 to b and 2
	// to other, a topic the broadcasts below do not ask for.
	interleaved := func(t *testing.T, bs bus.Bus, a, b, other string, n int) map[int]string {
		t.Helper()
		var msgs []bus.Message
		want := map[int]string{}
		for i := 1; i <= n; i++ {
			topic := []string{b, a, other}[i%3]
			if topic != other {
				want[i] = topic
			}
			msgs = append(msgs, message(topic, i))
		}
		// The stream ends with messages of other only (the search must
		// handle a tail with nothing of the filter).
		for i := n + 1; i <= n+5; i++ {
			msgs = append(msgs, message(other, i))
		}
		if err := bs.Publish(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		return want
	}
	// checkMulti checks that got is exactly the messages of want with
	// n > after, in order per topic, and in publish order overall when the
	// backend promises it.
	checkMulti := func(t *testing.T, got []bus.Message, want map[int]string, after int) {
		t.Helper()
		seen := map[int]bool{}
		last := map[string]int{}
		for i, m := range got {
			lsn, _ := strconv.Atoi(m.Headers[bus.HeaderLSN])
			n := lsn / 10
			if want[n] != m.Topic || string(m.Value) != value(n) || n <= after/10 {
				t.Fatalf("message %d: topic %s value %s lsn %d is not expected (after lsn %d)", i, m.Topic, m.Value, lsn, after)
			}
			if seen[n] {
				t.Fatalf("message %d delivered twice", n)
			}
			seen[n] = true
			if n <= last[m.Topic] {
				t.Fatalf("topic %s: message %d after %d", m.Topic, n, last[m.Topic])
			}
			last[m.Topic] = n
			if opts.OrderAcrossTopics && i > 0 {
				prev, _ := strconv.Atoi(got[i-1].Headers[bus.HeaderLSN])
				if lsn <= prev || m.Position <= got[i-1].Position {
					t.Fatalf("across topics: lsn %d (position %d) after lsn %d (position %d)", lsn, m.Position, prev, got[i-1].Position)
				}
			}
		}
	}
	expected := func(want map[int]string, after int) int {
		c := 0
		for n := range want {
			if n*10 > after {
				c++
			}
		}
		return c
	}

	t.Run("a broadcast over several topics delivers each message of them once", func(t *testing.T) {
		bs := open(t)
		a, b, other := uniqueTopic(), uniqueTopic(), uniqueTopic()
		want := interleaved(t, bs, a, b, other, 60)
		got := collect(t, bs, bus.Topics(a, b), bus.Start{Kind: bus.StartBeginning}, len(want))
		checkMulti(t, got, want, 0)
	})

	t.Run("a broadcast over several topics after an LSN starts at the first message above it", func(t *testing.T) {
		bs := open(t)
		a, b, other := uniqueTopic(), uniqueTopic(), uniqueTopic()
		want := interleaved(t, bs, a, b, other, 100)
		for _, after := range []int{0, 500, 505, 990, 995} {
			got := collect(t, bs, bus.Topics(a, b), bus.Start{Kind: bus.StartAfterLSN, LSN: uint64(after)}, expected(want, after))
			checkMulti(t, got, want, after)
		}
	})

	t.Run("a broadcast over several topics from new sees messages of each", func(t *testing.T) {
		bs := open(t)
		a, b := uniqueTopic(), uniqueTopic()
		ch, stop := subscribe(t, bs, bus.Topics(a, b), bus.Start{Kind: bus.StartNew})
		defer stop()
		// Live once a message published now arrives (as in the single-topic
		// case); then one more on each topic.
		deadline := time.Now().Add(wait)
		n := 1
	live:
		for {
			publishN(t, bs, a, n, n)
			n++
			select {
			case <-ch:
				break live
			case <-time.After(500 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("no message on a StartNew broadcast over two topics")
			}
		}
		for len(ch) > 0 { // drain earlier probes
			<-ch
		}
		publishN(t, bs, b, n, n)
		publishN(t, bs, a, n+1, n+1)
		got := map[string]bool{}
		for len(got) < 2 {
			select {
			case m := <-ch:
				if lsn, _ := strconv.Atoi(m.Headers[bus.HeaderLSN]); lsn >= n*10 {
					got[m.Topic] = true
				}
			case <-time.After(wait):
				t.Fatalf("got messages of %v only", got)
			}
		}
	})

	t.Run("a group refuses a list of topics", func(t *testing.T) {
		bs := open(t)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := bs.Group(ctx, bus.Topics(uniqueTopic(), uniqueTopic()), "g", bus.GroupOptions{}, func(context.Context, []bus.Message) error { return nil })
		if err == nil || ctx.Err() != nil {
			t.Fatalf("group over two topics: err %v (ctx %v), want an immediate error", err, ctx.Err())
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

	t.Run("resume reads back the last mark and the events of several topics stored after it", func(t *testing.T) {
		if !opts.Resume {
			return // optional: see Options.Resume
		}
		b := open(t)
		rb, ok := b.(bus.Resumer)
		if !ok {
			t.Fatal("Options.Resume is set but the bus is no bus.Resumer")
		}
		base := uniqueTopic()
		docs, sigs, other, marks := base+"_docs", base+"_sigs", base+"_other", base+"_marks"
		topics := []string{docs, sigs}
		ctx := context.Background()
		ev := func(topic, row string, commit uint64) bus.Message {
			return bus.Message{Topic: topic, Key: []byte(`{"id":"` + row + `"}`), Value: []byte("{}"),
				Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(commit-1, 10), bus.HeaderCommitLSN: strconv.FormatUint(commit, 10)}}
		}
		topicOf := func(i int) string { return topics[i%2] }

		r, err := rb.Resume(ctx, topics, marks)
		if err != nil {
			t.Fatal(err)
		}
		if r.HasMark || r.Tail != 0 || r.Stored(ev(docs, "a", 10)) {
			t.Fatalf("empty bus: %+v", r)
		}
		var before, after []bus.Message
		for i := 0; i < 30; i++ {
			before = append(before, ev(topicOf(i), fmt.Sprint("row", i), uint64(100+i)))
		}
		publish(t, b, before...)
		publish(t, b, bus.Message{Topic: marks, Key: []byte("slot"), Value: []byte(`{"lsn":200}`),
			Headers: map[string]string{bus.HeaderLSN: "200"}})
		// After the mark: events of both topics, with a topic of the same
		// family that is not asked for between them (a server that filters
		// on one subject only reads it too; it must not count).
		for i := 0; i < 12; i++ {
			after = append(after, ev(topicOf(i), fmt.Sprint("row", i), uint64(200+i)))
			if i == 5 {
				publish(t, b, bus.Message{Topic: other, Key: []byte("x"), Value: []byte("{}"),
					Headers: map[string]string{bus.HeaderLSN: "204", bus.HeaderCommitLSN: "205"}})
			}
			publish(t, b, after[i])
		}

		r, err = rb.Resume(ctx, topics, marks)
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
				t.Errorf("event %s on %s at %s not reported stored", m.Key, m.Topic, m.Headers[bus.HeaderCommitLSN])
			}
		}
		if m := ev(docs, "row99", 212); r.Stored(m) {
			t.Error("an event never published is reported stored")
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

// message is message n of the suite on topic, with lsn = 10*n.
func message(topic string, n int) bus.Message {
	return bus.Message{Topic: topic, Key: []byte(key(n)), Value: []byte(value(n)),
		Headers: map[string]string{bus.HeaderLSN: strconv.Itoa(n * 10), bus.HeaderOp: "c"}}
}

func publish(t *testing.T, b bus.Bus, msgs ...bus.Message) {
	t.Helper()
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// publishN publishes messages from..to (inclusive) with lsn = 10*n.
func publishN(t *testing.T, b bus.Bus, topic string, from, to int) {
	t.Helper()
	var msgs []bus.Message
	for n := from; n <= to; n++ {
		msgs = append(msgs, message(topic, n))
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
