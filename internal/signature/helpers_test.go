package signature

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/proto/documentpb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// auditKey signs every audit head written in this package's tests (an
// unsigned trail does not verify).
var auditKey = audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize)))

func init() { audit.SetSigner(auditKey) }

// auditKeys is what the tests verify trails with: the published key.
func auditKeys() map[string]ed25519.PublicKey {
	return map[string]ed25519.PublicKey{auditKey.KeyID: auditKey.Public()}
}

func testLog() *slog.Logger {
	if os.Getenv("TEST_LOG") != "" {
		return logging.New(os.Stderr, "debug")
	}
	return logging.Discard()
}

// env is the real document service (REST on an httptest server, gRPC on a
// loopback address it can stop and restart) and the signature bucket, over
// one fresh database.
type env struct {
	dbURL   string
	pool    *pgxpool.Pool
	blobDir string
	sigs    *blobstore.Bucket
	doc     *docService
}

func newEnv(t testing.TB) *env {
	return newEnvWith(t, testenv.Database(t))
}

func newEnvWith(t testing.TB, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dbURL, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	dir := filepath.ToSlash(t.TempDir())
	docBucket, err := blobstore.Open(ctx, "file://"+dir, document.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docBucket.Close() })
	sigs, err := blobstore.Open(ctx, "file://"+dir, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sigs.Close() })
	log := testLog()
	dsvc := document.NewService(document.NewStore(pool), docBucket, document.NewCache(nil, time.Minute, log), log)
	d := &docService{svc: dsvc, log: log, http: httptest.NewServer(document.NewServer(dsvc, docConfig(), log))}
	t.Cleanup(d.http.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	d.serve(ln)
	t.Cleanup(d.stopGRPC)
	return &env{dbURL: dbURL, pool: pool, blobDir: dir, sigs: sigs, doc: d}
}

// docService is the document service of internal/document, its gRPC server
// stoppable and restartable on the same address (the fault tests).
type docService struct {
	svc  *document.Service
	log  *slog.Logger
	http *httptest.Server
	addr string

	mu sync.Mutex
	gs *grpc.Server
	// opts are the gRPC server's options (the access tests' principal
	// interceptor); authn verifies its callers' credentials (nil: none).
	opts  []grpc.ServerOption
	authn *auth.Authenticator
}

func (d *docService) serve(ln net.Listener) {
	gs, _ := document.NewGRPCServer(d.svc, d.log, d.authn, d.opts...)
	d.mu.Lock()
	d.gs = gs
	d.mu.Unlock()
	go gs.Serve(ln) //nolint:errcheck // returns when stopped
}

// stopGRPC stops the gRPC server at once, closing its connections, as a
// crash would.
func (d *docService) stopGRPC() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gs != nil {
		d.gs.Stop()
		d.gs = nil
	}
}

// startGRPC serves gRPC again on the same address.
func (d *docService) startGRPC(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; wait for the kernel to free it
		if ln, err = net.Listen("tcp", d.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart document gRPC on %s: %v", d.addr, err)
	}
	d.serve(ln)
}

// createDocument creates a document through the document REST API.
func (e *env) createDocument(t testing.TB, title, content string) documentJSON {
	t.Helper()
	var d documentJSON
	resp := testenv.Do(t, "POST", e.doc.http.URL+"/documents",
		map[string]any{"title": title, "content": content, "created_by": "ebemad@company.com"}, &d)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create document: status %d", resp.StatusCode)
	}
	return d
}

// setStatus changes a document's status through the document REST API.
func (e *env) setStatus(t testing.TB, id, status string) {
	t.Helper()
	resp := testenv.Do(t, "PATCH", e.doc.http.URL+"/documents/"+id, map[string]any{"status": status}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set status %s: status %d", status, resp.StatusCode)
	}
}

// documentStatus reads a document through the document REST API.
func (e *env) documentStatus(t testing.TB, id string) string {
	t.Helper()
	var d documentJSON
	if resp := testenv.Do(t, "GET", e.doc.http.URL+"/documents/"+id, nil, &d); resp.StatusCode != http.StatusOK {
		t.Fatalf("get document: status %d", resp.StatusCode)
	}
	return string(d.Status)
}

// waitStatus waits up to within for the document to read want.
func (e *env) waitStatus(t testing.TB, id, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := e.documentStatus(t, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s: status %q after %s, want %q", id, got, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type documentJSON = api.Document

// sigService is one signature service instance: its HTTP API on an
// httptest server and its reconciler, with its own gRPC connection, as a
// process would have.
type sigService struct {
	url    string
	svc    *Service
	stopFn func()
}

type testOptions struct {
	trusted     string
	noRecon     bool
	docAddr     string // document gRPC address; default the env's
	callTimeout time.Duration
	reconciler  ReconcilerOptions
	// required runs the instance in required auth mode, its HTTP API
	// taking the test principal header and its gRPC calls forwarding the
	// principal (see access_test.go).
	required bool
}

func (e *env) startSignature(t testing.TB, o testOptions) *sigService {
	t.Helper()
	if o.trusted == "" {
		o.trusted = "127.0.0.1,::1"
	}
	trusted := mustPrefixes(t, o.trusted)
	if o.docAddr == "" {
		o.docAddr = e.doc.addr
	}
	if o.callTimeout == 0 {
		o.callTimeout = time.Second
	}
	var dopts []grpc.DialOption
	if o.required {
		dopts = append(dopts, grpc.WithChainUnaryInterceptor(forwardTestPrincipal))
	}
	conn, err := Dial(o.docAddr, dopts...)
	if err != nil {
		t.Fatal(err)
	}
	log := testLog()
	svc := NewService(NewStore(e.pool), documentpb.NewDocumentServiceClient(conn), e.sigs,
		Options{CallTimeout: o.callTimeout, Retries: 2, RetryBackoff: 20 * time.Millisecond}, log)
	cfg := DefaultConfig()
	cfg.TrustedProxies = trusted
	var handler http.Handler = NewServer(svc, cfg, log)
	if o.required {
		svc.SetMode(auth.ModeRequired)
		handler = withTestPrincipal(handler)
	}
	srv := httptest.NewServer(handler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if o.noRecon {
		close(done)
	} else {
		if o.reconciler.Interval == 0 {
			o.reconciler = ReconcilerOptions{Interval: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
		}
		rec := NewReconciler(svc, o.reconciler)
		go func() { defer close(done); _ = rec.Run(ctx) }()
	}
	var once sync.Once
	s := &sigService{url: srv.URL, svc: svc, stopFn: func() {
		once.Do(func() {
			srv.Close()
			cancel()
			<-done
			conn.Close()
		})
	}}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the instance down as a process exit would: nothing of it is
// left running.
func (s *sigService) stop() { s.stopFn() }

// sign posts a signature and decodes the response.
func (s *sigService) sign(t testing.TB, body any) (*http.Response, signatureJSON) {
	t.Helper()
	var out signatureJSON
	resp := testenv.Do(t, "POST", s.url+"/signatures", body, &out)
	return resp, out
}

type signatureJSON = api.Signature

func mustPrefixes(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := httpx.ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// docConfig is the document service's default configuration trusting no
// X-Forwarded-For.
func docConfig() document.Config {
	c := document.DefaultConfig()
	c.TrustedProxies = nil
	return c
}
