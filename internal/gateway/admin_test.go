package gateway

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docstream/docstream/client"
)

// TestTheAdminAPIThroughThePublicClient reads a running gateway's admin
// API with the public client's methods: what the gateway encodes is what
// the client decodes, with the gateway's real configuration in it.
func TestTheAdminAPIThroughThePublicClient(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := twoDocumentUpstreams(a, b)
	cfg.RateLimit = RateLimit{Requests: 50, Window: 30 * time.Second}
	g, _ := startGateway(t, cfg)
	admin := httptest.NewServer(g.AdminHandler())
	t.Cleanup(admin.Close)
	c, err := client.New(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	st, err := c.GatewayStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "ok" || st.Services["document"].Upstreams != 2 || st.RateLimit.Requests != 50 || st.RateLimit.WindowSeconds != 30 || st.StartedAt.IsZero() {
		t.Errorf("status: %+v", st)
	}

	routes, err := c.GatewayRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var documents bool
	for _, r := range routes {
		documents = documents || (r.Pattern == "/documents" && r.Service == "document")
	}
	if !documents {
		t.Errorf("routes have no /documents → document: %+v", routes)
	}

	services, err := c.GatewayUpstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if s.Name == "document" {
			if len(s.Upstreams) != 2 || s.Upstreams[0].URL != a.srv.URL || s.Upstreams[1].URL != b.srv.URL || s.Balance == "" || s.HealthCheck == "" {
				t.Errorf("document upstreams: %+v", s)
			}
			return
		}
	}
	t.Fatalf("no document service in %+v", services)
}
