package nats_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/localstack"
)

// cluster starts a 3-node nats-server JetStream cluster for one test.
func cluster(t *testing.T) *localstack.NATSCluster {
	t.Helper()
	c, err := localstack.StartNATSCluster(context.Background(), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// syncBuffer is a log sink tests read while the bus writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// connect attaches a bus to the cluster, retrying while JetStream elects
// its meta leader (a fresh cluster, or one that just lost a node).
func connect(t *testing.T, url string, opts busnats.Options) *busnats.Bus {
	t.Helper()
	var b *busnats.Bus
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b, err = busnats.Connect(context.Background(), url, opts); err == nil {
			t.Cleanup(func() { _ = b.Close() })
			return b
		}
	}
	t.Fatal(err)
	return nil
}

// operator is a plain JetStream client: what an operator's `nats` CLI does.
func operator(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s, err := js.Stream(context.Background(), name)
		if err == nil {
			info, err := s.Info(context.Background())
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				return info
			}
			last = err
			continue
		}
		last = err
	}
	t.Fatalf("stream %s: no leader: %v", name, last)
	return nil
}

func change(n int) bus.Message {
	return bus.Message{Topic: bus.TopicDocuments, Key: []byte(fmt.Sprintf(`{"id":"d%d"}`, n)), Value: []byte(strconv.Itoa(n)),
		Headers: map[string]string{bus.HeaderLSN: strconv.Itoa(1000 + n), bus.HeaderOp: "c"}}
}

func TestClusterStreamAnOperatorScaledIsNeverDowngraded(t *testing.T) {
	c := cluster(t)
	js := operator(t, c.URL())
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	// A first docstream process creates the stream with --bus-replicas=1.
	b1 := connect(t, c.URL(), busnats.Options{Replicas: 1, Log: log})
	if err := b1.Prepare(context.Background(), bus.TopicDocuments); err != nil {
		t.Fatal(err)
	}
	if got := streamInfo(t, js, "CDC").Config.Replicas; got != 1 {
		t.Fatalf("created with %d replicas, want 1", got)
	}
	// The operator scales it to 3 and keeps events for 30 days.
	s, _ := js.Stream(context.Background(), "CDC")
	cfg := s.CachedInfo().Config
	cfg.Replicas, cfg.MaxBytes = 3, 1<<30
	// A fresh cluster may not have placed all its peers yet: retry.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := js.UpdateStream(context.Background(), cfg)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	// The next docstream process still says --bus-replicas=1 (the default).
	b2 := connect(t, c.URL(), busnats.Options{Replicas: 1, Log: log})
	if err := b2.Prepare(context.Background(), bus.TopicDocuments); err != nil {
		t.Fatal(err)
	}
	info := streamInfo(t, js, "CDC")
	if info.Config.Replicas != 3 || info.Config.MaxBytes != 1<<30 {
		t.Fatalf("after a docstream start the stream has %d replicas and max_bytes %d; the operator's 3 and %d must stay",
			info.Config.Replicas, info.Config.MaxBytes, 1<<30)
	}
	if !strings.Contains(logs.String(), "replicas 3 (--bus-replicas: 1)") {
		t.Fatalf("the difference was not logged; log:\n%s", logs.String())
	}
	// A durable consumer gets the stream's replicas.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b2.Group(ctx, bus.TopicDocuments, "scaled", bus.GroupOptions{}, func(context.Context, []bus.Message) error { return nil })
	}()
	var replicas int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && replicas != 3; time.Sleep(100 * time.Millisecond) {
		if cons, err := s.Consumer(context.Background(), "scaled__cdc_documents"); err == nil {
			replicas = cons.CachedInfo().Config.Replicas
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if replicas != 3 {
		t.Fatalf("durable consumer has %d replicas, want the stream's 3", replicas)
	}

	// A process with --bus-replicas=3 scales an R1 stream up.
	if err := js.DeleteStream(context.Background(), "CDC"); err != nil {
		t.Fatal(err)
	}
	b3 := connect(t, c.URL(), busnats.Options{Replicas: 1, Log: log})
	if err := b3.Prepare(context.Background(), bus.TopicDocuments); err != nil {
		t.Fatal(err)
	}
	b4 := connect(t, c.URL(), busnats.Options{Replicas: 3, Log: log})
	if err := b4.Prepare(context.Background(), bus.TopicDocuments); err != nil {
		t.Fatal(err)
	}
	if got := streamInfo(t, js, "CDC").Config.Replicas; got != 3 {
		t.Fatalf("--bus-replicas=3 left the stream at %d replicas", got)
	}
}

// TestClusterLosingTheStreamLeaderKeepsEventsFlowing kills the node that
// leads a 3-replica stream under a steady publish load, with a group
// consumer reading: publishing fails fast (no wait for the caller's
// deadline) and succeeds again on the new leader within seconds, the
// consumer catches up on its own, and with the publisher retrying failed
// batches (as the CDC engine does, same message IDs) no event is lost or
// stored twice.
func TestClusterLosingTheStreamLeaderKeepsEventsFlowing(t *testing.T) {
	c := cluster(t)
	js := operator(t, c.URL())
	opts := busnats.Options{Replicas: 3, PublishTimeout: time.Second, RequestTimeout: time.Second, StallAfter: 2 * time.Second}
	pub := connect(t, c.URL(), opts)
	sub := connect(t, c.URL(), opts)
	if err := pub.Prepare(context.Background(), bus.TopicDocuments); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = sub.Group(bus.Named(ctx, "reader"), bus.TopicDocuments, "reader", bus.GroupOptions{MaxBatch: 50, MaxWait: 20 * time.Millisecond},
			func(_ context.Context, msgs []bus.Message) error {
				mu.Lock()
				for _, m := range msgs {
					seen[string(m.Value)]++
				}
				mu.Unlock()
				return nil
			})
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	// A broadcast follows the same topic, as the indexer follows the
	// watermarks: it must see everything, in order, and be ready again.
	var bmu sync.Mutex
	var followed []int
	wg.Go(func() {
		_ = sub.Broadcast(bus.Named(ctx, "follower"), bus.TopicDocuments, bus.Start{Kind: bus.StartBeginning},
			func(_ context.Context, msgs []bus.Message) error {
				bmu.Lock()
				for _, m := range msgs {
					n, _ := strconv.Atoi(string(m.Value))
					followed = append(followed, n)
				}
				bmu.Unlock()
				return nil
			})
	})

	// The publisher: batches of 10 every 20 ms; a failed batch is sent again.
	var published atomic.Int64
	var longest atomic.Int64 // longest single failed attempt, ns
	var failures atomic.Int64
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for n := 0; ; n += 10 {
			select {
			case <-stopPub:
				return
			case <-time.After(20 * time.Millisecond):
			}
			batch := make([]bus.Message, 10)
			for i := range batch {
				batch[i] = change(n + i)
			}
			for {
				began := time.Now()
				pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := pub.Publish(pctx, batch...)
				pcancel()
				if err == nil {
					break
				}
				failures.Add(1)
				if d := time.Since(began); d.Nanoseconds() > longest.Load() {
					longest.Store(d.Nanoseconds())
				}
				time.Sleep(100 * time.Millisecond)
			}
			published.Store(int64(n + 10))
		}
	}()

	waitUntil(t, 10*time.Second, "events flowing before the kill", func() bool { return count() >= 200 })
	leader := streamInfo(t, js, "CDC").Cluster.Leader
	killedAt := time.Now()
	c.Node(leader).Kill()
	before := published.Load()
	waitUntil(t, 15*time.Second, "publishing to succeed again after the leader was killed", func() bool { return published.Load() >= before+100 })
	recovered := time.Since(killedAt)
	t.Logf("stream leader %s killed; 100 more events published %v later; %d failed attempts, longest %v",
		leader, recovered.Round(time.Millisecond), failures.Load(), time.Duration(longest.Load()).Round(time.Millisecond))
	if d := time.Duration(longest.Load()); d > 3*time.Second {
		t.Fatalf("one publish attempt took %v: it must fail fast (publish timeout 1s) so the publisher retries", d)
	}
	close(stopPub)
	<-pubDone
	total := int(published.Load())
	waitUntil(t, 20*time.Second, "the consumer to catch up without a restart", func() bool { return count() >= total })

	// Every event is stored exactly once: the retried batches were dropped
	// by the stream's duplicate window.
	info := streamInfo(t, js, "CDC")
	if int(info.State.Msgs) != total {
		t.Fatalf("stream holds %d messages for %d published events", info.State.Msgs, total)
	}
	mu.Lock()
	for i := 0; i < total; i++ {
		if seen[strconv.Itoa(i)] == 0 {
			mu.Unlock()
			t.Fatalf("event %d never reached the consumer", i)
		}
	}
	mu.Unlock()
	// The broadcast saw every event exactly once (a batch retried after a
	// failed attempt was dropped by the duplicate window).
	waitUntil(t, 20*time.Second, "the broadcast to catch up without a restart", func() bool {
		bmu.Lock()
		defer bmu.Unlock()
		return len(followed) >= total
	})
	bmu.Lock()
	times := map[int]int{}
	for _, n := range followed {
		times[n]++
	}
	bmu.Unlock()
	for i := 0; i < total; i++ {
		if times[i] != 1 {
			t.Fatalf("the broadcast saw event %d %d times, want once", i, times[i])
		}
	}
	// Both subscriptions are ready again: none is left reported stalled.
	var last error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if last = bus.CheckConsumers(sub, "reader", "follower"); last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers not ready 30s after catching up: %v", last)
		}
	}
	cancel()
	wg.Wait()
}

// TestClusterALostConsumerIsCreatedAgainAndReported deletes a group's
// durable consumer on the server (what a node restart did to the
// indexer's): the bus notices, re-creates it after its ack floor, logs it,
// and readiness (bus.CheckConsumers) fails while it is stalled and passes
// once it progresses.
func TestClusterALostConsumerIsCreatedAgainAndReported(t *testing.T) {
	c := cluster(t)
	js := operator(t, c.URL())
	logs := &syncBuffer{}
	opts := busnats.Options{Replicas: 3, StallAfter: time.Second, RequestTimeout: time.Second, Log: slog.New(slog.NewTextHandler(logs, nil))}
	b := connect(t, c.URL(), opts)
	for i := 0; i < 100; i++ {
		if err := b.Publish(context.Background(), change(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = b.Group(bus.Named(ctx, "indexer"), bus.TopicDocuments, "indexer", bus.GroupOptions{MaxBatch: 20, MaxWait: 10 * time.Millisecond},
			func(_ context.Context, msgs []bus.Message) error {
				mu.Lock()
				for _, m := range msgs {
					seen[string(m.Value)]++
				}
				mu.Unlock()
				return nil
			})
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	waitUntil(t, 10*time.Second, "the first 100 events", func() bool { return count() == 100 })
	waitUntil(t, 10*time.Second, "readiness with the consumer caught up", func() bool { return bus.CheckConsumers(b, "indexer") == nil })
	if err := bus.CheckConsumers(b, "indexer", "realtime"); err == nil || !strings.Contains(err.Error(), "realtime is not subscribed") {
		t.Fatalf("a consumer that is not running must fail readiness, got %v", err)
	}

	s, err := js.Stream(context.Background(), "CDC")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // let the watchdog see the ack floor at 100
	if err := s.DeleteConsumer(context.Background(), "indexer__cdc_documents"); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 150; i++ {
		if err := b.Publish(context.Background(), change(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 15*time.Second, "the consumer to be re-created and deliver the events after the deletion", func() bool { return count() == 150 })
	var st bus.ConsumerState
	for _, cs := range b.Consumers() {
		if cs.Name == "indexer" {
			st = cs
		}
	}
	if st.Resubscribes == 0 || !strings.Contains(st.LastError, "deleted") {
		t.Fatalf("consumer state after the deletion: %+v; want a re-subscription for the deleted consumer", st)
	}
	if !strings.Contains(logs.String(), "bus subscription lost") {
		t.Fatalf("the re-subscription was not logged:\n%s", logs.String())
	}
	// Re-created after the ack floor, not from the stream's start: the first
	// 100 events are not delivered again.
	mu.Lock()
	again := 0
	for i := 0; i < 100; i++ {
		if seen[strconv.Itoa(i)] > 1 {
			again++
		}
	}
	mu.Unlock()
	if again > 20 {
		t.Fatalf("%d of the 100 events handled before the deletion were delivered again: the consumer restarted from the beginning", again)
	}
	cancel()
	wg.Wait()
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// TestPublishingResumesAsSoonAsTheServerIsBack stops the only server for a
// few seconds while a publisher retries: every attempt fails within the
// publish timeout (none waits out the caller's 30 s deadline), and the
// first publish after the server is back succeeds within about one retry.
func TestPublishingResumesAsSoonAsTheServerIsBack(t *testing.T) {
	srv, err := localstack.StartNATSServer(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b := connect(t, srv.URL(), busnats.Options{PublishTimeout: time.Second, RequestTimeout: time.Second})
	if err := b.Publish(context.Background(), change(0)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	var restarting atomic.Int64 // when the server was started again (Unix ns)
	started := make(chan struct{})
	// Start must have returned before the cleanup's Stop reads the server.
	t.Cleanup(func() { <-started })
	go func() {
		defer close(started)
		time.Sleep(5 * time.Second)
		restarting.Store(time.Now().UnixNano())
		if err := srv.Start(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	var longest time.Duration
	for n := 1; ; n++ {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := b.Publish(ctx, change(n))
		cancel()
		longest = max(longest, time.Since(began))
		if err == nil {
			break
		}
		if time.Since(began) > 20*time.Second {
			t.Fatalf("a publish attempt waited %v", time.Since(began))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if restarting.Load() == 0 {
		t.Fatal("publish succeeded while the server was down")
	}
	after := time.Since(time.Unix(0, restarting.Load()))
	t.Logf("server down 5 s; longest attempt %v; published %v after it was back", longest.Round(time.Millisecond), after.Round(time.Millisecond))
	if longest > 3*time.Second {
		t.Fatalf("one publish attempt took %v: it must fail within the publish timeout (1 s) and be retried", longest)
	}
	if after > 5*time.Second {
		t.Fatalf("published %v after the server was back; want about one retry", after)
	}
}
