// Package cdctest runs the real change pipeline for tests: a fresh migrated
// database, an embedded NATS JetStream bus and CDC engines publishing the
// database's changes to it. Like net/http/httptest it is imported only by
// tests; the package under test needs testenv.Main in its TestMain.
//
//	p := cdctest.Start(t) // database + bus + one streaming engine
//	p.Exec(t, "INSERT INTO documents.documents ...")
//
// Tests that write rows before capture starts (snapshots), or that run
// several engines, use New and StartEngine instead.
package cdctest

import (
	"context"
	"fmt"
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

var slotSeq atomic.Int64

// Pipeline is one test's database, bus and replication slot name. Engines
// started with StartEngine stop when the test ends, before the slot is
// dropped and the database with it.
type Pipeline struct {
	URL  string        // a fresh migrated database (testenv.Database)
	Pool *pgxpool.Pool // a pool on URL
	Bus  *busnats.Bus  // embedded JetStream in a temp dir
	Slot string        // the replication slot engines use (unique in the cluster)
}

// New makes the database, pool and bus but starts no engine.
func New(t testing.TB) *Pipeline {
	t.Helper()
	return Attach(t, testenv.Database(t))
}

// Attach is New over an existing migrated database (another test
// fixture's), so that what a service writes there reaches the bus.
func Attach(t testing.TB, url string) *Pipeline {
	t.Helper()
	ctx := context.Background()
	p := &Pipeline{URL: url, Slot: fmt.Sprintf("t_slot_%d_%d", time.Now().UnixNano()%1e6, slotSeq.Add(1))}
	var err error
	if p.Bus, err = busnats.StartEmbedded(ctx, busnats.EmbeddedOptions{Dir: t.TempDir(), Port: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Bus.Close() })
	if p.Pool, err = pgxpool.New(ctx, p.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Slots are cluster-wide and retain WAL: drop this test's. An
		// engine stopped or killed a moment ago may still hold it for an
		// instant.
		for range 50 {
			_, err := p.Pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", p.Slot)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.Pool.Close()
	})
	return p
}

// Start is New plus one engine with Config on Bus, streaming.
func Start(t testing.TB) *Pipeline {
	t.Helper()
	p := New(t)
	p.StartEngine(t, p.Config(), p.Bus)
	return p
}

// Config is an engine configuration for this pipeline with short intervals,
// so that tests see status, watermarks and standby takeover quickly, and no
// heartbeat writes (they would add rows the tests do not expect).
func (p *Pipeline) Config() cdc.Config {
	cfg := cdc.DefaultConfig()
	cfg.DatabaseURL, cfg.Slot, cfg.Version, cfg.Log = p.URL, p.Slot, "test", logging.Discard()
	cfg.StatusInterval, cfg.WatermarkInterval, cfg.StandbyPoll = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	cfg.HeartbeatInterval = -1
	return cfg
}

// StartEngine runs an engine with cfg publishing to b until the test ends
// or stop is called, and waits until it streams. An error from Run fails
// the test.
func (p *Pipeline) StartEngine(t testing.TB, cfg cdc.Config, b bus.Bus) (e *cdc.Engine, stop func()) {
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
			t.Errorf("cdc engine: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	// Polled rather than a fixed sleep: the first start takes a snapshot,
	// whose length depends on the rows already there.
	deadline := time.Now().Add(time.Minute)
	for !e.Status().Streaming {
		select {
		case <-done:
			t.Fatal("cdc engine stopped before it streamed")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the cdc engine to stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e, stop
}

// Exec runs sql on Pool and fails the test if it fails.
func (p *Pipeline) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := p.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
