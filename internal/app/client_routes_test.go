package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/realtime"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/internal/webhooks"
)

// serviceOnly are routes a client calls on the service's own port: the
// gateway does not route them (as the reference's Kong did not).
var serviceOnly = map[string]bool{
	"realtime GET /stats": true,
}

// TestTheGatewayRoutesEveryServiceRoute sends a request for every route a
// service registers (its Routes list, which the public client covers)
// through a gateway built from the module table's routes, and checks it
// reaches that service: a route added to a service must be added to its
// module's gateway routes too, or the client, which talks to the gateway,
// cannot reach it.
func TestTheGatewayRoutesEveryServiceRoute(t *testing.T) {
	var mu sync.Mutex
	var reached string
	upstreams := map[string][]string{}
	services := map[string][]string{
		"document":  append(document.Routes(), apikey.Routes()...),
		"extractor": extractor.Routes(),
		"signature": signature.Routes(),
		"search":    search.Routes(),
		"realtime":  realtime.Routes(),
		"webhooks":  webhooks.Routes(),
	}
	for name := range services {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			reached = name
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		upstreams[name] = []string{srv.URL}
	}
	g, err := gateway.New(gateway.Builtin(BuiltinRoutes(), upstreams), logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g.Handler())
	t.Cleanup(gw.Close)

	for name, routes := range services {
		for _, route := range routes {
			method, pattern, _ := strings.Cut(route, " ")
			// A sample path: each {wildcard} becomes a value.
			path := pattern
			for strings.Contains(path, "{") {
				i, j := strings.IndexByte(path, '{'), strings.IndexByte(path, '}')
				path = path[:i] + "0194c3a0-0000-7000-8000-000000000001" + path[j+1:]
			}
			mu.Lock()
			reached = ""
			mu.Unlock()
			req, _ := http.NewRequest(method, gw.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			got := reached
			mu.Unlock()
			switch {
			case serviceOnly[name+" "+route]:
				if got != "" {
					t.Errorf("%s %s is listed as served on its own port only, but the gateway routes it to %s", name, route, got)
				}
			case got != name:
				t.Errorf("%s %s: the gateway sent %s %s to %q (status %d), want %s", name, route, method, path, got, resp.StatusCode, name)
			}
		}
	}
}
