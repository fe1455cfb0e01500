package cdc_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/docstream/docstream/internal/bus"
	buskafka "github.com/docstream/docstream/internal/bus/kafka"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

const (
	childURLEnv  = "DOCSTREAM_CDC_CHILD_DATABASE_URL"
	childBusEnv  = "DOCSTREAM_CDC_CHILD_BUS_URL"
	childSlotEnv = "DOCSTREAM_CDC_CHILD_SLOT"
)

// dedupWindow is JetStream's duplicate window in these tests: short, so
// that a restart comes later than it, as after a long outage, and
// JetStream no longer drops what the engine publishes again.
const dedupWindow = time.Second

// runChild is the body of the child process: an engine on the given
// database, bus and slot, until SIGKILL, or SIGTERM (a clean stop). It
// reports its position to PostgreSQL at the default interval, so the
// slot's confirmed position lags what the bus holds, as in production.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b, err := busnats.Connect(ctx, os.Getenv(childBusEnv), busnats.Options{Duplicates: dedupWindow})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	cfg := cdc.DefaultConfig()
	cfg.DatabaseURL, cfg.Slot, cfg.Log = os.Getenv(childURLEnv), os.Getenv(childSlotEnv), logging.Discard()
	cfg.HeartbeatInterval = -1
	e, err := cdc.New(cfg, b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := e.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, f *fixture, busURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childURLEnv+"="+f.URL, childBusEnv+"="+busURL, childSlotEnv+"="+f.Slot)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func (f *fixture) slotActive(t *testing.T) bool {
	var active bool
	err := f.Pool.QueryRow(context.Background(), "SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)", f.Slot).Scan(&active)
	if err != nil {
		t.Fatal(err)
	}
	return active
}

// childBus is the bus of the kill tests: embedded JetStream with the short
// duplicate window, listening for the child engines.
func childBus(t *testing.T) *busnats.Bus {
	b, err := busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: t.TempDir(), Port: -1,
		Options: busnats.Options{Duplicates: dedupWindow}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// assertExactlyOnceInCommitOrder checks the stream as a consumer reads it:
// no event (topic, lsn, key) twice, and commit_lsn never going back.
func assertExactlyOnceInCommitOrder(t *testing.T, msgs []bus.Message) {
	t.Helper()
	seen := map[string]uint64{}
	var last uint64
	for _, m := range msgs {
		k := m.Topic + "|" + m.Headers[bus.HeaderLSN] + "|" + string(m.Key)
		if at, ok := seen[k]; ok {
			t.Fatalf("event %s stored twice, at positions %d and %d", k, at, m.Position)
		}
		seen[k] = m.Position
		c := bus.Cursor(m)
		if c < last {
			t.Fatalf("commit_lsn goes back at position %d: %s after %s", m.Position, cdc.LSN(c), cdc.LSN(last))
		}
		last = c
	}
}

func maxCursor(msgs []bus.Message) uint64 {
	var c uint64
	for _, m := range msgs {
		c = max(c, bus.Cursor(m))
	}
	return c
}

func TestKilledEngineRestartedAfterTheDuplicateWindowPublishesNothingTwice(t *testing.T) {
	f := newFixture(t)
	b := childBus(t)
	c := collect(t, b, bus.TopicDocuments)
	var w *writer

	behind := 0 // kills after which the slot had not confirmed all the bus held
	for i := 0; i < 3; i++ {
		cmd := startChild(t, f, b.URL())
		testenv.WaitFor(t, "child engine streaming", func() bool { return f.slotActive(t) })
		if w == nil {
			// Writes start once the slot and its (empty) snapshot exist: a
			// snapshot cut off by a kill is taken again whole, by design.
			testenv.WaitFor(t, "snapshot done", func() bool {
				var done bool
				_ = f.Pool.QueryRow(context.Background(), "SELECT snapshot_done_at IS NOT NULL FROM cdc.slots WHERE slot_name = $1", f.Slot).Scan(&done)
				return done
			})
			// Writes go on through kills and outages, so the slot's
			// confirmed position lags what the bus holds when the engine dies.
			w = startWriter(t, f, 10_000)
		}
		time.Sleep(time.Duration(300+mrand.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Signal(os.Kill); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		testenv.WaitFor(t, "slot released by the killed engine", func() bool { return !f.slotActive(t) })
		if f.confirmedLSN(t) <= maxCursor(c.topic(bus.TopicDocuments)) {
			behind++
		}
		// Down for longer than the duplicate window, while writes go on.
		time.Sleep(dedupWindow + 500*time.Millisecond)
	}
	w.stop()
	startChild(t, f, b.URL())
	ids := w.ids()
	waitAll(t, c, bus.TopicDocuments, ids)
	if behind == 0 {
		t.Fatal("the slot had confirmed everything at every kill: nothing was replayed, the test proves nothing")
	}
	msgs := c.topic(bus.TopicDocuments)
	assertExactlyOnceInCommitOrder(t, msgs)
	// The table, not the writer's list: an insert cancelled when the writer
	// stops may still have committed.
	var rows int
	if err := f.Pool.QueryRow(context.Background(), "SELECT count(*) FROM documents.documents").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "an event for every row in the table", func() bool { return len(c.topic(bus.TopicDocuments)) >= rows })
	if msgs = c.topic(bus.TopicDocuments); len(msgs) != rows {
		t.Fatalf("%d events for %d rows", len(msgs), rows)
	}
	assertExactlyOnceInCommitOrder(t, msgs)
	t.Logf("%d committed rows, 3 kills (%d with the slot behind the bus), each engine down %v: every row once, in commit order",
		rows, behind, dedupWindow+500*time.Millisecond)
}

// TestCleanlyStoppedEngineRestartedAfterTheDuplicateWindowPublishesNothingTwice
// stops the engine with SIGTERM and then restarts PostgreSQL too, as
// `docstream dev` does: PostgreSQL 15 does not write a logical slot's
// confirmed position at shutdown unless something else made the slot dirty,
// so after the restart the slot replays what the bus already holds.
func TestCleanlyStoppedEngineRestartedAfterTheDuplicateWindowPublishesNothingTwice(t *testing.T) {
	f := newFixture(t)
	b := childBus(t)
	c := collect(t, b, bus.TopicDocuments)
	var ids []string
	for i := 0; i < 2; i++ {
		cmd := startChild(t, f, b.URL())
		testenv.WaitFor(t, "child engine streaming", func() bool { return f.slotActive(t) })
		w := startWriter(t, f, 300)
		<-w.done
		ids = append(ids, w.ids()...)
		waitAll(t, c, bus.TopicDocuments, ids)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("engine did not stop cleanly on SIGTERM: %v", err)
		}
		pg := testenv.Postgres()
		pg.Stop()
		if err := pg.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.Pool.Reset()
		time.Sleep(dedupWindow + 500*time.Millisecond)
	}
	startChild(t, f, b.URL())
	testenv.WaitFor(t, "child engine streaming", func() bool { return f.slotActive(t) })
	w := startWriter(t, f, 100)
	<-w.done
	ids = append(ids, w.ids()...)
	waitAll(t, c, bus.TopicDocuments, ids)
	msgs := c.topic(bus.TopicDocuments)
	assertExactlyOnceInCommitOrder(t, msgs)
	if len(msgs) != len(ids) {
		t.Fatalf("%d events for %d committed rows", len(msgs), len(ids))
	}
}

func TestEngineRefusesABusFromAnotherPostgreSQLHistory(t *testing.T) {
	var sysID string
	f0 := newFixture(t)
	if err := f0.Pool.QueryRow(context.Background(), "SELECT system_identifier::text FROM pg_control_system()").Scan(&sysID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		system, tl    string
		lsn           uint64
		wantInMessage string
	}{
		{"another cluster (system identifier)", "7000000000000000001", "1", 1, "system 7000000000000000001 timeline 1"},
		{"a restore or failover (timeline)", sysID, "2", 1, "timeline 2"},
		{"a database whose WAL is behind the mark", sysID, "1", 1 << 60, "WAL ends at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.Exec(t, "INSERT INTO documents.documents (id, title, created_by) VALUES (gen_random_uuid(), 'x', 'a@example.com')")
			if err := f.Bus.Publish(context.Background(), bus.Message{Topic: bus.TopicWatermarks, Key: []byte(f.Slot),
				Value:   []byte(fmt.Sprintf(`{"lsn":%d,"ts_ms":1}`, tc.lsn)),
				Headers: map[string]string{bus.HeaderLSN: fmt.Sprint(tc.lsn), bus.HeaderSystemID: tc.system, bus.HeaderTimeline: tc.tl}}); err != nil {
				t.Fatal(err)
			}
			e, err := cdc.New(f.Config(), f.Bus)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = e.Run(ctx) // returns: the mismatch is fatal, not retried
			if !errors.Is(err, cdc.ErrSourceMismatch) {
				t.Fatalf("Run = %v, want the source mismatch", err)
			}
			for _, want := range []string{tc.wantInMessage, "fresh snapshot", "nats stream rm CDC", "replication slot " + f.Slot} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			if f.slotActive(t) {
				t.Error("slot in use after the engine refused to start")
			}
			var slots int
			_ = f.Pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", f.Slot).Scan(&slots)
			if slots != 0 {
				t.Error("the engine created a slot (and snapshot) before refusing")
			}
		})
	}
}

// TestEngineOnKafkaRestartedAfterPostgreSQLRestartPublishesNothingTwice is
// the clean-stop case on the Kafka bus (franz-go's in-process kfake: no
// broker can be installed here), which has no duplicate window at all.
func TestEngineOnKafkaRestartedAfterPostgreSQLRestartPublishesNothingTwice(t *testing.T) {
	f := newFixture(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	kb, err := buskafka.Connect(context.Background(), kc.ListenAddrs(), buskafka.Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kb.Close() })
	c := collect(t, kb, bus.TopicDocuments)
	var ids []string
	for i := 0; i < 3; i++ {
		_, stop := f.StartEngine(t, f.Config(), kb)
		w := startWriter(t, f, 200)
		<-w.done
		ids = append(ids, w.ids()...)
		waitAll(t, c, bus.TopicDocuments, ids)
		stop()
		if i == 2 {
			break
		}
		pg := testenv.Postgres()
		pg.Stop()
		if err := pg.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.Pool.Reset()
	}
	msgs := c.topic(bus.TopicDocuments)
	byPartition := map[int32][]bus.Message{}
	for _, m := range msgs {
		byPartition[m.Partition] = append(byPartition[m.Partition], m)
	}
	for _, p := range byPartition {
		assertExactlyOnceInCommitOrder(t, p)
	}
	if len(msgs) != len(ids) {
		t.Fatalf("%d events for %d committed rows", len(msgs), len(ids))
	}
}
