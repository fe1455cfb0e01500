package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
)

// TestEveryGatewayErrorIsTheOneErrorShape: what the gateway answers itself
// carries the apperr code whose status it has.
func TestEveryGatewayErrorIsTheOneErrorShape(t *testing.T) {
	ok := newBackend(t, "ok")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	upstreams := func(document string) *Config {
		return quietChecks(DefaultFor(map[string][]string{"document": {document},
			"signature": {ok.srv.URL}, "search": {ok.srv.URL}, "realtime": {ok.srv.URL}}))
	}
	dead := upstreams(deadURL(t))
	timeout := upstreams(slow.URL)
	timeout.Timeouts.ResponseHeader = 100 * time.Millisecond
	methods := upstreams(ok.srv.URL)
	methods.Routes[2].Methods = []string{"GET"} // search

	cases := []struct {
		name   string
		cfg    *Config
		method string
		path   string
		status int
		code   apperr.Code
		allow  string
	}{
		{"an unreachable service is bad_gateway", dead, "GET", "/documents", 502, apperr.BadGateway, ""},
		{"a service that does not answer in time is gateway_timeout", timeout, "GET", "/documents", 504, apperr.GatewayTimeout, ""},
		{"an unknown path is not_found", dead, "GET", "/nope", 404, apperr.NotFound, ""},
		{"a method the route does not take is method_not_allowed", methods, "DELETE", "/search", 405, apperr.MethodNotAllowed, "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, gw := startGateway(t, c.cfg)
			var er apperr.Body
			resp := testenv.Do(t, c.method, gw.URL+c.path, nil, &er)
			if resp.StatusCode != c.status || er.Error.Code != c.code || er.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, er.Error, c.status, c.code)
			}
			if apperr.HTTPStatus(c.code) != c.status {
				t.Fatalf("apperr maps %s to %d", c.code, apperr.HTTPStatus(c.code))
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}
