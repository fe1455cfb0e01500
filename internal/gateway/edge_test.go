package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// serveWith runs h under httpx.Serve with cfg on a loopback port.
func serveWith(t *testing.T, cfg httpx.ServerConfig, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = httpx.Serve(ctx, ln, h, logging.Discard(), cfg); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// Issue 11 §6 through the gateway, both listeners under the same rules
// (scaled down): a slow but steady 8 MiB upload reaches the service whole;
// a client trickling bytes is answered 400 and dropped, and that is not
// held against the service (it stays in the pool).
func TestGatewayBodyRulesDropATrickleAndPassASlowUpload(t *testing.T) {
	cfg := httpx.ServerConfig{ReadHeaderTimeout: 5 * time.Second, BodyIdleTimeout: time.Second,
		BodyGrace: 300 * time.Millisecond, MinBodyRate: 256 << 10, IdleTimeout: 30 * time.Second}
	upstream := serveWith(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			httpx.Respond(w, http.StatusOK, nil)
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil { // cut short by the client (or the gateway for it): a client error, as in the services
			httpx.RespondErr(w, r, logging.Discard(), apperr.Wrap(apperr.Invalid, err, "reading the body: %v", err))
			return
		}
		httpx.Respond(w, http.StatusOK, map[string]int64{"bytes": n})
	}))
	gcfg := quietChecks(DefaultFor(map[string][]string{"document": {upstream}, "signature": {upstream}, "search": {upstream}, "realtime": {upstream}}))
	gcfg.MaxBodyBytes = 0
	g, err := New(gcfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	gw := serveWith(t, cfg, g.Handler())

	upload := func() (int, int64) { return testenv.SlowUpload(t, gw+"/documents", 8<<20) }
	if status, n := upload(); status != 200 || n != 8<<20 {
		t.Fatalf("slow steady upload through the gateway: %d, %d bytes arrived", status, n)
	}

	// Three trickles in a row: more than passive ejection's threshold if
	// they counted against the upstream.
	for i := range 3 {
		c, err := net.Dial("tcp", gw[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /documents HTTP/1.1\r\nHost: test\r\nContent-Length: 10000\r\n\r\n")
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("trickle %d: no answer: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_, eofErr := br.ReadByte()
		close(stop)
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || eofErr == nil {
			t.Fatalf("trickle %d: %d (connection still open: %v), want 400 and dropped", i, resp.StatusCode, eofErr == nil)
		}
	}
	if status, n := upload(); status != 200 || n != 8<<20 {
		t.Fatalf("after the trickles the upstream was held responsible: %d, %d bytes", status, n)
	}
}
