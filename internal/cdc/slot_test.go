package cdc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/cdc"
)

// TestInvalidatedSlotIsNeverRecreatedSilently lowers max_slot_wal_keep_size
// on the package's cluster while the engine is stopped, writes WAL past it
// so PostgreSQL invalidates the slot, and checks that the engine refuses to
// run, names the remedy and leaves the slot as it is.
func TestInvalidatedSlotIsNeverRecreatedSilently(t *testing.T) {
	f := newFixture(t)
	_, stop := f.StartEngine(t, f.Config(), f.Bus)
	c := collect(t, f.Bus, "cdc.documents")
	f.Exec(t, "INSERT INTO documents.documents (id, title, created_by) VALUES (gen_random_uuid(), 'before', 'a@example.com')")
	c.waitCount(t, "cdc.documents", 1)
	stop()

	t.Cleanup(func() {
		f.Exec(t, "ALTER SYSTEM RESET max_slot_wal_keep_size")
		f.Exec(t, "SELECT pg_reload_conf()")
	})
	f.Exec(t, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
	f.Exec(t, "SELECT pg_reload_conf()")
	status := func() string {
		var s string
		if err := f.Pool.QueryRow(context.Background(), "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1", f.Slot).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i := 0; i < 20 && status() != "lost"; i++ {
		f.Exec(t, "INSERT INTO documents.documents (id, title, created_by) VALUES (gen_random_uuid(), 'while stopped', 'a@example.com')")
		f.Exec(t, "SELECT pg_switch_wal()")
		f.Exec(t, "CHECKPOINT")
	}
	if s := status(); s != "lost" {
		t.Fatalf("slot wal_status = %q after writing WAL past max_slot_wal_keep_size; want lost", s)
	}

	e, err := cdc.New(f.Config(), f.Bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = e.Run(ctx)
	if !errors.Is(err, cdc.ErrSlotLost) {
		t.Fatalf("Run = %v, want the invalidated slot's fatal error", err)
	}
	for _, want := range []string{"pg_drop_replication_slot('" + f.Slot + "')", "snapshot", "max_slot_wal_keep_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if s := status(); s != "lost" {
		t.Errorf("slot wal_status = %q after the engine ran; it must be left invalidated, not recreated", s)
	}
	if n := len(c.topic("cdc.documents")); n != 1 {
		t.Errorf("%d events on cdc.documents; want only the one before the slot was lost (no snapshot published)", n)
	}
}
