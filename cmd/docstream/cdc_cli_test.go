package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/cdc"
	"github.com/docstream/docstream/internal/localstack"
)

// TestCDCTargetEventsTailAndStatus runs `serve --targets=cdc` with the
// embedded bus, writes a row, and reads it back with `events tail` over the
// bus's loopback port and `cdc status` from the slot.
func TestCDCTargetEventsTailAndStatus(t *testing.T) {
	dir, err := os.MkdirTemp("", "docstream-cdc-cli-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755) // PostgreSQL runs as the postgres user
	ctx := context.Background()
	pg, err := localstack.StartPostgres(ctx, dir+"/pg", localstack.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	busPort, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	busURL := fmt.Sprintf("nats://127.0.0.1:%d", busPort)

	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	var serveOut bytes.Buffer
	go func() {
		defer wg.Done()
		err := run(sctx, []string{"serve", "--targets=cdc", "--database-url", pg.URL(), "--data-dir", dir + "/var",
			"--bus-listen", fmt.Sprintf("127.0.0.1:%d", busPort), "--cdc-addr", "127.0.0.1:0", "--cdc-status-interval", "200ms"},
			func(string) string { return "" }, &serveOut, &serveOut)
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := cdc.Inspect(ctx, conn, "docstream_slot", "docstream_pub")
		if err == nil && info.Active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cdc target did not attach to its slot: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const id = "0691e72f-799b-7efd-8000-e5c4e1cb7813"
	if _, err := conn.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 't', 'a@b.c')`, id); err != nil {
		t.Fatal(err)
	}

	// Without --bus-url, tail finds the bus in <data-dir>/dev.json as
	// `docstream dev` writes it.
	devDir := t.TempDir()
	st, _ := json.Marshal(app.DevState{BusURL: busURL, DatabaseURL: pg.URL()})
	if err := os.WriteFile(devDir+"/dev.json", st, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"events", "tail", "documents", "--from-beginning", "--key", id, "--max", "1", "--data-dir", devDir},
		func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("events tail: %v\n%s", err, out.String())
	}
	var line struct {
		Topic string            `json:"topic"`
		Key   map[string]string `json:"key"`
		Value struct {
			Op    string         `json:"op"`
			After map[string]any `json:"after"`
		} `json:"value"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("events tail printed %q: %v", out.String(), err)
	}
	if line.Topic != "cdc.documents" || line.Key["id"] != id || line.Value.Op != "c" || line.Value.After["title"] != "t" || line.Headers["lsn"] == "" {
		t.Fatalf("events tail printed %s", out.String())
	}

	out.Reset()
	if err := run(ctx, []string{"cdc", "status", "--data-dir", devDir}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("cdc status: %v", err)
	}
	for _, want := range []string{"docstream_slot", "active", "confirmed lsn", "lag", "documents.documents, documents.extractions, signatures.signatures", "done",
		"active engine", "(docstream-cdc), since"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cdc status output lacks %q:\n%s", want, out.String())
		}
	}

	// -o json as in the other commands; --json, the first spelling, still works.
	for _, args := range [][]string{{"-o", "json"}, {"--output", "json"}, {"--json"}} {
		out.Reset()
		if err := run(ctx, append([]string{"cdc", "status", "--data-dir", devDir}, args...), func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("cdc status %v: %v", args, err)
		}
		var info cdc.SlotInfo
		if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Slot != "docstream_slot" || !info.Exists ||
			info.ActiveEngine == nil || info.ActiveEngine.PID == 0 {
			t.Errorf("cdc status %v printed %s (%v)", args, out.String(), err)
		}
	}
}

func TestCDCStatusHidesItsOldJSONFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cdc", "status", "--help"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-o, --docstream-output") || strings.Contains(out.String(), "--json") {
		t.Fatalf("cdc status --help:\n%s", out.String())
	}
}

func TestEventsTailWithoutABusSaysHowToFindOne(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"events", "tail", "cdc.documents", "--data-dir", t.TempDir()}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "docstream dev") {
		t.Fatalf("err = %v", err)
	}
}
