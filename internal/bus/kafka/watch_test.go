package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/bus/kafka"
)

// syncBuffer is a log sink the bus's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// stallAfter is the stall timeout of the tests' buses: short, and yet
// well above what a healthy consumer takes between two batches on a
// loaded machine.
const stallAfter = time.Second

// watchedBus is a bus over its own kfake cluster with a short stall
// timeout, logging into logs.
func watchedBus(t *testing.T, partitions int32) (*kafka.Bus, *kfake.Cluster, *syncBuffer) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	logs := &syncBuffer{}
	b := connect(t, c.ListenAddrs(), kafka.Options{Partitions: partitions, StallAfter: stallAfter,
		RequestTimeout: stallAfter, Log: slog.New(slog.NewTextHandler(logs, nil))})
	return b, c, logs
}

// publish puts events from..to-1 on cdc.documents, one row each, the
// value being the event's number.
func publish(t *testing.T, b *kafka.Bus, from, to int) {
	t.Helper()
	var msgs []bus.Message
	for i := from; i < to; i++ {
		msgs = append(msgs, bus.Message{Topic: bus.TopicDocuments, Key: []byte(fmt.Sprintf(`{"id":"row%d"}`, i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// tally counts every event a subscription's handler gets, by value.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *tally) handle(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.seen[string(m.Value)]++
	}
	return nil
}

// distinct is how many different events arrived; again, how many arrived
// more than once.
func (c *tally) distinct() (distinct, again int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		if n > 1 {
			again++
		}
	}
	return len(c.seen), again
}

// subscription is one way a consumer reads cdc.documents, named "indexer".
type subscription struct {
	name string
	run  func(ctx context.Context, b *kafka.Bus, h bus.Handler)
	// mayRepeat is how many events may arrive twice after a replacement:
	// a group member commits after its handler, so a batch handled and not
	// committed when its client went comes again (at-least-once); a
	// broadcast resumes right after what its handler took.
	mayRepeat int
}

const maxBatch = 20

var subscriptions = []subscription{
	{"a group member", func(ctx context.Context, b *kafka.Bus, h bus.Handler) {
		_ = b.Group(bus.Named(ctx, "indexer"), bus.TopicDocuments, "indexer", bus.GroupOptions{MaxBatch: maxBatch, MaxWait: 10 * time.Millisecond}, h)
	}, maxBatch},
	{"a broadcast", func(ctx context.Context, b *kafka.Bus, h bus.Handler) {
		_ = b.Broadcast(bus.Named(ctx, "indexer"), bus.TopicDocuments, bus.Start{Kind: bus.StartBeginning}, h)
	}, 0},
}

// start runs sub until the test ends, counting into a tally.
func start(t *testing.T, b *kafka.Bus, sub subscription) *tally {
	t.Helper()
	c := &tally{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sub.run(ctx, b, c.handle) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return c
}

func state(b *kafka.Bus, name string) (bus.ConsumerState, bool) {
	for _, s := range b.Consumers() {
		if s.Name == name {
			return s, true
		}
	}
	return bus.ConsumerState{}, false
}

// waitUntil fails the test when cond does not hold within d, showing the
// last of show when given.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, show ...any) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s %v", d, what, show)
}

// TestAConsumerWhoseFetchesFailIsReportedStalledReplacedAndGetsEverything
// makes the broker answer every fetch with a retriable error: franz-go
// retries for ever and the poll loop sees a quiet topic while events pile
// up. The watchdog reports the consumer stalled (readiness names it),
// replaces its client, logs it, and once fetches work again every event
// arrives, none lost.
func TestAConsumerWhoseFetchesFailIsReportedStalledReplacedAndGetsEverything(t *testing.T) {
	for _, sub := range subscriptions {
		t.Run(sub.name, func(t *testing.T) {
			b, c, logs := watchedBus(t, 3)
			publish(t, b, 0, 60)
			got := start(t, b, sub)
			waitUntil(t, 20*time.Second, "the first 60 events", func() bool { n, _ := got.distinct(); return n == 60 })
			waitUntil(t, 10*time.Second, "readiness with the consumer caught up", func() bool { return bus.CheckConsumers(b, "indexer") == nil })

			fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: -1})
			publish(t, b, 60, 120)
			var ready error
			var last bus.ConsumerState
			waitUntil(t, 20*time.Second, "the consumer reported stalled and replaced", func() bool {
				last, _ = state(b, "indexer")
				ready = bus.CheckConsumers(b, "indexer")
				return last.Stalled && last.Pending > 0 && last.Resubscribes > 0 && ready != nil
			}, &last)
			if !strings.Contains(ready.Error(), "consumer indexer of cdc.documents stalled") {
				t.Fatalf("readiness error %q does not name the stalled consumer", ready)
			}
			if s, _ := state(b, "indexer"); !strings.Contains(s.LastError, "no progress") {
				t.Fatalf("consumer state %+v: want the stall as its last error", s)
			}
			if !strings.Contains(logs.String(), "bus subscription lost") {
				t.Fatalf("the replacement was not logged:\n%s", logs.String())
			}
			if n, _ := got.distinct(); n != 60 {
				t.Fatalf("%d events arrived while every fetch failed, want the 60 from before", n)
			}

			fault.Remove()
			publish(t, b, 120, 150)
			waitUntil(t, 30*time.Second, "every event once fetches work again", func() bool { n, _ := got.distinct(); return n == 150 })
			waitUntil(t, 10*time.Second, "readiness once the consumer progresses", func() bool { return bus.CheckConsumers(b, "indexer") == nil })
			if _, again := got.distinct(); again > sub.mayRepeat {
				t.Fatalf("%d events arrived twice, at most %d may", again, sub.mayRepeat)
			}
			waitUntil(t, 10*time.Second, "the consumer seen caught up", func() bool {
				s, _ := state(b, "indexer")
				return !s.Stalled && s.Pending == 0
			})
		})
	}
}

// TestAConsumerWhoseClientIsClosedUnderneathIsReplaced closes the franz-go
// client under a running subscription: its poll loop ends although the
// consumer was not stopped (before the watchdog, Group and Broadcast then
// returned and nothing was consumed any more). A new client takes over,
// the loss is counted and logged, and every event published after it
// arrives.
func TestAConsumerWhoseClientIsClosedUnderneathIsReplaced(t *testing.T) {
	for _, sub := range subscriptions {
		t.Run(sub.name, func(t *testing.T) {
			b, _, logs := watchedBus(t, 3)
			publish(t, b, 0, 40)
			got := start(t, b, sub)
			waitUntil(t, 20*time.Second, "the first 40 events", func() bool { n, _ := got.distinct(); return n == 40 })
			if !kafka.CloseConsumerClient(b, "indexer") {
				t.Fatal("no client under the running subscription")
			}
			publish(t, b, 40, 100)
			waitUntil(t, 30*time.Second, "every event after the client was closed", func() bool { n, _ := got.distinct(); return n == 100 })
			if s, _ := state(b, "indexer"); s.Resubscribes == 0 {
				t.Fatalf("consumer state %+v: want a replacement for the closed client", s)
			}
			if l := logs.String(); !strings.Contains(l, "bus subscription lost") || !strings.Contains(l, "client closed") {
				t.Fatalf("the replacement of the closed client was not logged:\n%s", l)
			}
			if _, again := got.distinct(); again > sub.mayRepeat {
				t.Fatalf("%d events arrived twice, at most %d may", again, sub.mayRepeat)
			}
			waitUntil(t, 10*time.Second, "readiness", func() bool { return bus.CheckConsumers(b, "indexer") == nil })
		})
	}
}

// TestAHealthyConsumerIsNeverReportedStalled watches an idle group member
// and an idle broadcast for many stall timeouts, then one whose handler
// takes longer than the stall timeout while events wait: none is reported
// stalled or replaced, and a consumer not subscribed fails readiness.
func TestAHealthyConsumerIsNeverReportedStalled(t *testing.T) {
	b, _, _ := watchedBus(t, 3)
	publish(t, b, 0, 30)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	group, broadcast := &tally{seen: map[string]int{}}, &tally{seen: map[string]int{}}
	wg.Go(func() {
		_ = b.Group(bus.Named(ctx, "idle-group"), bus.TopicDocuments, "idle", bus.GroupOptions{MaxBatch: maxBatch}, group.handle)
	})
	wg.Go(func() {
		_ = b.Broadcast(bus.Named(ctx, "idle-broadcast"), bus.TopicDocuments, bus.Start{Kind: bus.StartBeginning}, broadcast.handle)
	})
	waitUntil(t, 20*time.Second, "both consumers to get the 30 events", func() bool {
		g, _ := group.distinct()
		c, _ := broadcast.distinct()
		return g == 30 && c == 30
	})
	// Five stall timeouts of quiet.
	for end := time.Now().Add(5 * stallAfter); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := bus.CheckConsumers(b, "idle-group", "idle-broadcast"); err != nil {
			t.Fatalf("an idle consumer failed readiness: %v", err)
		}
	}

	// A handler busy for more than three stall timeouts with events waiting.
	release := make(chan struct{})
	var once sync.Once
	slow := &tally{seen: map[string]int{}}
	wg.Go(func() {
		_ = b.Group(bus.Named(ctx, "slow"), bus.TopicDocuments, "slow", bus.GroupOptions{MaxBatch: 5}, func(ctx context.Context, msgs []bus.Message) error {
			once.Do(func() {
				select {
				case <-release:
				case <-ctx.Done():
				}
			})
			return slow.handle(ctx, msgs)
		})
	})
	waitUntil(t, 10*time.Second, "the slow consumer to report what waits", func() bool {
		s, _ := state(b, "slow")
		return s.AckPending > 0 && s.Pending > 0
	})
	for end := time.Now().Add(3 * stallAfter); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := bus.CheckConsumers(b, "slow"); err != nil {
			t.Fatalf("a consumer busy in its handler failed readiness: %v", err)
		}
	}
	close(release)
	waitUntil(t, 20*time.Second, "the slow consumer to get the 30 events", func() bool { n, _ := slow.distinct(); return n == 30 })

	for _, s := range b.Consumers() {
		if s.Stalled || s.Resubscribes != 0 {
			t.Errorf("healthy consumer %s: %+v, want never stalled nor replaced", s.Name, s)
		}
	}
	if err := bus.CheckConsumers(b, "idle-group", "realtime"); err == nil || !strings.Contains(err.Error(), "realtime is not subscribed") {
		t.Fatalf("a consumer that is not running must fail readiness, got %v", err)
	}
}

// describe is the group's state and the partitions its members hold, as
// the coordinator reports them.
func describe(t *testing.T, c *kfake.Cluster, group string) (state string, members, held int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return err.Error(), 0, 0
	}
	g := gs[group]
	g.AssignedPartitions().Each(func(string, int32) { held++ })
	return g.State, len(g.Members), held
}

// TestAGroupMemberWithNoPartitionWhileRecordsWaitOnNoMemberIsStalled keeps
// a group member from joining its group (the coordinator fails every
// JoinGroup) while events are published: it is assigned nothing and
// nobody reads the partitions. Its lag is theirs, so it is reported
// stalled (readiness names it) and replaced; before, a member with nothing
// assigned had nothing pending and was never reported. Once it can join,
// every event arrives and readiness is back.
func TestAGroupMemberWithNoPartitionWhileRecordsWaitOnNoMemberIsStalled(t *testing.T) {
	b, c, logs := watchedBus(t, 2)
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Group: "indexer." + bus.TopicDocuments, Err: kerr.CoordinatorLoadInProgress, Count: -1})
	publish(t, b, 0, 20)
	got := start(t, b, subscriptions[0])
	var ready error
	var last bus.ConsumerState
	waitUntil(t, 20*time.Second, "the member with nothing assigned reported stalled and replaced", func() bool {
		last, _ = state(b, "indexer")
		ready = bus.CheckConsumers(b, "indexer")
		return last.Stalled && last.Pending == 20 && last.Resubscribes > 0 && ready != nil
	}, stateOf{&last})
	if !strings.Contains(ready.Error(), "consumer indexer of cdc.documents stalled") {
		t.Fatalf("readiness error %q does not name the stalled consumer", ready)
	}
	if !strings.Contains(last.LastError, "no partition assigned") || !strings.Contains(logs.String(), "no group member holds") {
		t.Fatalf("consumer state %+v: want the unheld partitions as the reason, logged", last)
	}
	if n, _ := got.distinct(); n != 0 {
		t.Fatalf("%d events arrived while the member could not join", n)
	}
	fault.Remove()
	waitUntil(t, 30*time.Second, "every event once the member joins", func() bool { n, _ := got.distinct(); return n == 20 })
	waitUntil(t, 10*time.Second, "readiness once the member progresses", func() bool { return bus.CheckConsumers(b, "indexer") == nil })
}

// TestAGroupMemberWithNoPartitionBecauseEveryPartitionIsHeldIsHealthy runs
// three members of one group over two partitions: one is assigned
// nothing. While the other two are busy in their handlers for three stall
// timeouts with records uncommitted, the idle one is not reported stalled:
// the records waiting are on partitions other members hold.
func TestAGroupMemberWithNoPartitionBecauseEveryPartitionIsHeldIsHealthy(t *testing.T) {
	b, c, _ := watchedBus(t, 2)
	var holding atomic.Bool
	release := make(chan struct{})
	got := &tally{seen: map[string]int{}}
	h := func(ctx context.Context, msgs []bus.Message) error {
		if holding.Load() {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return got.handle(ctx, msgs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for range 3 {
		wg.Go(func() {
			_ = b.Group(bus.Named(ctx, "indexer"), bus.TopicDocuments, "indexer", bus.GroupOptions{MaxBatch: 5, MaxWait: 10 * time.Millisecond}, h)
		})
	}
	group := "indexer." + bus.TopicDocuments
	var st string
	var members, held int
	waitUntil(t, 30*time.Second, "three members holding the two partitions", func() bool {
		st, members, held = describe(t, c, group)
		return st == "Stable" && members == 3 && held == 2
	}, &st, &members, &held)
	holding.Store(true)
	publish(t, b, 0, 30)
	waitUntil(t, 10*time.Second, "the holders busy with records", func() bool {
		busy := 0
		for _, s := range b.Consumers() {
			if s.AckPending > 0 {
				busy++
			}
		}
		return busy == 2
	})
	for end := time.Now().Add(3 * stallAfter); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := bus.CheckConsumers(b, "indexer"); err != nil {
			t.Fatalf("a member with nothing assigned while every partition is held failed readiness: %v", err)
		}
	}
	close(release)
	waitUntil(t, 20*time.Second, "the 30 events", func() bool { n, _ := got.distinct(); return n == 30 })
	for _, s := range b.Consumers() {
		if s.Stalled || s.Resubscribes != 0 {
			t.Errorf("healthy member: %+v, want never stalled nor replaced", s)
		}
	}
}

// stateOf shows *s as waitUntil fails (its value then, not a pointer).
type stateOf struct{ s *bus.ConsumerState }

func (s stateOf) String() string { return fmt.Sprintf("%+v", *s.s) }
