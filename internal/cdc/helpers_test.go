package cdc_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// TestMain runs the tests, or, when started by TestKilledEngineProcess...,
// one engine in this process until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv(childURLEnv) != "" {
		os.Exit(runChild())
	}
	testenv.Main(m)
}

var slotSeq atomic.Int64

// fixture is one test's database, bus and slot name.
type fixture struct {
	url  string
	pool *pgxpool.Pool
	bus  *busnats.Bus
	slot string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{url: testenv.Database(t), slot: fmt.Sprintf("t_slot_%d_%d", time.Now().UnixNano()%1e6, slotSeq.Add(1))}
	var err error
	f.bus, err = busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.bus.Close() })
	f.pool, err = pgxpool.New(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The slot must go before the database can be dropped; an engine
		// killed a moment ago may still hold it for an instant.
		for i := 0; i < 50; i++ {
			_, err := f.pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", f.slot)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		f.pool.Close()
	})
	return f
}

func (f *fixture) config() cdc.Config {
	return cdc.Config{DatabaseURL: f.url, Slot: f.slot, Version: "test", StatusInterval: 200 * time.Millisecond,
		WatermarkInterval: 200 * time.Millisecond, StandbyPoll: 200 * time.Millisecond, HeartbeatInterval: -1, Log: logging.Discard()}
}

// start runs an engine until the test ends (or stop is called) and waits
// until it streams.
func (f *fixture) start(t testing.TB, cfg cdc.Config, b bus.Bus) (e *cdc.Engine, stop func()) {
	t.Helper()
	e, err := cdc.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	waitFor(t, "engine streaming", func() bool { return e.Status().Streaming })
	return e, stop
}

func (f *fixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// collector gathers every message of some topics from the beginning.
type collector struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func collect(t testing.TB, b bus.Bus, topics ...string) *collector {
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, topic := range topics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = b.Broadcast(ctx, topic, bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, msgs []bus.Message) error {
				c.mu.Lock()
				c.msgs = append(c.msgs, msgs...)
				c.mu.Unlock()
				return nil
			})
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

func (c *collector) snapshot() []bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Message(nil), c.msgs...)
}

func (c *collector) topic(topic string) []bus.Message {
	var out []bus.Message
	for _, m := range c.snapshot() {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func (c *collector) waitCount(t testing.TB, topic string, n int) []bus.Message {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events on %s", n, topic), func() bool { return len(c.topic(topic)) >= n })
	return c.topic(topic)
}

func lsnOf(m bus.Message) uint64 {
	n, _ := strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
	return n
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newEngine(cfg cdc.Config, b bus.Bus) (*cdc.Engine, error) { return cdc.New(cfg, b) }
