package cdc_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/cdc/cdctest"
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

// fixture is one test's pipeline (database, bus, slot), with the queries
// the cdc tests add to it.
type fixture struct{ *cdctest.Pipeline }

func newFixture(t testing.TB) *fixture { return &fixture{cdctest.New(t)} }

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
	testenv.WaitFor(t, fmt.Sprintf("%d events on %s", n, topic), func() bool { return len(c.topic(topic)) >= n })
	return c.topic(topic)
}

func lsnOf(m bus.Message) uint64 {
	n, _ := strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
	return n
}

func newEngine(cfg cdc.Config, b bus.Bus) (*cdc.Engine, error) { return cdc.New(cfg, b) }
