package realtime

import (
	"context"
	"net/http"
	"testing"
	"time"

	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// TestRealtimeIsUnreadyWithoutItsStream stops the NATS server under a
// running realtime instance: with no stream its clients get nothing, so
// /health/ready answers 503 (it said 200 "degraded"), and 200 again once
// the server is back and the subscription progresses.
func TestRealtimeIsUnreadyWithoutItsStream(t *testing.T) {
	srv, err := localstack.StartNATSServer(context.Background(), testenv.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b, err := busnats.Connect(context.Background(), srv.URL(), busnats.Options{StallAfter: time.Second, RequestTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s := startServer(t, serverOpts{hub: Options{Bus: b}})
	code := func() int {
		resp, err := http.Get(s.url + "/health/ready")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	wait := func(what string, want int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if code() == want {
				return
			}
		}
		t.Fatalf("timed out waiting for readiness %d (%s); last %d", want, what, code())
	}
	wait("subscribed", http.StatusOK)
	srv.Stop()
	wait("no stream", http.StatusServiceUnavailable)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait("stream back", http.StatusOK)
}
