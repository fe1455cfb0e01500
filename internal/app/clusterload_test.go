package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// natsClusterConfig starts a 3-node nats-server cluster and returns it with
// a test config whose bus it is: 3 replicas, a 1 s publish timeout and a
// 3 s stall timeout (the failover tests' shape).
func natsClusterConfig(t *testing.T) (*localstack.NATSCluster, *Config) {
	t.Helper()
	nats, err := localstack.StartNATSCluster(context.Background(), testenv.TempDir(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Stop)
	c := testConfig(t)
	c.Shared.BusURL, c.Shared.BusReplicas = nats.URL(), 3
	c.Shared.BusPublishTimeout, c.Shared.BusStallTimeout = time.Second, 3*time.Second
	return nats, c
}

// searchHits is how many documents the search target finds for word; -1
// when it does not answer.
func searchHits(sys *System, word string) int64 {
	resp, err := http.Get(sys.URL("search") + "/search?q=" + word + "&size=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var r api.SearchResponse
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return -1
	}
	return r.Total
}

// createLoad creates a document titled "<word> <n>" every 25 ms through
// the document target until Stop, counting the creates that succeeded and
// those that failed.
type createLoad struct {
	created, failed atomic.Int64
	stop            chan struct{}
	once            sync.Once
	wg              sync.WaitGroup
}

func startCreateLoad(t *testing.T, sys *System, word string) *createLoad {
	l := &createLoad{stop: make(chan struct{})}
	l.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			body := fmt.Sprintf(`{"title":"%s %d","content":"text","created_by":"load@example.com"}`, word, i)
			resp, err := http.Post(sys.URL("document")+"/documents", "application/json", bytes.NewBufferString(body))
			if err != nil || resp.StatusCode != http.StatusCreated {
				l.failed.Add(1)
				if resp != nil {
					resp.Body.Close()
				}
				continue
			}
			resp.Body.Close()
			l.created.Add(1)
		}
	})
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for its last create.
func (l *createLoad) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// documentChanges is how many cdc.documents changes stream s holds,
// failing the test when one (same lsn and key) is stored twice.
func documentChanges(t *testing.T, s jetstream.Stream) int64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if m.Subject != "cdc.documents" {
			continue
		}
		id := m.Header.Get("lsn") + "|" + m.Header.Get("key")
		if seen[id] {
			t.Fatalf("change %s stored twice on the bus", id)
		}
		seen[id] = true
	}
	return int64(len(seen))
}
