package extractor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/api"
	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/bus"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// countingRunner runs real extraction children and counts, by content,
// how often each was extracted and by which instance.
type countingRunner struct {
	name  string
	inner extract.Runner
	mu    *sync.Mutex
	runs  map[string][]string // content → the instances that extracted it
}

func (r *countingRunner) Run(ctx context.Context, job extract.Job) (extract.Result, error) {
	b, err := os.ReadFile(job.Input)
	if err != nil {
		return extract.Result{}, err
	}
	r.mu.Lock()
	r.runs[string(b)] = append(r.runs[string(b)], r.name)
	r.mu.Unlock()
	// Long enough that one instance's worker cannot take the whole queue
	// while the other's polls.
	time.Sleep(30 * time.Millisecond)
	return r.inner.Run(ctx, job)
}

// TestTwoExtractorsSharingTheQueueExtractEachDocumentOnce runs two
// extractor instances (their own bus connections, one consumer group, one
// queue table) over the real change stream: documents created through the
// document service reach them as CDC events on NATS. Every document is
// extracted once, by one of them, and both took part. Then every event is
// published to the stream again (copies without their message id, as a
// transaction republished after the dedup window would be): the members
// drop them as repeats by LSN (bus.Dedup), and nothing is extracted again.
func TestTwoExtractorsSharingTheQueueExtractEachDocumentOnce(t *testing.T) {
	ctx := context.Background()
	log := logging.Discard()
	p := cdctest.Start(t)
	bucket, err := blobstore.Open(ctx, "file://"+filepath.ToSlash(testenv.TempDir(t)), extractor.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis().Addr()})
	t.Cleanup(func() { rdb.Close() })
	docs := document.NewService(document.NewStore(p.Pool), bucket, document.NewCache(rdb, time.Minute, log), log)
	store := extractor.NewStore(p.Pool)

	var mu sync.Mutex
	runs := map[string][]string{}
	for _, name := range []string{"a", "b"} {
		b, err := busnats.Connect(ctx, p.Bus.URL(), busnats.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		cfg := extractor.DefaultConfig()
		cfg.Workers, cfg.Poll, cfg.TempDir = 1, 20*time.Millisecond, ""
		x := extractor.New(store, b, bucket, cfg, log)
		x.SetRunner(&countingRunner{name: name, mu: &mu, runs: runs})
		start(t, x)
	}
	repeats := func() float64 {
		return metric(t, "docstream_bus_repeats_dropped_total", map[string]string{"consumer": "extractor"})
	}
	before := repeats()

	const n = 20
	var ids []string
	for i := range n {
		html := fmt.Sprintf("<html><body><p>Potoroo %d</p></body></html>", i)
		d, err := docs.Create(ctx, document.CreateInput{Title: fmt.Sprint("doc ", i), ContentType: "text/html", CreatedBy: "test@company.com"},
			bytes.NewReader([]byte(html)), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	check := func(when string) {
		t.Helper()
		for _, id := range ids {
			var x *api.Extraction
			testenv.WaitFor(t, "the extraction of "+id, func() bool {
				x, _, err = store.Get(ctx, id)
				return err == nil && x.Status == api.ExtractionDone
			})
			if x.Attempts != 1 {
				t.Errorf("%s: %s: %+v, want done at attempt 1", when, id, x)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != n {
			t.Fatalf("%s: %d contents extracted, want %d", when, len(runs), n)
		}
		by := map[string]int{}
		for content, who := range runs {
			if len(who) != 1 {
				t.Errorf("%s: %q extracted %d times (by %v), want once", when, content, len(who), who)
			}
			by[who[0]]++
		}
		if by["a"] == 0 || by["b"] == 0 {
			t.Errorf("%s: extractions by instance %v: want both to take part", when, by)
		}
	}
	check("after the creates")

	// Every event of cdc.documents again, at new stream positions.
	nc, err := natsgo.Connect(p.Bus.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.StreamNameBySubject(ctx, bus.TopicDocuments)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.TopicDocuments}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	copied := 0
	for m := range batch.Messages() {
		h := natsgo.Header{}
		for k, v := range m.Headers() {
			if k != jetstream.MsgIDHeader {
				h[k] = v
			}
		}
		if _, err := js.PublishMsg(ctx, &natsgo.Msg{Subject: m.Subject(), Data: m.Data(), Header: h}); err != nil {
			t.Fatal(err)
		}
		copied++
	}
	if copied < n {
		t.Fatalf("%d events copied, want the %d creates at least", copied, n)
	}
	testenv.WaitFor(t, "repeats dropped by LSN", func() bool { return repeats()-before > 0 })
	time.Sleep(500 * time.Millisecond) // what was not dropped would be queued by now
	check("after the repeats")
}
