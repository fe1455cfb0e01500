package cdc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/docstream/docstream/internal/testenv"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc"
)

func findRecvLogical(b *testing.B) string {
	for _, p := range []string{"/usr/lib/postgresql/15/bin/pg_recvlogical", "/usr/bin/pg_recvlogical"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("pg_recvlogical"); err == nil {
		return p
	}
	b.Skip("pg_recvlogical not installed")
	return ""
}

func (f *fixture) currentLSN(t testing.TB) uint64 {
	var s string
	if err := f.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	var hi, lo uint64
	_, _ = fmt.Sscanf(s, "%X/%X", &hi, &lo)
	return hi<<32 | lo
}

// BenchmarkCapture100kRows measures capture throughput for one 100k-row
// INSERT, from its commit to the bus acknowledging the last event
// (embedded JetStream, file storage), while pg_recvlogical decodes the same
// WAL through pgoutput into /dev/null in the same run, as the baseline.
// Reported: rows/s for each and their ratio. Run with -benchtime=1x.
//
// The two share the machine's cores (with their walsenders and the bus), so
// each slows the other; BenchmarkCapture100kRowsAlone measures them one
// after the other instead.
func BenchmarkCapture100kRows(b *testing.B) {
	f := newFixture(b)
	cfg := f.Config()
	cfg.Snapshot = cdc.SnapshotNever
	e, _ := f.StartEngine(b, cfg, f.Bus)
	marks := startRecvLogical(b, f)
	wpool := syncCommitPool(b, f.URL)
	b.ResetTimer()
	var ourTotal, recvTotal time.Duration
	for i := 0; i < b.N; i++ {
		committed, end := insertRows(b, f, wpool)
		var theirs time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { theirs = marks.wait(b, committed) })
		ourTotal += engineAcked(b, e, committed, end)
		wg.Wait()
		recvTotal += theirs
	}
	b.StopTimer()
	reportCapture(b, ourTotal, recvTotal)
}

// BenchmarkCapture100kRowsAlone is BenchmarkCapture100kRows with the two
// measured alone, one after the other on the same database: first
// pg_recvlogical decodes a 100k-row INSERT with no engine running (its
// slot not yet made), then it is stopped and the engine, started after
// it, captures another. Run with -benchtime=1x.
func BenchmarkCapture100kRowsAlone(b *testing.B) {
	f := newFixture(b)
	wpool := syncCommitPool(b, f.URL)
	// The engine makes the publication pg_recvlogical reads: run it once
	// on a slot of its own, then drop that slot.
	setup := f.Config()
	setup.Slot = f.Slot + "_setup"
	_, stop := f.StartEngine(b, setup, f.Bus)
	stop()
	if _, err := f.Pool.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", setup.Slot); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var ourTotal, recvTotal time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		marks := startRecvLogical(b, f)
		b.StartTimer()
		committed, _ := insertRows(b, f, wpool)
		recvTotal += marks.wait(b, committed)
		b.StopTimer()
		marks.stop()
		cfg := f.Config()
		cfg.Snapshot = cdc.SnapshotNever
		if i > 0 { // each round's engine starts after its pg_recvlogical, on a slot of its own
			cfg.Slot = fmt.Sprintf("%s_%d", f.Slot, i)
			b.Cleanup(func() {
				_, _ = f.Pool.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", cfg.Slot)
			})
		}
		e, stop := f.StartEngine(b, cfg, f.Bus)
		b.StartTimer()
		committed, end := insertRows(b, f, wpool)
		ourTotal += engineAcked(b, e, committed, end)
		b.StopTimer()
		stop()
		b.StartTimer()
	}
	b.StopTimer()
	reportCapture(b, ourTotal, recvTotal)
}

const captureRows = 100_000

// insertRows commits a captureRows-row INSERT and then an end marker (a
// logical message), and returns when the INSERT committed and the WAL
// position after the marker.
func insertRows(b *testing.B, f *fixture, wpool *pgxpool.Pool) (committed time.Time, end uint64) {
	ctx := context.Background()
	if _, err := wpool.Exec(ctx, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by)
		SELECT gen_random_uuid(), 'Benchmark document ' || g, g, 'bench/' || g, 'bench@example.com' FROM generate_series(1, $1) g`, captureRows); err != nil {
		b.Fatal(err)
	}
	committed = time.Now()
	if _, err := wpool.Exec(ctx, "SELECT pg_logical_emit_message(true, 'bench.end', '')"); err != nil {
		b.Fatal(err)
	}
	return committed, f.currentLSN(b)
}

// engineAcked waits for e to confirm end and returns the time since
// committed.
func engineAcked(b *testing.B, e *cdc.Engine, committed time.Time, end uint64) time.Duration {
	testenv.WaitFor(b, "engine acked the 100k rows", func() bool { return e.Status().ConfirmedLSN >= end })
	return time.Since(committed)
}

func reportCapture(b *testing.B, ourTotal, recvTotal time.Duration) {
	ourRate := float64(captureRows*b.N) / ourTotal.Seconds()
	recvRate := float64(captureRows*b.N) / recvTotal.Seconds()
	b.ReportMetric(ourRate, "rows/s")
	b.ReportMetric(recvRate, "pg_recvlogical_rows/s")
	b.ReportMetric(ourRate/recvRate, "x_recvlogical")
}

// recvLogical is a running pg_recvlogical on its own slot and the
// engine's publication, printing to a pipe; marks has the time of each end
// marker it printed.
type recvLogical struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	marks  chan time.Time
}

func startRecvLogical(b *testing.B, f *fixture) *recvLogical {
	recv := findRecvLogical(b)
	rslot := fmt.Sprintf("%s_recv_%d", f.Slot, time.Now().UnixNano())
	b.Cleanup(func() {
		_, _ = f.Pool.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", rslot)
	})
	if out, err := exec.Command(recv, "-d", f.URL, "--slot", rslot, "--create-slot", "-P", "pgoutput").CombinedOutput(); err != nil {
		b.Fatalf("pg_recvlogical --create-slot: %v\n%s", err, out)
	}
	cmd := exec.Command(recv, "-d", f.URL, "--slot", rslot, "--start", "-f", "-", "-s", "1", "-F", "0",
		"-o", "proto_version=1", "-o", "publication_names=docstream_pub", "-o", "messages=true")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	r := &recvLogical{cmd: cmd, stderr: &bytes.Buffer{}, marks: make(chan time.Time, 16)}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.stop)
	go func() {
		// Every end marker (a logical message with this prefix) pg_recvlogical prints.
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.Index(data, []byte("bench.end")); i >= 0 {
				return i + len("bench.end"), data[i : i+len("bench.end")], nil
			}
			if atEOF {
				return len(data), nil, nil
			}
			if len(data) > 64 {
				return len(data) - 64, nil, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			r.marks <- time.Now()
		}
	}()
	testenv.WaitFor(b, "pg_recvlogical streaming", func() bool {
		var active bool
		_ = f.Pool.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", rslot).Scan(&active)
		return active
	})
	return r
}

// wait returns the time from committed to pg_recvlogical printing the
// next end marker.
func (r *recvLogical) wait(b *testing.B, committed time.Time) time.Duration {
	select {
	case at := <-r.marks:
		return at.Sub(committed)
	case <-time.After(5 * time.Minute):
		b.Errorf("pg_recvlogical never printed the end marker: %s", r.stderr.String())
		return 0
	}
}

func (r *recvLogical) stop() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// BenchmarkCommitToBusLatency writes single-row transactions at a steady
// 1,000 rows/s for 10 s and measures, per row, the time from the commit
// returning to the event reaching a bus subscriber (which is after the bus
// acknowledged it). Reports p50 and p99 in ms. Run with -benchtime=1x.
func BenchmarkCommitToBusLatency(b *testing.B) {
	const rate, seconds = 1000, 10
	f := newFixture(b)
	cfg := f.Config()
	cfg.Snapshot = cdc.SnapshotNever
	f.StartEngine(b, cfg, f.Bus)
	wpool := syncCommitPool(b, f.URL)

	var mu sync.Mutex
	received := map[string]time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = f.Bus.Broadcast(ctx, bus.TopicDocuments, bus.Start{Kind: bus.StartNew}, func(_ context.Context, msgs []bus.Message) error {
			now := time.Now()
			mu.Lock()
			for _, m := range msgs {
				received[keyID(m)] = now
			}
			mu.Unlock()
			return nil
		})
	}()
	time.Sleep(300 * time.Millisecond) // the subscription is in place

	b.ResetTimer()
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		committed := map[string]time.Time{}
		tick := time.NewTicker(time.Second / rate)
		for n := 0; n < rate*seconds; n++ {
			<-tick.C
			id := uuid.Must(uuid.NewV7()).String()
			if _, err := wpool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 'doc', 'w@example.com')`, id); err != nil {
				b.Fatal(err)
			}
			committed[id] = time.Now()
		}
		tick.Stop()
		testenv.WaitFor(b, "every row delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for id := range committed {
				if _, ok := received[id]; !ok {
					return false
				}
			}
			return true
		})
		mu.Lock()
		for id, c := range committed {
			lat = append(lat, max(received[id].Sub(c), 0))
		}
		mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(len(lat)), "rows")
}

// syncCommitPool is a pool whose commits are flushed at once, whatever the
// cluster's default: with synchronous_commit=off a commit stays unflushed
// (and so unseen by any walsender) for up to three wal_writer_delay periods.
func syncCommitPool(b *testing.B, url string) *pgxpool.Pool {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	p, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}
