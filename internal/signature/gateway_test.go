package signature

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/testenv"
)

// hungServer accepts TCP connections and never answers: a document service
// that hangs (as under SIGSTOP) rather than one that is down.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// Never Accept: the kernel completes the handshakes into the backlog
	// and nothing reads what the client sends.
	return ln.Addr().String()
}

func TestSigningThroughTheGatewayWhileTheDocumentServiceHangs(t *testing.T) {
	e := newEnv(t)
	doc := e.createDocument(t, "Hung", "x")
	sig := e.startSignature(t, testOptions{docAddr: hungServer(t)})

	cfg := gateway.Builtin([]gateway.Route{
		{Name: "documents", Service: "document", Paths: []string{"/documents"}},
		{Name: "signatures", Service: "signature", Paths: []string{"/signatures", "/documents/{id}/signatures"}},
	}, map[string][]string{"document": {e.doc.http.URL}, "signature": {sig.url}})
	for i := range cfg.Services {
		s := &cfg.Services[i]
		// The gateway's own checker with its defaults (1 s timeout, out
		// after 2 failures in a row), probing often; no panic mode, so only
		// readiness keeps the upstream in.
		s.HealthCheck.Interval = 50 * time.Millisecond
		off := 0
		s.PanicThreshold = &off
	}
	g, err := gateway.New(cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go func() { _ = g.Run(ctx) }()
	gw := httptest.NewServer(g.Handler())
	defer gw.Close()

	// Watch the checker's view for longer than the gRPC client's connect
	// timeout (2 s), so probes land both while a connection attempt hangs
	// and while it backs off: the signature service must pass every one.
	deadline := time.Now().Add(3 * time.Second)
	checks := map[time.Time]bool{}
	for time.Now().Before(deadline) {
		st := signatureUpstream(t, g)
		if !st.Healthy {
			t.Fatalf("the signature service failed the gateway's check: %+v", st)
		}
		if st.LastCheck != nil {
			checks[*st.LastCheck] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(checks) < 2 {
		t.Fatalf("only %d health checks completed in 3 s", len(checks))
	}

	var out signatureJSON
	resp := testenv.Do(t, "POST", gw.URL+"/signatures", map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"}, &out)
	if resp.StatusCode != http.StatusCreated || out.DocumentStatusUpdate != "pending" {
		t.Fatalf("POST /signatures through the gateway: %d, update %q", resp.StatusCode, out.DocumentStatusUpdate)
	}
}

func signatureUpstream(t *testing.T, g *gateway.Gateway) api.Upstream {
	t.Helper()
	rec := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/upstreams", nil))
	var out api.GatewayUpstreams
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Services {
		if s.Name == "signature" {
			return s.Upstreams[0]
		}
	}
	t.Fatal("no signature service in the gateway's admin view")
	return api.Upstream{}
}
