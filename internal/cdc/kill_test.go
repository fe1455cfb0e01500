package cdc_test

import (
	"context"
	"fmt"
	"github.com/docstream/docstream/internal/testenv"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/logging"
)

const (
	childURLEnv  = "DOCSTREAM_CDC_CHILD_DATABASE_URL"
	childBusEnv  = "DOCSTREAM_CDC_CHILD_BUS_URL"
	childSlotEnv = "DOCSTREAM_CDC_CHILD_SLOT"
)

// dedupWindow is short so that the bus keeps re-published events and the
// test can see what the engine itself repeats.
const dedupWindow = 100 * time.Millisecond

// runChild is the body of the child process: an engine on the given
// database, bus and slot, until SIGKILL.
func runChild() int {
	ctx := context.Background()
	b, err := busnats.Connect(ctx, os.Getenv(childBusEnv), busnats.Options{Duplicates: dedupWindow})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e, err := cdc.New(cdc.Config{DatabaseURL: os.Getenv(childURLEnv), Slot: os.Getenv(childSlotEnv),
		StatusInterval: 200 * time.Millisecond, HeartbeatInterval: -1, Log: logging.Discard()}, b)
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

func TestKilledEngineProcessLosesNothingAndRepeatsOnlyUnconfirmed(t *testing.T) {
	f := newFixture(t)
	// This test's own bus: a short dedup window, listening for the child.
	b, err := busnats.StartEmbedded(context.Background(), busnats.EmbeddedOptions{Dir: t.TempDir(), Port: -1,
		Options: busnats.Options{Duplicates: dedupWindow}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c := collect(t, b, bus.TopicDocuments)
	w := startWriter(t, f, 6000)

	type kill struct {
		at        time.Time
		confirmed uint64
	}
	var kills []kill
	for i := 0; i < 4; i++ {
		cmd := startChild(t, f, b.URL())
		testenv.WaitFor(t, "child engine streaming", func() bool { return f.slotActive(t) })
		time.Sleep(time.Duration(150+mrand.IntN(500)) * time.Millisecond)
		if err := cmd.Process.Signal(os.Kill); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		testenv.WaitFor(t, "slot released by the killed engine", func() bool { return !f.slotActive(t) })
		kills = append(kills, kill{time.Now(), f.confirmedLSN(t)})
	}
	w.stop()
	startChild(t, f, b.URL())
	ids := w.ids()
	waitAll(t, c, bus.TopicDocuments, ids)

	// A change stored again after kill k must belong to a transaction that
	// committed at or above what was confirmed when k happened.
	seen := map[string]bool{}
	dups := 0
	for _, m := range c.topic(bus.TopicDocuments) {
		k := m.Headers[bus.HeaderLSN] + "|" + string(m.Key)
		if !seen[k] {
			seen[k] = true
			continue
		}
		dups++
		var last *kill
		for i := range kills {
			if kills[i].at.Before(m.Time) {
				last = &kills[i]
			}
		}
		if last == nil {
			t.Fatalf("lsn %s stored twice before any kill", m.Headers[bus.HeaderLSN])
		}
		if commit, _ := strconv.ParseUint(m.Headers[bus.HeaderCommitLSN], 10, 64); commit < last.confirmed {
			t.Fatalf("change %s of a transaction committed at %d re-published though confirmed up to %d", k, commit, last.confirmed)
		}
	}
	t.Logf("%d committed rows, %d kills, %d re-published events (all of transactions committed after the confirmed LSN)", len(ids), len(kills), dups)
}
