package realtime

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/docstream/docstream/internal/bus"
	buskafka "github.com/docstream/docstream/internal/bus/kafka"
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

// TestRealtimeOnKafkaIsUnreadyWhileItsConsumerStalls makes the Kafka
// broker fail every fetch of a running realtime instance while events are
// published: franz-go retries without an error, so only the bus's watchdog
// can tell. /health/ready answers 503 naming the stalled consumer, and 200
// again once fetches work and the subscription progresses.
func TestRealtimeOnKafkaIsUnreadyWhileItsConsumerStalls(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b, err := buskafka.Connect(context.Background(), c.ListenAddrs(), buskafka.Options{Partitions: 2, StallAfter: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s := startServer(t, serverOpts{hub: Options{Bus: b}})
	ready := func() (int, string) {
		resp, err := http.Get(s.url + "/health/ready")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	wait := func(what string, want int) string {
		t.Helper()
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if code, body = ready(); code == want {
				return body
			}
		}
		t.Fatalf("timed out waiting for readiness %d (%s); last %d %s", want, what, code, body)
		return ""
	}
	wait("subscribed", http.StatusOK)
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: -1})
	for i := range 20 {
		if err := b.Publish(context.Background(), bus.Message{Topic: bus.TopicDocuments, Key: []byte(fmt.Sprintf(`{"id":"d%d"}`, i)), Value: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if body := wait("fetches failing", http.StatusServiceUnavailable); !strings.Contains(body, "consumer realtime of") || !strings.Contains(body, "stalled") {
		t.Fatalf("readiness body %s does not name the stalled consumer", body)
	}
	fault.Remove()
	wait("fetches working", http.StatusOK)
}
