package webhooks_test

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

	buskafka "github.com/docstream/docstream/internal/bus/kafka"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/testenv"
)

// TestTheTargetIsUnreadyWhileItsFanOutStalls makes the Kafka broker fail
// every fetch of a running webhooks target while changes are committed:
// franz-go retries without an error, so only the bus's watchdog can tell.
// /health/ready answers 503 with the stalled "webhooks" consumer in its
// consumers check (it answered 200: the target did not ask the bus), and
// 200 again once fetches work and the fan-out progresses.
func TestTheTargetIsUnreadyWhileItsFanOutStalls(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kb, err := buskafka.Connect(context.Background(), c.ListenAddrs(), buskafka.Options{Partitions: 2, StallAfter: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kb.Close() })
	p := cdctest.New(t)
	p.StartEngine(t, p.Config(), kb)
	e := &env{Pipeline: p, cfg: testConfig(t, nil), bus: kb}
	tg := e.start(t, nil)

	ready := func() (int, string) {
		resp, err := http.Get(tg.api + "/health/ready")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	wait := func(what string, want int) string {
		t.Helper()
		var body string
		testenv.WaitFor(t, fmt.Sprintf("readiness %d (%s)", want, what), func() bool {
			code, b := ready()
			body = b
			return code == want
		})
		return body
	}
	wait("subscribed", http.StatusOK)
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: -1})
	for i := range 10 {
		e.insert(t, fmt.Sprintf("doc %d", i))
	}
	body := wait("fetches failing", http.StatusServiceUnavailable)
	if !strings.Contains(body, `"consumers"`) || !strings.Contains(body, "consumer webhooks of") || !strings.Contains(body, "stalled") {
		t.Fatalf("readiness body %s does not name the stalled webhooks consumer", body)
	}
	fault.Remove()
	wait("fetches working", http.StatusOK)
}
