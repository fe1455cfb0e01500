package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/config"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// parse is the configuration serve would run with for args and env.
func parse(t *testing.T, env map[string]string, args ...string) *Config {
	t.Helper()
	c := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := config.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Shared.AuditSigningKey == "" {
		// serve in required mode needs one; the tests of its refusal
		// clear it.
		c.Shared.AuditSigningKey = testAuditKey
	}
	if c.Webhooks.SecretKey == "" {
		// serve needs one to run the webhooks target; the test of its
		// refusal clears it.
		c.Webhooks.SecretKey = strings.Repeat("ab", 32)
	}
	return &c
}

// testAuditKey is the audit signing key of every configuration parse
// makes.
var testAuditKey = "ed25519:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))

// parseOpen is parse for tests about wiring, not identity: in open mode,
// since serve's default (required) refuses to start with nothing to verify
// callers with.
func parseOpen(t *testing.T, env map[string]string, args ...string) *Config {
	t.Helper()
	return parse(t, env, append([]string{"--auth-mode=open"}, args...)...)
}

func TestDependenciesStartFirst(t *testing.T) {
	order := startOrder()
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name] = i
	}
	if len(order) != len(Modules()) {
		t.Fatalf("start order has %d modules, the table %d", len(order), len(Modules()))
	}
	for _, m := range order {
		for _, d := range m.Deps {
			p, ok := pos[d]
			if !ok {
				t.Errorf("%s depends on %q, which is not in the module table", m.Name, d)
				continue
			}
			if p >= pos[m.Name] {
				t.Errorf("%s starts before its dependency %s", m.Name, d)
			}
		}
	}
	// Choosing a subset keeps the order and starts no dependency implicitly.
	chosen, err := Choose("gateway,signature")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(chosen); !slices.Equal(got, []string{"signature", "gateway"}) {
		t.Errorf("Choose(gateway,signature) = %v, want [signature gateway]", got)
	}
}

func names(ms []*Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestEveryRowIsComplete(t *testing.T) {
	c := DefaultConfig()
	ports := map[string]string{}
	for _, m := range Modules() {
		if m.Flags == nil || m.Validate == nil || m.Ports == nil || m.Start == nil {
			t.Errorf("%s: row lacks Flags, Validate, Ports or Start", m.Name)
			continue
		}
		http := 0
		for _, p := range m.Ports(&c) {
			if other, dup := ports[p.Name]; dup {
				t.Errorf("port name %q of %s is also %s's", p.Name, m.Name, other)
			}
			ports[p.Name] = m.Name
			if p.HTTP {
				http++
			}
		}
		// Every module answers /health/* and /metrics somewhere.
		if http == 0 {
			t.Errorf("%s has no HTTP port for its health checks and metrics", m.Name)
		}
	}
}

func TestAModuleGetsOnlyTheResourcesItsRowDeclares(t *testing.T) {
	shared := defaultShared()
	shared.DataDir = t.TempDir()
	sys := newSystem(context.Background(), &shared, logging.Discard())
	defer sys.close()
	m := &Module{Name: "frugal", Needs: []Resource{BucketOf("documents")}}
	r := &Resources{sys: sys, module: m, ports: []Port{{Name: "frugal", Addr: "127.0.0.1:0", HTTP: true}}, log: logging.Discard()}
	ctx := context.Background()

	if _, err := r.Bucket(ctx, "documents"); err != nil {
		t.Fatalf("declared bucket: %v", err)
	}
	undeclared := map[string]func() error{
		"postgres pool":       func() error { _, err := r.Pool(ctx); return err },
		"direct database url": func() error { _, err := r.DirectDatabaseURL(); return err },
		"redis":               func() error { _, err := r.Redis(); return err },
		"bus":                 func() error { _, err := r.Bus(ctx); return err },
		"search index":        func() error { _, err := r.Index(ctx); return err },
		"bucket signatures":   func() error { _, err := r.Bucket(ctx, "signatures"); return err },
		`port "other"`:        func() error { _, err := r.Listener("other"); return err },
	}
	for what, ask := range undeclared {
		err := ask()
		if err == nil || !strings.Contains(err.Error(), "frugal") || !strings.Contains(err.Error(), what) {
			t.Errorf("asking for undeclared %s: err = %v, want one naming the module and %s", what, err, what)
		}
	}
}

// TestEachModuleAsksOnlyForWhatItDeclares starts every module over a real
// system; a row that forgot a resource its start function asks for fails
// with the undeclared-resource error.
func TestEachModuleAsksOnlyForWhatItDeclares(t *testing.T) {
	for _, m := range Modules() {
		t.Run(m.Name, func(t *testing.T) {
			c := testConfig(t)
			c.Targets = m.Name
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- Run(ctx, c, logging.Discard(), func(*System) { close(ready) }) }()
			select {
			case <-ready:
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("stop: %v", err)
				}
			case err := <-done:
				cancel()
				t.Fatalf("start: %v", err)
			}
		})
	}
}

// The signature target counts signing mails per principal in Redis so
// that every instance charges one count: without --redis-url it refuses to
// start, naming the flag and why. The check is made
// when the target starts, not in prepare: serve's default targets include
// signature and --redis-url has no default, so a check in prepare would
// refuse every configuration without Redis, the prepare tests' included.
func TestTheSignatureTargetRefusesToStartWithoutRedis(t *testing.T) {
	c := testConfig(t)
	c.Targets, c.Shared.RedisURL = "signature", ""
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, c, logging.Discard(), func(*System) { t.Error("the signature target started without Redis") })
	if err == nil || !strings.Contains(err.Error(), "--redis-url") || !strings.Contains(err.Error(), "signing mails per principal") ||
		!strings.Contains(err.Error(), "shared by its instances") {
		t.Fatalf("Run: %v, want a refusal naming --redis-url and the mail limit shared by the instances", err)
	}
}

// testConfig is every module on free loopback ports over the test
// database and Redis, with data in a temp dir.
var slotSeq atomic.Int64

func testConfig(t *testing.T) *Config {
	t.Helper()
	free := func() string {
		p, err := localstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	// Replication slots are cluster-wide: one per run (a test run again,
	// -count=N, must not find its last run's slot), dropped at the end.
	db := testenv.Database(t)
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	slot := fmt.Sprintf("app_test_%.40s_%d", name, slotSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		// The engine has stopped (its cleanup ran first) but its session
		// may end a moment later.
		for range 50 {
			if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	c := parse(t, nil,
		"--data-dir", testenv.TempDir(t),
		"--database-url", db,
		"--redis-url", testenv.Redis().URL(),
		"--bus-listen", "",
		"--document-addr", free(), "--document-grpc-addr", free(), "--signature-addr", free(),
		"--cdc-addr", free(), "--cdc-slot", slot,
		"--indexer-addr", free(), "--search-addr", free(), "--realtime-addr", free(), "--extractor-addr", free(), "--webhooks-addr", free(),
		"--realtime-jwt-secret", strings.Repeat("s", 32),
		// The reference's behaviour: these tests are about the wiring.
		"--auth-mode", "open",
		"--gateway-addr", free(), "--gateway-admin-addr", free(),
		"--shutdown-drain", "0", // nothing balances over these test processes
	)
	return c
}

func TestZeroIsRefusedWhereItMeansNothing(t *testing.T) {
	for _, flag := range []string{
		"db-max-conns", "bus-max-age",
		"cdc-max-batch", "cdc-slot-wal-warn", "cdc-status-interval", "cdc-watermark-interval", "cdc-heartbeat-interval", "cdc-standby-poll",
		"indexer-content-cap", "indexer-batch-size", "indexer-batch-wait",
		"realtime-queue-size", "realtime-write-timeout", "realtime-ping-interval", "realtime-pong-timeout", "auth-token-ttl",
		"document-max-upload", "document-cache-ttl",
		"signature-grpc-timeout", "signature-grpc-backoff", "signature-reconcile-interval", "signature-reconcile-max-backoff",
		"search-max-wait", "search-extraction-wait", "gateway-rate-window", "extractor-lease",
		"extractor-workers", "extractor-timeout", "extractor-cpu", "extractor-memory", "extractor-text-cap", "extractor-max-pages",
		"extractor-max-pixels", "extractor-max-zip-bytes", "extractor-max-zip-ratio", "extractor-max-zip-entries", "extractor-thumb-size",
	} {
		t.Run(flag, func(t *testing.T) {
			zero := "0"
			if (strings.Contains(flag, "interval") || strings.Contains(flag, "timeout") || strings.Contains(flag, "wait") ||
				strings.Contains(flag, "backoff") || strings.Contains(flag, "ttl") || strings.HasSuffix(flag, "-age") ||
				strings.Contains(flag, "poll") || strings.Contains(flag, "window")) || flag == "extractor-cpu" {
				zero = "0s"
			}
			c := parseOpen(t, nil, "--"+flag, zero)
			_, err := prepare(c)
			if err == nil || !strings.Contains(err.Error(), "--"+flag) {
				t.Fatalf("--%s %s: err = %v, want an error naming the flag", flag, zero, err)
			}
		})
	}
}

func TestMeaningfulZerosAreKept(t *testing.T) {
	c := parseOpen(t, nil, "--gateway-rate-limit", "0", "--gateway-max-body", "0", "--signature-grpc-retries", "0")
	if _, err := prepare(c); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Gateway.Resolve(gateway.Builtin(BuiltinRoutes(), localUpstreams(c)), c.given)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimit.Requests != 0 || cfg.MaxBodyBytes != 0 {
		t.Fatalf("rate limit %d, max body %d: want 0 (off, no limit)", cfg.RateLimit.Requests, cfg.MaxBodyBytes)
	}
}

func TestGatewayRoutesComeFromTheTable(t *testing.T) {
	c := parse(t, nil, "--document-addr", ":18005", "--signature-addr", "0.0.0.0:18002", "--search-addr", "127.0.0.2:18003")
	cfg := gateway.Builtin(BuiltinRoutes(), localUpstreams(c))
	want := map[string]string{"document": "http://127.0.0.1:18005", "signature": "http://127.0.0.1:18002",
		"search": "http://127.0.0.2:18003", "realtime": "http://127.0.0.1:8004", "extractor": "http://127.0.0.1:8007",
		"webhooks": "http://127.0.0.1:8009"}
	if len(cfg.Services) != len(want) {
		t.Fatalf("services %v, want %v", cfg.Services, want)
	}
	for _, s := range cfg.Services {
		if len(s.Upstreams) != 1 || s.Upstreams[0] != want[s.Name] {
			t.Errorf("service %s upstreams %v, want %s", s.Name, s.Upstreams, want[s.Name])
		}
	}
	// The reference routes, each to the module that serves it.
	routes := map[string]string{}
	for _, r := range cfg.Routes {
		for _, p := range r.Paths {
			routes[p] = r.Service
		}
	}
	for path, svc := range map[string]string{"/documents": "document", "/documents/{id}/signatures": "signature",
		"/signatures": "signature", "/documents/{id}/thumbnail": "extractor", "/extractions": "extractor", "/search": "search", "/suggest": "search", "/aggregations": "search", "/ws": "realtime", "/auth": "realtime",
		"/signing-requests": "signature", "/documents/{id}/signing-requests": "signature", "/invitations": "signature"} {
		if routes[path] != svc {
			t.Errorf("%s routed to %q, want %s", path, routes[path], svc)
		}
	}
	if problems := CheckGatewayRoutes(cfg); len(problems) != 0 {
		t.Errorf("built-in routes disagree with the table: %v", problems)
	}
}

func TestAUsersGatewayYAMLIsCheckedAgainstTheTable(t *testing.T) {
	cfg, err := gateway.Parse([]byte(`
services:
  - name: document
    upstreams: ["http://10.0.0.1:8005"]
  - name: search
    upstreams: ["http://10.0.0.2:8003"]
routes:
  - name: documents
    service: document
    paths: ["/documents", "/documents/{id}/signatures"]
  - name: search
    service: search
    paths: ["/search", "/thumbnails"]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(CheckGatewayRoutes(cfg), "\n")
	for _, want := range []string{
		`/documents/{id}/signatures is routed to service "document", but module signature serves it`,
		"/signatures (served by signature) is not routed",
		"/suggest (served by search) is not routed",
		"/thumbnails (routed to search) is served by no module",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

// TestSignatureFollowsTheDocumentGRPCAddr: in one process the signature
// service dials the document service's gRPC port wherever it is moved,
// unless --signature-document-grpc says otherwise.
func TestSignatureFollowsTheDocumentGRPCAddr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		targets string
		want    string
	}{
		{"moved in one process", nil, []string{"--document-grpc-addr", ":57051"}, "all", "127.0.0.1:57051"},
		{"moved to a host in one process", nil, []string{"--document-grpc-addr", "10.1.2.3:57051"}, "document,signature", "10.1.2.3:57051"},
		{"given explicitly", nil, []string{"--document-grpc-addr", ":57051", "--signature-document-grpc", "10.0.0.9:50051"}, "all", "10.0.0.9:50051"},
		{"given by environment", map[string]string{"SIGNATURE_DOCUMENT_GRPC": "10.0.0.9:50051"}, []string{"--document-grpc-addr", ":57051"}, "all", "10.0.0.9:50051"},
		{"document in another process", nil, []string{"--document-grpc-addr", ":57051"}, "signature", "127.0.0.1:50051"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseOpen(t, tc.env, append(tc.args, "--targets", tc.targets)...)
			if _, err := prepare(c); err != nil {
				t.Fatal(err)
			}
			if c.Signature.DocumentGRPC != tc.want {
				t.Fatalf("signature dials %s, want %s", c.Signature.DocumentGRPC, tc.want)
			}
		})
	}
}

// TestSigningInOneProcessReachesAMovedDocumentService runs document and
// signature in one process with the document gRPC port moved and no
// --signature-document-grpc: the signed document reads "signed".
func TestSigningInOneProcessReachesAMovedDocumentService(t *testing.T) {
	c := testConfig(t)
	c.Targets = "document,signature"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(*System) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("start: %v", err)
	}
	var doc struct {
		ID string `json:"id"`
	}
	testenv.Do(t, http.MethodPost, "http://"+c.Document.Addr+"/documents",
		map[string]string{"title": "Lease", "content": "x", "created_by": "a@example.com"}, &doc)
	var sig struct {
		Update string `json:"document_status_update"`
	}
	resp := testenv.Do(t, http.MethodPost, "http://"+c.Signature.Addr+"/signatures",
		map[string]string{"document_id": doc.ID, "signer_email": "b@example.com", "signer_name": "B"}, &sig)
	if resp.StatusCode != http.StatusCreated || sig.Update != "applied" {
		t.Fatalf("POST /signatures: %d, document_status_update %q; want 201 and applied", resp.StatusCode, sig.Update)
	}
	var got struct {
		Status string `json:"status"`
	}
	testenv.Do(t, http.MethodGet, "http://"+c.Document.Addr+"/documents/"+doc.ID, nil, &got)
	if got.Status != "signed" {
		t.Fatalf("document status %q, want signed", got.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDevStateHasTheRealGatewayURL: dev.json names the gateway where
// --gateway-addr put it, not the reference's port.
func TestDevStateHasTheRealGatewayURL(t *testing.T) {
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.TempDir(t)
	// Only the gateway runs, so the URLs are never dialled.
	c := parse(t, nil, "--targets", "gateway", "--data-dir", dir, "--migrate=false",
		"--database-url", "postgres://unused", "--redis-url", "redis://unused",
		"--gateway-addr", fmt.Sprintf(":%d", port), "--gateway-admin-addr", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- Dev(ctx, c, DefaultDevConfig(), logging.Discard(), &out) }()
	var st DevState
	testenv.WaitFor(t, "dev.json", func() bool {
		st, err = ReadDevState(dir)
		return err == nil
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("http://localhost:%d", port); st.GatewayURL != want {
		t.Fatalf("gateway_url %q, want %q", st.GatewayURL, want)
	}
}

// TestTheDocumentInvalidatorUsesOnlyASharedBus: the document service's
// cache invalidator consumes cdc.documents, so it runs only where that
// stream can reach it: a cdc target in the same process or --bus-url.
func TestTheDocumentInvalidatorUsesOnlyASharedBus(t *testing.T) {
	for _, tc := range []struct {
		targets string
		args    []string
		on      bool
	}{
		{"all", nil, true},
		{"document,cdc", nil, true},
		{"document", []string{"--bus-url", "nats://10.0.0.9:4222"}, true},
		{"document", nil, false},
		{"document,signature,indexer", nil, false},
		{"document", []string{"--document-cache-invalidator=false"}, true}, // not wanted: nothing to report
	} {
		t.Run(tc.targets+strings.Join(tc.args, ""), func(t *testing.T) {
			c := parseOpen(t, nil, append(tc.args, "--targets", tc.targets)...)
			if _, err := prepare(c); err != nil {
				t.Fatal(err)
			}
			if on := c.Document.InvalidatorOff == ""; on != tc.on {
				t.Fatalf("invalidator off reason %q, want on=%v", c.Document.InvalidatorOff, tc.on)
			}
		})
	}
}

// TestADocumentServiceAloneOpensNoBus runs `serve --targets=document` with a
// Redis and no --bus-url: no embedded NATS listens on --bus-listen, one
// warning says invalidation is off and why, and readiness shows it as
// "off" without calling the service degraded.
func TestADocumentServiceAloneOpensNoBus(t *testing.T) {
	c := testConfig(t)
	c.Targets = "document"
	busPort, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c.Shared.BusListen = fmt.Sprintf("127.0.0.1:%d", busPort)
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *System, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.New(&logs, "info"), func(s *System) { ready <- s }) }()
	var sys *System
	select {
	case sys = <-ready:
	case err := <-done:
		t.Fatalf("start: %v", err)
	}
	var health api.Health
	testenv.Do(t, http.MethodGet, "http://"+c.Document.Addr+"/health/ready", nil, &health)
	inv := health.Checks["cache-invalidator"]
	if health.Status != "ok" || inv.Status != "off" || !strings.Contains(inv.Error, "--bus-url") {
		t.Errorf("readiness %+v; want ok with cache-invalidator off naming --bus-url", health)
	}
	if u := sys.BusURL(); u != "" {
		t.Errorf("a bus was opened: %s", u)
	}
	if conn, err := net.Dial("tcp", c.Shared.BusListen); err == nil {
		conn.Close()
		t.Errorf("something listens on --bus-listen %s", c.Shared.BusListen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "change-stream cache invalidation is off") || !strings.Contains(warnings[0], "no cdc target") {
		t.Fatalf("warnings: %q; want one saying invalidation is off and why", warnings)
	}
}

// The sweeper's default grace is above the longest create the default body
// rules allow, so a slow legal upload never loses its content to a sweep.
func TestDefaultSweepGraceOutlastsTheLongestLegalUpload(t *testing.T) {
	longest, ok := longestCreate(document.DefaultConfig().MaxUpload, httpx.DefaultServerConfig())
	if !ok {
		t.Fatal("the default body rules set no minimum rate: an upload has no bound")
	}
	if grace := blob.DefaultSweepConfig().Grace; grace <= longest {
		t.Fatalf("default sweep grace %v is not above the longest legal upload %v", grace, longest)
	}
	if _, ok := longestCreate(1<<20, httpx.ServerConfig{}); ok {
		t.Fatal("no minimum body rate must mean no bound")
	}
}

func TestANegativeShutdownDrainIsRefused(t *testing.T) {
	c := parse(t, nil, "--shutdown-drain", "-1s")
	if _, err := prepare(c); err == nil || !strings.Contains(err.Error(), "--shutdown-drain") {
		t.Fatalf("err = %v, want one naming --shutdown-drain", err)
	}
	if c := parse(t, nil); c.Shared.HTTP.ShutdownDrain <= 0 {
		t.Fatalf("default drain %v: a rolling restart would refuse connections before balancers move away", c.Shared.HTTP.ShutdownDrain)
	}
}
