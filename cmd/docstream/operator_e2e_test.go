package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// TestTheOperatorsShapeRidesOutEveryFailureUnderOneLoad is the deployment
// of docs/operations.md as separate `docstream serve` processes — two
// document instances over PgBouncer (transaction pooling) and versitygw
// (S3), an active and a standby CDC engine, indexer+search, and a gateway
// balancing the two document instances — over a 3-node nats-server
// cluster with --bus-replicas=3. Under one steady load of creates through
// the gateway, each carrying an Idempotency-Key and retried with it after
// a 503 (honouring Retry-After), it in turn:
//
//  1. kills the NATS node that leads the CDC stream: documents created
//     after it become searchable, the indexer catching up without a
//     restart;
//  2. kills the active CDC engine with SIGKILL: the standby takes over and
//     later documents become searchable;
//  3. restarts a document instance with SIGTERM: the gateway sees it
//     drain and no request fails;
//  4. kills PgBouncer and starts it again 2.5 s later: only 503 with
//     Retry-After, never a 500.
//
// At the end every key created exactly one document, each is searchable,
// and the CDC stream holds each document's create exactly once.
func TestTheOperatorsShapeRidesOutEveryFailureUnderOneLoad(t *testing.T) {
	ctx := context.Background()
	dir := testenv.TempDir(t)
	pg, err := localstack.StartPostgres(ctx, filepath.Join(dir, "pg"), localstack.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	bouncer, err := localstack.StartPgBouncer(ctx, filepath.Join(dir, "pgbouncer"), pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bouncer.Stop)
	rds, err := localstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rds.Stop)
	tools, _ := filepath.Abs("../../.tools/bin")
	s3, err := localstack.StartS3(ctx, filepath.Join(dir, "s3"), tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s3.Stop)
	nats, err := localstack.StartNATSCluster(ctx, filepath.Join(dir, "nats"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Stop)

	env := []string{"AWS_ACCESS_KEY_ID=" + localstack.S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + localstack.S3SecretKey}
	// The document instances share one audit key (serve needs it).
	keyFile := filepath.Join(dir, "audit.pem")
	if _, _, err := cli(t, "", "audit", "keygen", "--out", keyFile); err != nil {
		t.Fatal(err)
	}
	common := []string{"--auth-mode", "open", "--audit-signing-key", keyFile, "--database-url", bouncer.URL(), "--direct-database-url", pg.URL(),
		"--redis-url", rds.URL(), "--bus-url", nats.URL(), "--bus-replicas", "3",
		"--bus-publish-timeout", "1s", "--bus-stall-timeout", "3s",
		"--blob-url", "s3://ignored?endpoint=" + s3.Endpoint() + "&region=us-east-1&use_path_style=true"}
	serve := func(name string, args ...string) *serveProc {
		return startServeEnv(t, name, env, append(append(append([]string{}, common...), "--data-dir", filepath.Join(dir, name)), args...)...)
	}
	ready := func(what, url string) {
		t.Helper()
		c := newClient(t, url)
		testenv.WaitFor(t, what+" ready", func() bool {
			_, err := c.Ready(ctx)
			return err == nil
		})
	}

	// The document instances drain 3 s on SIGTERM: above the gateway's
	// checks (every 200 ms, unready after 2 failures).
	docAddr := [2]string{freeAddr(t), freeAddr(t)}
	docGRPC := [2]string{freeAddr(t), freeAddr(t)}
	startDoc := func(i int) *serveProc {
		p := serve(fmt.Sprintf("document-%d", i+1), "--targets", "document", "--shutdown-drain", "3s",
			"--document-addr", docAddr[i], "--document-grpc-addr", docGRPC[i])
		ready(fmt.Sprintf("document %d", i+1), "http://"+docAddr[i])
		return p
	}
	docs := [2]*serveProc{startDoc(0), startDoc(1)}
	cdcAddr := [2]string{freeAddr(t), freeAddr(t)}
	cdcs := [2]*serveProc{
		serve("cdc-1", "--targets", "cdc", "--cdc-addr", cdcAddr[0]),
		serve("cdc-2", "--targets", "cdc", "--cdc-addr", cdcAddr[1]),
	}
	searchAddr, indexerAddr := freeAddr(t), freeAddr(t)
	serve("search", "--targets", "indexer,search", "--search-addr", searchAddr, "--indexer-addr", indexerAddr)
	ready("search", "http://"+searchAddr)

	gwAddr, gwAdmin := freeAddr(t), freeAddr(t)
	gwConfig := filepath.Join(dir, "gateway.yaml")
	check := "health_check: {interval: 200ms, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1}"
	if err := os.WriteFile(gwConfig, []byte(fmt.Sprintf(`services:
  - {name: document, upstreams: [http://%s, http://%s], %s}
  - {name: search, upstreams: [http://%s], %s}
routes:
  - {name: documents, service: document, paths: [/documents]}
  - {name: search, service: search, paths: [/search]}
rate_limit: {requests: 0}
`, docAddr[0], docAddr[1], check, searchAddr, check)), 0o644); err != nil {
		t.Fatal(err)
	}
	serve("gateway", "--targets", "gateway", "--gateway-config", gwConfig, "--gateway-addr", gwAddr, "--gateway-admin-addr", gwAdmin)
	ready("gateway", "http://"+gwAddr)
	gw := "http://" + gwAddr

	role := func(addr string) string { return testenv.CDCRole("http://" + addr) }
	testenv.WaitFor(t, "one active CDC engine and one standby", func() bool {
		a, b := role(cdcAddr[0]), role(cdcAddr[1])
		return (a == "active" && b == "standby") || (a == "standby" && b == "active")
	})

	// The load: 4 clients, each creating one document after another; a
	// 503 is retried with the same Idempotency-Key after its Retry-After
	// (at most 1 s here). Anything else but 201 is a failure.
	const word = "operatorrun"
	var (
		created, busy atomic.Int64
		mu            sync.Mutex
		failures      []string
		keys          []string
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, s)
		}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 30 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for n := 0; loadCtx.Err() == nil; n++ {
				key := fmt.Sprintf("op-%d-%d", w, n)
				body := fmt.Sprintf(`{"title":"%s %s","content":"%s content of %s","created_by":"ops@example.com"}`, word, key, word, key)
				for attempt := 0; ; attempt++ {
					req, _ := http.NewRequest(http.MethodPost, gw+"/documents", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(api.IdempotencyKeyHeader, key)
					resp, err := hc.Do(req)
					if err != nil {
						fail(fmt.Sprintf("%s: %v", key, err))
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated {
						created.Add(1)
						mu.Lock()
						keys = append(keys, key)
						mu.Unlock()
						break
					}
					if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
						fail(fmt.Sprintf("%s: %d (Retry-After %q)", key, resp.StatusCode, resp.Header.Get("Retry-After")))
						return
					}
					busy.Add(1)
					if attempt > 120 {
						fail(key + ": still 503 after 120 retries")
						return
					}
					time.Sleep(250 * time.Millisecond) // Retry-After is whole seconds; the outage is short
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	t.Cleanup(func() { stopLoad(); wg.Wait() })
	noFailures := func(when string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(failures) > 0 {
			t.Fatalf("%s: %d failed requests through the gateway, the first: %v", when, len(failures), failures)
		}
	}

	searchable := func() int64 {
		resp, err := http.Get("http://" + searchAddr + "/search?q=" + word + "&size=1")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct {
			Total int64 `json:"total"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
			return -1
		}
		return r.Total
	}
	// flowing waits until documents created after now are searchable.
	flowing := func(what string) {
		t.Helper()
		at := created.Load()
		began := time.Now()
		testenv.WaitForWithin(t, 90*time.Second, what, func() bool { return searchable() >= at+20 })
		t.Logf("%s: %v (loaded 2-core machine)", what, time.Since(began).Round(100*time.Millisecond))
	}
	flowing("documents searchable before any failure")

	// 1. The NATS node leading the CDC stream dies.
	nc, err := natsgo.Connect(nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, "CDC")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || info.Config.Replicas != 3 {
		t.Fatalf("CDC stream: %+v %v; want 3 replicas and a leader", info, err)
	}
	dead := nats.Node(info.Cluster.Leader)
	dead.Kill()
	flowing("after the stream leader's node was killed, new documents searchable within")
	noFailures("the NATS node's death")
	// The operator brings the node back; it catches up from its peers.
	if err := dead.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// 2. The active CDC engine dies (SIGKILL); the standby takes over.
	active := 0
	if role(cdcAddr[1]) == "active" {
		active = 1
	}
	_ = cdcs[active].cmd.Process.Kill()
	<-cdcs[active].exited
	testenv.WaitForWithin(t, 60*time.Second, "the standby CDC engine to become active", func() bool { return role(cdcAddr[1-active]) == "active" })
	flowing("after the active CDC engine was killed, new documents searchable within")
	noFailures("the CDC engine's death")

	// 3. A rolling restart of document instance 1 (SIGTERM, drain, start).
	docs[0].stop(t, "document-1")
	docs[0] = startDoc(0)
	flowing("after document instance 1 restarted, new documents searchable within")
	noFailures("the rolling restart of a document instance")

	// 4. PgBouncer is lost for 2.5 s.
	bouncer.Kill(syscall.SIGKILL)
	time.Sleep(2500 * time.Millisecond)
	if err := bouncer.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	flowing("after PgBouncer came back, new documents searchable within")
	noFailures("the PgBouncer outage")
	stopLoad()
	wg.Wait()
	noFailures("the end of the load")
	t.Logf("load: %d documents created, %d answers 503 with Retry-After (retried with the same key)", created.Load(), busy.Load())
	if busy.Load() == 0 {
		t.Logf("no request met the PgBouncer outage with a 503 (the retries above had nothing to do)")
	}

	// Every key created exactly one document.
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT title) FROM documents.documents WHERE title LIKE $1`, word+" %").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	nkeys := int64(len(keys))
	mu.Unlock()
	if rows != distinct || rows != nkeys {
		t.Fatalf("%d rows (%d distinct titles) for %d keys answered 201: a retried create made a second document or one is missing", rows, distinct, nkeys)
	}
	// Every one searchable (the indexer caught up without a restart) ...
	testenv.WaitForWithin(t, 90*time.Second, "every document searchable", func() bool { return searchable() == rows })
	// ... and each create on the stream once (the bus's dedupe window
	// dropped the CDC engines' repeats).
	// Read the stream once every replica caught up: a direct get may be
	// answered by any replica, and the node started again may still be
	// behind its peers.
	var sinfo *jetstream.StreamInfo
	testenv.WaitForWithin(t, 60*time.Second, "every replica of the CDC stream current", func() bool {
		sinfo, err = stream.Info(ctx)
		if err != nil || sinfo.Cluster == nil || len(sinfo.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range sinfo.Cluster.Replicas {
			if !r.Current || r.Offline || r.Lag != 0 {
				return false
			}
		}
		return true
	})
	seen := map[string]int{}
	for seq := sinfo.State.FirstSeq; seq <= sinfo.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if m.Subject != "cdc.documents" {
			continue
		}
		var ev struct {
			Op    string `json:"op"`
			After *struct {
				Title string `json:"title"`
			} `json:"after"`
		}
		if json.Unmarshal(m.Data, &ev) == nil && ev.Op == "c" && ev.After != nil && strings.HasPrefix(ev.After.Title, word+" ") {
			seen[ev.After.Title]++
		}
	}
	dups := 0
	for title, n := range seen {
		if n > 1 {
			dups++
			t.Errorf("%q created %d times on the stream", title, n)
		}
	}
	if int64(len(seen)) != rows || dups > 0 {
		t.Fatalf("the stream holds %d of the %d creates (%d more than once)", len(seen), rows, dups)
	}
}
