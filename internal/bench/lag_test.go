package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
)

// TestACreateRunReportsTheBacklogAndWhenTheIndexerCaughtUp: a gateway
// whose /ops shows a backlog that grows with every create and drains
// once the creates stop. The report has the backlog at the end and at
// its largest, and how long after the run the indexer caught up.
func TestACreateRunReportsTheBacklogAndWhenTheIndexerCaughtUp(t *testing.T) {
	var creates, drained atomic.Int64
	f := newFakeSystem(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/ops" {
			if r.Method == http.MethodPost {
				creates.Add(1)
			}
			return false
		}
		// Once the run's 200 creates are in, each /ops read drains 100
		// creates' worth.
		backlog := creates.Load() - drained.Load()
		if backlog > 0 && creates.Load() >= 200 {
			drained.Add(min(backlog, 100))
			backlog = creates.Load() - drained.Load()
		}
		lag, pending, published := uint64(backlog*1000), float64(backlog), float64(drained.Load())
		slot := float64(backlog * 500)
		_ = json.NewEncoder(w).Encode(api.Ops{CDC: api.OpsCDC{SlotLagBytes: &slot, EventsPublished: &published},
			Indexer: api.OpsIndexer{LagBytes: &lag, Pending: &pending},
			Bus:     api.OpsBus{Consumers: map[string]api.OpsConsumer{api.IndexerConsumer: {Pending: pending}}}})
		return true
	})
	o := f.options("create")
	o.Requests, o.OpsURL = 200, f.srv.URL
	o.Duration = 0
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Lag
	if l == nil || l.Samples < 1 || l.Error != "" {
		t.Fatalf("lag %+v", l)
	}
	if l.IndexerPending.Max < l.IndexerPending.End || l.IndexerLagBytes.Max < l.IndexerLagBytes.End || l.CDCSlotLagBytes.Max < l.CDCSlotLagBytes.End {
		t.Fatalf("the largest below the end: %+v", l)
	}
	if l.CaughtUpSeconds == nil || drained.Load() != creates.Load() {
		t.Fatalf("caught up %v with %d of %d drained", l.CaughtUpSeconds, drained.Load(), creates.Load())
	}
	var out bytes.Buffer
	rep.Text(&out)
	if !strings.Contains(out.String(), "indexer caught up") {
		t.Fatalf("text report:\n%s", out.String())
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"caught_up_s"`) {
		t.Fatalf("json report: %s", b)
	}
}

// TestABacklogThatCannotBeReadIsSaidAndTheRunStillCounts: /ops refused
// (a user's token, or a service instead of a gateway) is one error in the
// report, read once, and the run's figures are unchanged.
func TestABacklogThatCannotBeReadIsSaidAndTheRunStillCounts(t *testing.T) {
	var reads atomic.Int64
	f := newFakeSystem(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/ops" {
			reads.Add(1)
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	})
	o := f.options("create")
	o.OpsURL, o.Requests, o.Duration = f.srv.URL, 0, 1500*time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK == 0 || rep.Lag == nil || rep.Lag.Samples != 0 || !strings.Contains(rep.Lag.Error, "403") || reads.Load() != 1 {
		t.Fatalf("ok %d, lag %+v after %d reads", rep.OK, rep.Lag, reads.Load())
	}
	var out bytes.Buffer
	rep.Text(&out)
	if !strings.Contains(out.String(), "not read (GET ") {
		t.Fatalf("text report:\n%s", out.String())
	}
}
